package handler

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// One access-log line per request: method, route pattern, status and
// duration; never the path's id, the query or the body.
func TestAccessLog(t *testing.T) {
	b := redistest.Mini(t)
	st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv := NewServer(st, ServerConfig{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	defer srv.Close()
	h := srv.Handler()
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(`{"event_type":"a","payload":{"secret":"p4yload"}}`)),
		httptest.NewRequest(http.MethodGet, "/events/evt-s3cret-id?token=q5ery", nil),
		httptest.NewRequest(http.MethodGet, "/nowhere/s3cret", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("access log: got %d lines, want 3:\n%s", len(lines), logs.String())
	}
	for i, want := range []string{`"method":"POST","route":"/event","status":202`, `"method":"GET","route":"/events/:id","status":404`, `"route":"unmatched","status":404`} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"duration"`) {
			t.Errorf("line %d: got %s, want %s and a duration", i, lines[i], want)
		}
	}
	for _, secret := range []string{"p4yload", "s3cret", "q5ery"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs.String())
		}
	}
}
