package handler_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// requests is an Observer that records what it is told.
type requests struct {
	mu       sync.Mutex
	seen     []string // "route method code"
	accepted int
}

func (r *requests) Request(route, method string, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, fmt.Sprintf("%s %s %d", route, method, code))
}

func (r *requests) EventAccepted() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted++
}

var _ handler.Observer = (*requests)(nil)

// The observer hears of every request by its route's pattern, never its
// path, and of events accepted; /metrics is served behind the API keys.
func TestObserverAndMetricsRoute(t *testing.T) {
	const key = "observer-test-key-0123456789"
	b := redistest.Mini(t)
	st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	obs := &requests{}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "# metrics\n") })
	srv := handler.NewServer(st, handler.ServerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Observer: obs, Metrics: metrics, APIKeys: []string{key}})
	defer srv.Close()
	h := srv.Handler()
	send := func(method, path, body string, auth bool) int {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	send(http.MethodPost, "/event", `{"id":"o1","event_type":"t","payload":{}}`, true)
	send(http.MethodPost, "/event", `{"id":"o1","event_type":"t","payload":{}}`, true) // a repeat: 200, not accepted again
	send(http.MethodGet, "/events/o1", "", true)
	send(http.MethodGet, "/metrics", "", false)
	if code := send(http.MethodGet, "/metrics", "", true); code != http.StatusOK {
		t.Errorf("GET /metrics with a key: got %d, want 200", code)
	}
	send(http.MethodGet, "/secret/path/of/a/scanner", "", false)
	send(http.MethodDelete, "/healthz", "", false)

	want := []string{"/event POST 202", "/event POST 200", "/events/:id GET 200", "/metrics GET 401", "/metrics GET 200",
		"  404", "  405"}
	if got := obs.seen; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests: got %q, want %q", got, want)
	}
	if obs.accepted != 1 {
		t.Errorf("accepted: got %d, want 1", obs.accepted)
	}
}
