package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/client"
)

func TestGet(t *testing.T) {
	srv := serve(t, testConfig())
	c := newClient(t, srv.URL, client.Config{})
	res, err := c.Send(t.Context(), client.Event{EventType: "ok", Metadata: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	tests := []struct {
		name   string
		id     string
		wantID string // "" for ErrNotFound
	}{
		{"known", res.EventID, res.EventID},
		{"unknown", "evt_unknown", ""},
		{"not an id", "a/b c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := c.Get(t.Context(), tt.id)
			if tt.wantID == "" {
				var apiErr *client.APIError
				if !errors.Is(err, client.ErrNotFound) || !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
					t.Errorf("got %+v, %v; want ErrNotFound", rec, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if rec.EventID != tt.wantID || rec.EventType != "ok" || rec.Status == "" || rec.AcceptedAt.IsZero() {
				t.Errorf("got %+v, want the record of %s", rec, tt.wantID)
			}
			if rec.Callback.Status != client.CallbackNone {
				t.Errorf("got callback status %q, want none", rec.Callback.Status)
			}
		})
	}
}

// Against the engine, Wait returns the terminal record, whether the engine
// long-polls or answers at once (as before GET /callback took wait).
func TestWait(t *testing.T) {
	srv := serve(t, testConfig())
	c := newClient(t, srv.URL, client.Config{})
	tests := []struct {
		eventType string
		status    client.Status
		lastError string
	}{
		{"ok", client.StatusSucceeded, ""},
		{"fail", client.StatusFailed, "no such user"},
		{"slow", client.StatusSucceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			res, err := c.Send(ctx, client.Event{EventType: tt.eventType,
				Callback: &client.Callback{SuccessURL: srv.URL + "/callback", FailURL: srv.URL + "/callback"}})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			rec, err := c.Wait(ctx, res.EventID)
			if err != nil {
				t.Fatalf("Wait: %v", err)
			}
			if rec.EventID != res.EventID || rec.Status != tt.status || rec.LastError != tt.lastError || rec.Attempts != 1 || rec.CompletedAt.IsZero() {
				t.Errorf("got %+v, want %s after 1 attempt with last error %q", rec, tt.status, tt.lastError)
			}
			if rec.Callback.Status == client.CallbackNone {
				t.Errorf("got callback status none, want the callback's")
			}
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		rec, err := c.Wait(t.Context(), "evt_unknown")
		if !errors.Is(err, client.ErrNotFound) || rec != nil {
			t.Errorf("got %+v, %v; want ErrNotFound", rec, err)
		}
	})
	t.Run("ctx ends first", func(t *testing.T) {
		res, err := c.Send(t.Context(), client.Event{EventType: "slow"})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		rec, err := c.Wait(ctx, res.EventID)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the deadline", err)
		}
		if rec == nil || rec.EventID != res.EventID || rec.Status.Terminal() {
			t.Errorf("got %+v, want the last record read, not terminal", rec)
		}
	})
}

// fakeRecords serves GET /callback with the records answer gives the n-th
// request (from 1), recording each request's wait parameter.
type fakeRecords struct {
	mu    sync.Mutex // guards waits
	waits []string
}

func (f *fakeRecords) serve(t *testing.T, answer func(n int, r *http.Request) (int, client.Status)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.waits = append(f.waits, r.URL.Query().Get("wait"))
		n := len(f.waits)
		f.mu.Unlock()
		code, status := answer(n, r)
		w.WriteHeader(code)
		if code != http.StatusOK {
			w.Write([]byte(`{"error":"no"}`))
			return
		}
		json.NewEncoder(w).Encode(client.Record{EventID: r.URL.Query().Get("event_id"), EventType: "t", Status: status})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeRecords) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.waits...)
}

