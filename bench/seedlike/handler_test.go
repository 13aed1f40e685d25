package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver records the callbacks it gets and answers them with status.
type receiver struct {
	status int

	mu      sync.Mutex // guards ids and remotes
	ids     []string
	remotes map[string]bool
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		EventID string `json:"event_id"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	rc.mu.Lock()
	rc.ids = append(rc.ids, r.Method+" "+body.EventID)
	rc.remotes[r.RemoteAddr] = true
	rc.mu.Unlock()
	w.WriteHeader(rc.status)
}

func (rc *receiver) snapshot() ([]string, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...), len(rc.remotes)
}

func postEvent(t *testing.T, h http.Handler, id, callbackURL string) *httptest.ResponseRecorder {
	t.Helper()
	body := `{"id":"` + id + `","event_type":"user_created","timestamp":"2024-08-20T05:21:19.143357839Z",` +
		`"payload":{"seq":1,"pad":"x"},"metadata":{"source":"test"},` +
		`"callback":{"success_url":"` + callbackURL + `","fail_url":"` + callbackURL + `"}}`
	req := httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestEventCallsBackOncePerEventOnNewConnections(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
	}{
		{"delivered", http.StatusOK},
		{"failed is not retried", http.StatusInternalServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := &receiver{status: tc.status, remotes: map[string]bool{}}
			ts := httptest.NewServer(rc)
			t.Cleanup(ts.Close)
			s := newServer(newCallbackClient())
			h := s.handler()

			for _, id := range []string{"e1", "e2"} {
				rec := postEvent(t, h, id, ts.URL+"/cb")
				if rec.Code != http.StatusAccepted {
					t.Fatalf("POST /event %s: got status %d, want %d", id, rec.Code, http.StatusAccepted)
				}
				var ans map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil || ans["event_id"] != id || ans["status"] != "success" {
					t.Fatalf("POST /event %s: got body %s, want status success and event_id %s", id, rec.Body, id)
				}
				s.wait(3 * time.Second) // one at a time, so the two callbacks cannot share a connection by timing
			}
			time.Sleep(50 * time.Millisecond) // a retry, if there were one, would come now
			ids, conns := rc.snapshot()
			if got, want := strings.Join(ids, ","), "POST e1,POST e2"; got != want {
				t.Errorf("callbacks: got %q, want %q", got, want)
			}
			if conns != 2 {
				t.Errorf("callback connections: got %d, want 2 (keep-alives disabled)", conns)
			}
			wantFailed := int64(0)
			if tc.status != http.StatusOK {
				wantFailed = 2
			}
			if got := s.failed.Load(); got != wantFailed {
				t.Errorf("failed callbacks: got %d, want %d", got, wantFailed)
			}
		})
	}
}

func TestEventRejectsInvalidJSON(t *testing.T) {
	h := newServer(newCallbackClient()).handler()
	req := httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(`{"event_type":`))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("got status %d, want %d", rec.Code, http.StatusBadRequest)
	}
}

func TestCallbackClientRefusesNonLoopback(t *testing.T) {
	_, err := newCallbackClient().Post("http://192.0.2.1:9/cb", "application/json", strings.NewReader("{}"))
	if err == nil || !strings.Contains(err.Error(), "non-loopback") {
		t.Errorf("got err %v, want a refusal to connect to non-loopback", err)
	}
}
