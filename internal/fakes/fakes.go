// Package fakes holds hand-written HTTP test doubles: a callback receiver
// and a forward target that count what they receive and answer as scripted.
package fakes

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Callback is one callback a Receiver got.
type Callback struct {
	Path      string
	WebhookID string
	// TraceParent is the request's traceparent header.
	TraceParent string
	Body        struct {
		EventID   string `json:"event_id"`
		EventType string `json:"event_type"`
		Status    string `json:"status"`
		Attempts  int    `json:"attempts"`
		Error     string `json:"error"`
	}
}

// Receiver is a callback receiver. It answers Status (200 unless set).
type Receiver struct {
	*httptest.Server

	mu     sync.Mutex // guards got and status
	got    []Callback
	status int
}

// NewReceiver starts a Receiver, closed at the test's end.
func NewReceiver(t testing.TB) *Receiver {
	r := &Receiver{status: http.StatusOK}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	var cb Callback
	cb.Path, cb.WebhookID = req.URL.Path, req.Header.Get("webhook-id")
	cb.TraceParent = req.Header.Get("traceparent")
	b, _ := io.ReadAll(req.Body)
	json.Unmarshal(b, &cb.Body)
	r.mu.Lock()
	status := r.status
	if status/100 == 2 {
		r.got = append(r.got, cb)
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

// SetStatus makes the receiver answer code from now on; only callbacks
// answered 2xx are recorded.
func (r *Receiver) SetStatus(code int) {
	r.mu.Lock()
	r.status = code
	r.mu.Unlock()
}

// Got returns the callbacks received so far.
func (r *Receiver) Got() []Callback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Callback(nil), r.got...)
}

// WaitFor waits up to d until n callbacks were received, and returns them.
func (r *Receiver) WaitFor(t testing.TB, n int, d time.Duration) []Callback {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := r.Got()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) < n {
				t.Fatalf("callbacks: got %d within %s, want %d", len(got), d, n)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Target is a forward target. Each request is answered by Answer, given the
// request's number (1 for the first); a nil Answer answers 200.
type Target struct {
	*httptest.Server
	Answer func(n int, w http.ResponseWriter, r *http.Request)

	mu    sync.Mutex // guards count and ids
	count int
	ids   map[string]int
}

// NewTarget starts a Target, closed at the test's end.
func NewTarget(t testing.TB, answer func(n int, w http.ResponseWriter, r *http.Request)) *Target {
	tg := &Target{Answer: answer, ids: make(map[string]int)}
	tg.Server = httptest.NewServer(http.HandlerFunc(tg.serve))
	t.Cleanup(tg.Close)
	return tg
}

func (tg *Target) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	tg.mu.Lock()
	tg.count++
	n := tg.count
	tg.ids[r.Header.Get("Idempotency-Key")]++
	tg.mu.Unlock()
	if tg.Answer == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	tg.Answer(n, w, r)
}

// Count returns the requests received so far.
func (tg *Target) Count() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.count
}

// CountFor returns the requests received for one event id.
func (tg *Target) CountFor(id string) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.ids[id]
}
