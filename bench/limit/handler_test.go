package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver records the callbacks it gets and the connections they came on.
type receiver struct {
	mu      sync.Mutex // guards ids and remotes
	ids     map[string]int
	remotes map[string]bool
}

func newReceiver() *receiver { return &receiver{ids: map[string]int{}, remotes: map[string]bool{}} }

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		EventID  string `json:"event_id"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Status != "completed" || body.Attempts != 1 {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.ids[body.EventID]++
	rc.remotes[r.RemoteAddr] = true
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) counts() (map[string]int, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ids := make(map[string]int, len(rc.ids))
	for k, v := range rc.ids {
		ids[k] = v
	}
	return ids, len(rc.remotes)
}

func post(h http.Handler, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func event(id, callbackURL string) string {
	return `{"id":"` + id + `","event_type":"user_created","timestamp":"2024-08-20T05:21:19.143357839Z",` +
		`"payload":{"seq":1,"pad":"x"},"metadata":{"source":"test"},` +
		`"callback":{"success_url":"` + callbackURL + `","fail_url":"` + callbackURL + `"}}`
}

func TestEventCallsBackOnceOverKeptAliveConnections(t *testing.T) {
	rc := newReceiver()
	rcv := httptest.NewServer(rc)
	defer rcv.Close()
	const senders, events = 4, 200
	s := newServer(newCallbackClient(senders), senders)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { s.send(ctx); close(done) }()

	h := s.handler()
	for i := range events {
		id := "evt-" + strconv.Itoa(i)
		rec := post(h, event(id, rcv.URL+"/cb"))
		if rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), `"event_id":"`+id+`"`) {
			t.Fatalf("POST /event %s = %d %s, want 202 naming the id", id, rec.Code, rec.Body)
		}
	}
	s.close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("senders did not finish within 10s")
	}
	ids, conns := rc.counts()
	if len(ids) != events {
		t.Errorf("callbacks for %d events, want %d", len(ids), events)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s called back %d times, want 1", id, n)
		}
	}
	if conns > senders {
		t.Errorf("callbacks came on %d connections, want at most %d (keep-alive)", conns, senders)
	}
	if got := s.failed.Load(); got != 0 {
		t.Errorf("failed callbacks = %d, want 0", got)
	}
}

func TestEventRefusesBadInput(t *testing.T) {
	s := newServer(newCallbackClient(1), 1)
	h := s.handler()
	for _, body := range []string{`not json`, `{"event_type":"x"}`, `{"id":"a"}`, `[]`} {
		if rec := post(h, body); rec.Code != http.StatusBadRequest {
			t.Errorf("POST /event %q = %d, want 400", body, rec.Code)
		}
	}
	if n := len(s.jobs); n != 0 {
		t.Errorf("%d callbacks queued by bad input, want 0", n)
	}
}
