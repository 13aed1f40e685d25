package handler_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// Health checks answer GET with a JSON body and HEAD (what many load
// balancers send) with the same status and no body; readiness follows
// Redis.
func TestHealth(t *testing.T) {
	b := redistest.Mini(t)
	st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	srv := handler.NewServer(st, handler.ServerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer srv.Close()
	h := srv.Handler()
	check := func(method, path string, want int) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code != want {
			t.Errorf("%s %s: got %d, want %d", method, path, rec.Code, want)
		}
		if body := rec.Body.String(); (method == http.MethodHead) != (body == "") {
			t.Errorf("%s %s: got body %q, want one only for GET", method, path, body)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		check(method, "/healthz", http.StatusOK)
		check(method, "/readyz", http.StatusOK)
	}
	b.Mini.Close() // Redis goes away
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		check(method, "/healthz", http.StatusOK)
		check(method, "/readyz", http.StatusServiceUnavailable)
	}
	check(http.MethodPost, "/healthz", http.StatusMethodNotAllowed)
}
