package callback_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// finished records event id as succeeded with a callback to url, queued
// for delivery, as the processor does.
func finished(t *testing.T, st *store.Redis, id, url string) {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	rec := store.Record{ID: id, EventType: "user_created", BodyHash: "h", SuccessURL: url}
	if errs, err := st.Enqueue(ctx, now, []store.NewEvent{{Record: rec, Body: []byte(`{}`)}}); err != nil || errs[0] != nil {
		t.Fatalf("enqueue: %v %v", errs, err)
	}
	jobs, _, err := st.Events().Claim(ctx, now, time.Minute, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	rec = jobs[0].Record
	rec.Status, rec.CompletedAt = event.StatusSucceeded, now
	if errs, err := st.Events().Finish(ctx, now, []store.Outcome{{Lease: jobs[0].Lease, Record: rec, Callback: callback.NewRecord(rec)}}); err != nil || errs[0] != nil {
		t.Fatalf("finish: %v %v", errs, err)
	}
}

// waitCallback waits until id's callback is delivered or failed.
func waitCallback(t *testing.T, st *store.Redis, id string) store.Callback {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap, err := st.Get(context.Background(), id)
		if err == nil && snap.Callback != nil && (snap.Callback.Status == event.CallbackDelivered || snap.Callback.Status == event.CallbackFailed) {
			return *snap.Callback
		}
		if time.Now().After(deadline) {
			t.Fatalf("callback of %s not settled: %+v %v", id, snap.Callback, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receiver answers the scripted statuses in turn (the last one repeats) and
// records the webhook-ids it saw.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	ids      []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.ids = append(r.ids, req.Header.Get("webhook-id"))
	code := r.statuses[min(len(r.ids), len(r.statuses))-1]
	r.mu.Unlock()
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
}

func (r *receiver) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

func TestDispatcher(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int
		allowPrivate bool
		wantStatus   event.CallbackStatus
		wantAttempts int
		wantRequests int
	}{
		{"delivered first time", []int{200}, true, event.CallbackDelivered, 1, 1},
		{"delivered after 503s", []int{503, 503, 204}, true, event.CallbackDelivered, 3, 3},
		{"retries exhausted", []int{500}, true, event.CallbackFailed, 3, 3},
		{"gone is permanent", []int{410}, true, event.CallbackFailed, 1, 1},
		{"redirect is not followed", []int{302}, true, event.CallbackFailed, 1, 1},
		{"private address refused at dial", []int{200}, false, event.CallbackFailed, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			redistest.Run(t, func(t *testing.T, b redistest.Backend) {
				st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
				rcv := &receiver{statuses: tc.statuses}
				srv := httptest.NewServer(rcv)
				defer srv.Close()
				finished(t, st, "e1", srv.URL+"/hook")

				d, err := callback.NewDispatcher(st, callback.Config{
					AllowPrivateNetworks: tc.allowPrivate, Logger: quiet, PollInterval: 5 * time.Millisecond,
					Retry: callback.RetryPolicy{MaxAttempts: 3, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond},
				})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- d.Run(ctx) }()
				defer func() { cancel(); <-done }()

				cb := waitCallback(t, st, "e1")
				if cb.Status != tc.wantStatus || cb.Attempts != tc.wantAttempts || len(cb.History) != tc.wantAttempts {
					t.Errorf("got %s after %d attempts (history %d, %q), want %s after %d", cb.Status, cb.Attempts, len(cb.History), cb.LastError, tc.wantStatus, tc.wantAttempts)
				}
				ids := rcv.seen()
				if len(ids) != tc.wantRequests {
					t.Errorf("requests: got %d, want %d", len(ids), tc.wantRequests)
				}
				for _, id := range ids {
					if id != cb.ID {
						t.Errorf("webhook-id: got %q, want %q on every delivery", id, cb.ID)
					}
				}
			})
		})
	}
}
