package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// GET /callback keeps the events accepted from since (inclusive) to until
// (exclusive), and answers 400 naming the field for a bad bound.
func TestListTimeRange(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
		for i, id := range []string{"a", "b", "c"} {
			ev := store.NewEvent{Record: store.Record{ID: id, EventType: "t", BodyHash: "h" + id}, Body: []byte(`{}`)}
			if errs, err := st.Enqueue(context.Background(), t0.Add(time.Duration(i)*time.Minute), []store.NewEvent{ev}); err != nil || errs[0] != nil {
				t.Fatalf("enqueue %s: %v %v", id, errs, err)
			}
		}
		srv := handler.NewServer(st, handler.ServerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		defer srv.Close()
		h := srv.Handler()
		get := func(q url.Values) (int, map[string]any) {
			t.Helper()
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/callback?"+q.Encode(), nil))
			var out map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("GET /callback?%s: answer is not JSON: %s", q.Encode(), w.Body)
			}
			return w.Code, out
		}
		stamp := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }

		ok := []struct {
			name, since, until string
			want               []string
		}{
			{"no bounds", "", "", []string{"c", "b", "a"}},
			{"since", stamp(time.Minute), "", []string{"c", "b"}},
			{"until", "", stamp(2 * time.Minute), []string{"b", "a"}},
			{"both", stamp(30 * time.Second), stamp(90 * time.Second), []string{"b"}},
			{"another zone", "2026-11-25T13:01:00+01:00", "", []string{"c", "b"}},
		}
		for _, tt := range ok {
			t.Run(tt.name, func(t *testing.T) {
				q := url.Values{}
				if tt.since != "" {
					q.Set("since", tt.since)
				}
				if tt.until != "" {
					q.Set("until", tt.until)
				}
				code, out := get(q)
				var got []string
				evs, _ := out["events"].([]any)
				for _, e := range evs {
					got = append(got, e.(map[string]any)["event_id"].(string))
				}
				if code != http.StatusOK || fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("got %d %v, want 200 %v", code, got, tt.want)
				}
			})
		}

		bad := []struct {
			name      string
			q         url.Values
			wantField string
		}{
			{"since not a time", url.Values{"since": {"yesterday"}}, "since"},
			{"since without zone", url.Values{"since": {"2026-11-25T12:00:00"}}, "since"},
			{"until not a time", url.Values{"until": {"1764072000"}}, "until"},
			{"until before since", url.Values{"since": {stamp(time.Minute)}, "until": {stamp(0)}}, "until"},
			{"until equal to since", url.Values{"since": {stamp(time.Minute)}, "until": {stamp(time.Minute)}}, "until"},
		}
		for _, tt := range bad {
			t.Run(tt.name, func(t *testing.T) {
				code, out := get(tt.q)
				if code != http.StatusBadRequest || out["field"] != tt.wantField || out["error"] == "" {
					t.Errorf("got %d %v, want 400 naming field %s", code, out, tt.wantField)
				}
			})
		}
	})
}