// A server that long-polls holds the request until the event is finished:
// one request.
func TestWaitLongPoll(t *testing.T) {
	tests := []struct {
		name     string
		deadline time.Duration
		longPoll time.Duration
		wantWait string
	}{
		{"default", time.Minute, 0, "25"},
		{"cut to the deadline", 3 * time.Second, 0, "2"},
		{"configured", time.Minute, 5 * time.Second, "5"},
		{"none", time.Minute, -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRecords{}
			srv := f.serve(t, func(n int, r *http.Request) (int, client.Status) {
				if r.URL.Query().Get("wait") != "" {
					time.Sleep(200 * time.Millisecond) // held until the event finished
				}
				return http.StatusOK, client.StatusCanceled
			})
			c := newClient(t, srv.URL, client.Config{LongPoll: tt.longPoll})
			ctx, cancel := context.WithTimeout(t.Context(), tt.deadline)
			defer cancel()
			rec, err := c.Wait(ctx, "e1")
			if err != nil || rec.Status != client.StatusCanceled || rec.EventID != "e1" {
				t.Fatalf("got %+v, %v; want the canceled record of e1", rec, err)
			}
			if waits := f.requests(); len(waits) != 1 || waits[0] != tt.wantWait {
				t.Errorf("got requests with wait %q, want one with %q", waits, tt.wantWait)
			}
		})
	}
}

// Against a server that answers at once, Wait polls with a backoff, never
// in a hot loop; it polls again after a 503, not after a 500.
func TestWaitPolls(t *testing.T) {
	tests := []struct {
		name        string
		answer      func(n int, since time.Duration) (int, client.Status)
		wantCode    int // an *APIError of this status; 0 for none
		least, most int
		wantStatus  client.Status
	}{
		{"ignores wait for 1s", func(n int, since time.Duration) (int, client.Status) {
			if since < time.Second {
				return 200, client.StatusProcessing
			}
			return 200, client.StatusSucceeded
		}, 0, 3, 12, client.StatusSucceeded},
		{"503 twice", func(n int, since time.Duration) (int, client.Status) {
			if n <= 2 {
				return 503, ""
			}
			return 200, client.StatusFailed
		}, 0, 3, 3, client.StatusFailed},
		{"500", func(n int, since time.Duration) (int, client.Status) { return 500, "" }, 500, 1, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRecords{}
			start := time.Now()
			srv := f.serve(t, func(n int, r *http.Request) (int, client.Status) { return tt.answer(n, time.Since(start)) })
			c := newClient(t, srv.URL, client.Config{})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			rec, err := c.Wait(ctx, "e1")
			n := len(f.requests())
			if n < tt.least || n > tt.most {
				t.Errorf("got %d requests, want %d to %d", n, tt.least, tt.most)
			}
			if tt.wantCode != 0 {
				var apiErr *client.APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.wantCode {
					t.Errorf("got %v, want the %d", err, tt.wantCode)
				}
				return
			}
			if err != nil || rec.Status != tt.wantStatus {
				t.Errorf("got %+v, %v; want %s", rec, err, tt.wantStatus)
			}
		})
	}
}

// Cancel cancels an event that has not started; one that ended is
// ErrConflict, an unknown one ErrNotFound.
func TestCancel(t *testing.T) {
	srv := serve(t, testConfig())
	c := newClient(t, srv.URL, client.Config{})
	res, err := c.Send(t.Context(), client.Event{EventType: "ok", Delay: time.Hour})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	rec, err := c.Cancel(t.Context(), res.EventID)
	if err != nil || rec.Status != client.StatusCanceled || !rec.Status.Terminal() {
		t.Fatalf("Cancel: got %+v, %v; want canceled", rec, err)
	}
	if rec, err := c.Wait(t.Context(), res.EventID); err != nil || rec.Status != client.StatusCanceled {
		t.Errorf("Wait on the canceled event: got %+v, %v", rec, err)
	}
	if _, err := c.Cancel(t.Context(), res.EventID); !errors.Is(err, client.ErrConflict) {
		t.Errorf("Cancel again: got %v, want ErrConflict", err)
	}
	if _, err := c.Cancel(t.Context(), "evt_unknown"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Cancel an unknown id: got %v, want ErrNotFound", err)
	}
}
