package handler_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// TestRequestTimeout stalls Redis (a proxy that reads commands and never
// answers) under a Server on a client from store.Open: every route that
// needs Redis answers 503 once its bound has passed, and not much later;
// then Redis answers again and so does the API.
func TestRequestTimeout(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		proxy := redistest.NewProxy(t, b.URL)
		conn, err := store.Open(proxy.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		st, err := store.New(conn, store.Config{Prefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		const requestTimeout, ingestTimeout = 300 * time.Millisecond, 200 * time.Millisecond
		srv := handler.NewServer(st, handler.ServerConfig{RequestTimeout: requestTimeout, IngestTimeout: ingestTimeout,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		t.Cleanup(srv.Close)
		h := srv.Handler()
		serve := func(method, path, body string) (*httptest.ResponseRecorder, time.Duration) {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, req)
			return rec, time.Since(start)
		}
		if rec, _ := serve(http.MethodGet, "/readyz", ""); rec.Code != http.StatusOK {
			t.Fatalf("GET /readyz before the stall: got %d %s", rec.Code, rec.Body)
		}

		proxy.SetMode(redistest.Stall)
		const margin = 500 * time.Millisecond
		for _, tc := range []struct {
			method, path, body string
			bound              time.Duration
		}{
			{http.MethodGet, "/events/e1", "", requestTimeout},
			{http.MethodGet, "/callback?event_id=e1", "", requestTimeout},
			{http.MethodGet, "/callback", "", requestTimeout},
			{http.MethodGet, "/dead-letters", "", requestTimeout},
			{http.MethodPost, "/events/e1/retry", "", requestTimeout},
			{http.MethodPost, "/callback/e1/redeliver", "", requestTimeout},
			{http.MethodGet, "/readyz", "", handler.ReadyTimeout},
			{http.MethodPost, "/event", `{"event_type":"a"}`, ingestTimeout},
		} {
			t.Run(tc.method+" "+tc.path, func(t *testing.T) {
				rec, elapsed := serve(tc.method, tc.path, tc.body)
				if rec.Code != http.StatusServiceUnavailable {
					t.Errorf("got %d %s, want 503", rec.Code, rec.Body)
				}
				if elapsed < tc.bound || elapsed > tc.bound+margin {
					t.Errorf("answered in %s, want %s to %s", elapsed, tc.bound, tc.bound+margin)
				}
				if tc.path != "/readyz" && rec.Header().Get("Retry-After") != "1" {
					t.Errorf("Retry-After: got %q, want 1", rec.Header().Get("Retry-After"))
				}
				if tc.path == "/event" {
					var ans map[string]any
					json.Unmarshal(rec.Body.Bytes(), &ans)
					if id, _ := ans["event_id"].(string); !strings.HasPrefix(id, "evt_") {
						t.Errorf("503 of POST /event: got %s, want the generated event_id", rec.Body)
					}
				}
			})
		}

		proxy.SetMode(redistest.Forward)
		deadline := time.Now().Add(10 * time.Second)
		for {
			rec, _ := serve(http.MethodGet, "/callback", "")
			if rec.Code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /callback after the stall: got %d %s, want 200 within 10s", rec.Code, rec.Body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
