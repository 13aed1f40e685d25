package callback_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// finished records event id as succeeded with a callback to url, queued
// for delivery, as the processor does.
func finished(t *testing.T, st *store.Redis, id, url string) {
	t.Helper()
	finishedAs(t, st, id, url, event.StatusSucceeded, callback.Options{})
}

// finishedAs records event id as status (succeeded or failed) with a
// callback to url that the event asked to be sent as o, queued for
// delivery, as the processor does.
func finishedAs(t *testing.T, st *store.Redis, id, url string, status event.Status, o callback.Options) {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	rec := store.Record{ID: id, EventType: "user_created", BodyHash: "h", SuccessURL: url, FailURL: url,
		CallbackMethod: o.Method, CallbackFormat: o.Format}
	if errs, err := st.Enqueue(ctx, now, []store.NewEvent{{Record: rec, Body: []byte(`{}`)}}); err != nil || errs[0] != nil {
		t.Fatalf("enqueue: %v %v", errs, err)
	}
	jobs, _, err := st.Events().Claim(ctx, now, time.Minute, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	rec = jobs[0].Record
	rec.Status, rec.CompletedAt = status, now
	if status == event.StatusFailed {
		rec.LastError = "no such user"
	}
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

// deliveries is an Observer that records the outcomes it is told.
type deliveries struct {
	mu   sync.Mutex
	seen []string
}

func (o *deliveries) Delivery(cb *store.Callback, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, string(cb.Status))
}

func (o *deliveries) outcomes() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.seen, " ")
}

var _ callback.Observer = (*deliveries)(nil)

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

				obs := &deliveries{}
				d, err := callback.NewDispatcher(st, callback.Config{
					AllowPrivateNetworks: tc.allowPrivate, Logger: quiet, PollInterval: 5 * time.Millisecond, Observer: obs,
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
				wantSeen := strings.Repeat(string(event.CallbackRetrying)+" ", tc.wantAttempts-1) + string(tc.wantStatus)
				if got := obs.outcomes(); got != wantSeen {
					t.Errorf("observer: got %q, want %q", got, wantSeen)
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

// logBuffer collects a logger's output; safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// failing is a Transport whose every request fails with err: failures
// that would need DNS or a remote address, made without a packet.
type failing struct{ err error }

func (f failing) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

// closedURL returns an http URL on 127.0.0.1 where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// last_error (and each delivery's error) is the class of the failure, never
// an address, a resolver or the URL; the log has the details, but never the
// URL's query.
func TestDeliveryErrorsAreClasses(t *testing.T) {
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	dnsErr := &net.DNSError{Err: "no such host", Name: "cb.internal.example", Server: "10.0.0.2:53", IsNotFound: true}
	forbidden := fmt.Errorf("outbound: 10.0.0.5 is a private address: %w", outbound.ErrForbidden)
	tests := []struct {
		name         string
		url          string
		client       *http.Client
		wantError    string
		wantAttempts int
		wantStatus   int
		wantLog      string // in the log: the detail
	}{
		{"refused", closedURL(t), nil, "connection refused", 2, 0, "connect: connection refused"},
		{"resolver fails", "http://cb.internal.example", &http.Client{Transport: failing{dnsErr}}, "dns lookup failed", 2, 0, "lookup cb.internal.example on 10.0.0.2:53"},
		{"address not allowed is permanent", "http://cb.internal.example", &http.Client{Transport: failing{forbidden}}, "address not allowed", 1, 0, "10.0.0.5 is a private address"},
		{"receiver answers 503", unavailable.URL, nil, "HTTP 503", 2, 503, "HTTP 503"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := store.New(redistest.Mini(t).Client, store.Config{Prefix: "test", Logger: quiet})
			finished(t, st, "e1", tc.url+"/cb?token=s3cret")
			var logs logBuffer
			d, err := callback.NewDispatcher(st, callback.Config{
				AllowPrivateNetworks: true, Client: tc.client, PollInterval: 5 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				Retry:  callback.RetryPolicy{MaxAttempts: 2, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- d.Run(ctx) }()
			cb := waitCallback(t, st, "e1")
			cancel()
			<-done

			if cb.Status != event.CallbackFailed || cb.Attempts != tc.wantAttempts || cb.LastError != tc.wantError || cb.LastResponseStatus != tc.wantStatus {
				t.Errorf("got %s after %d attempts, last_error %q, status %d; want failed after %d, %q, %d",
					cb.Status, cb.Attempts, cb.LastError, cb.LastResponseStatus, tc.wantAttempts, tc.wantError, tc.wantStatus)
			}
			for _, del := range cb.History {
				if del.Error != tc.wantError {
					t.Errorf("delivery %d: got error %q, want %q", del.Number, del.Error, tc.wantError)
				}
			}
			out := logs.String()
			if strings.Contains(out, "s3cret") {
				t.Errorf("the log holds the URL's query:\n%s", out)
			}
			if !strings.Contains(out, "callback delivery failed for good") || !strings.Contains(out, tc.wantLog) || !strings.Contains(out, "/cb") {
				t.Errorf("the log: got\n%s\nwant the failure, %q and the URL's path", out, tc.wantLog)
			}
		})
	}
}
