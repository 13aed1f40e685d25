package boomerang_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// bulkAnswer is the answer of POST /dead-letters/retry and /redeliver.
type bulkAnswer struct {
	Queued        int            `json:"queued"`
	AlreadyQueued int            `json:"already_queued"`
	Skipped       int            `json:"skipped"`
	NotFound      int            `json:"not_found"`
	Reasons       map[string]int `json:"skipped_reasons"`
	NextCursor    string         `json:"next_cursor"`
	Field         string         `json:"field"`
}

// sendBulk POSTs body to path of h with the bearer key (none when "").
func sendBulk(t *testing.T, h http.Handler, path, key, body string) (int, bulkAnswer) {
	t.Helper()
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	h.ServeHTTP(w, req)
	var out bulkAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("POST %s: answer %q is not JSON: %v", path, w.Body.Bytes(), err)
	}
	return w.Code, out
}

// The bulk actions count each dead letter once: queued, already queued,
// skipped (with why) or not found; asking again queues nothing more.
func TestBulkDeadLetters(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		const admin = "admin-key-0123456789"
		failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
		}))
		t.Cleanup(failing.Close)

		cfg := testConfig(b)
		cfg.Auth = boomerang.AuthConfig{AdminKeys: []string{admin}}
		eng := newEngine(t, cfg)
		if err := eng.Accept("ok"); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{"fails", "other"} {
			err := boomerang.Handle(eng, typ, func(context.Context, event.EventMessage[json.RawMessage]) error {
				return boomerang.Permanent(errors.New("no such user"))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		stop := start(t, eng)
		h := eng.Handler()
		cbFail := `"callback":{"success_url":"` + failing.URL + `/x"}`
		events := map[string]string{
			"f1": `{"id":"f1","event_type":"fails"}`,
			"f2": `{"id":"f2","event_type":"fails"}`,
			"f3": `{"id":"f3","event_type":"fails"}`,
			"o1": `{"id":"o1","event_type":"other"}`,
			"s1": `{"id":"s1","event_type":"ok"}`,
			"c1": `{"id":"c1","event_type":"ok",` + cbFail + `}`,
		}
		for id, body := range events {
			if code, _ := post(t, h, body); code != http.StatusAccepted {
				t.Fatalf("POST %s: got %d, want 202", id, code)
			}
		}
		for id := range events {
			waitFor(t, eng.Store(), id, func(s store.Snapshot) bool {
				return terminal(s) && (s.Callback == nil || s.Callback.Status != event.CallbackPending && s.Callback.Status != event.CallbackRetrying)
			})
		}
		waitFor(t, eng.Store(), "c1", func(s store.Snapshot) bool { return s.Callback.Status == event.CallbackFailed })
		// With the workers stopped, what is queued stays queued.
		if err := stop(); err != nil {
			t.Fatal(err)
		}

		steps := []struct {
			name, path, body string
			want             bulkAnswer
		}{
			{"retry ids", "/dead-letters/retry", `{"ids":["f1","s1","nope"]}`,
				bulkAnswer{Queued: 1, Skipped: 1, NotFound: 1, Reasons: map[string]int{"succeeded": 1}}},
			{"retry ids again", "/dead-letters/retry", `{"ids":["f1"]}`, bulkAnswer{AlreadyQueued: 1}},
			{"retry kind callback", "/dead-letters/retry", `{"filter":{"kind":"callback"}}`,
				bulkAnswer{Skipped: 1, Reasons: map[string]int{"succeeded": 1}}},
			{"retry filter", "/dead-letters/retry", `{"filter":{"event_type":"fails"}}`, bulkAnswer{Queued: 2}},
			{"retry filter again", "/dead-letters/retry", `{"filter":{"event_type":"fails"}}`, bulkAnswer{}},
			{"redeliver ids", "/dead-letters/redeliver", `{"ids":["o1","nope"]}`,
				bulkAnswer{Skipped: 1, NotFound: 1, Reasons: map[string]int{"callback_not_failed": 1}}},
			{"redeliver filter", "/dead-letters/redeliver", `{"filter":{}}`,
				bulkAnswer{Queued: 1, Skipped: 1, Reasons: map[string]int{"callback_not_failed": 1}}},
			{"redeliver ids again", "/dead-letters/redeliver", `{"ids":["c1"]}`, bulkAnswer{AlreadyQueued: 1}},
			{"retry all", "/dead-letters/retry", `{"filter":{"kind":"event"}}`, bulkAnswer{Queued: 1}},
			{"retry all again", "/dead-letters/retry", `{"filter":{"kind":"event"}}`, bulkAnswer{}},
		}
		for _, st := range steps {
			code, got := sendBulk(t, h, st.path, admin, st.body)
			if code != http.StatusOK || fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Errorf("%s: got %d %+v, want 200 %+v", st.name, code, got, st.want)
			}
		}
		for _, id := range []string{"f1", "f2", "f3", "o1"} {
			snap, err := eng.Store().Get(context.Background(), id)
			if err != nil || snap.Record.Status != event.StatusQueued || snap.Record.Run != 2 {
				t.Errorf("%s: got %s run %d (%v), want queued as run 2", id, snap.Record.Status, snap.Record.Run, err)
			}
		}
	})
}

// A bad body is a 400 naming the field; the actions need the admin key.
func TestBulkDeadLettersRefuses(t *testing.T) {
	const admin = "admin-key-0123456789"
	cfg := testConfig(redistest.Mini(t))
	cfg.Auth = boomerang.AuthConfig{APIKeys: []string{"user-key-0123456789"}, AdminKeys: []string{admin}}
	h := newEngine(t, cfg).Handler()
	many := `{"ids":["a"` + strings.Repeat(`,"a"`, 1000) + `]}`
	tests := []struct {
		name, key, body string
		wantCode        int
		wantField       string
	}{
		{"not JSON", admin, `ids=a`, 400, "body"},
		{"unknown field", admin, `{"idz":["a"]}`, 400, "body"},
		{"empty", admin, `{}`, 400, "body"},
		{"both", admin, `{"ids":["a"],"filter":{}}`, 400, "body"},
		{"no ids", admin, `{"ids":[]}`, 400, "ids"},
		{"too many ids", admin, many, 400, "ids"},
		{"bad id", admin, `{"ids":["a","b c"]}`, 400, "ids[1]"},
		{"cursor with ids", admin, `{"ids":["a"],"cursor":"1.a"}`, 400, "cursor"},
		{"bad event type", admin, `{"filter":{"event_type":"a b"}}`, 400, "filter.event_type"},
		{"bad kind", admin, `{"filter":{"kind":"both"}}`, 400, "filter.kind"},
		{"bad cursor", admin, `{"filter":{},"cursor":"nonsense"}`, 400, "cursor"},
		{"no key", "", `{"ids":["a"]}`, 401, ""},
		{"user key", "user-key-0123456789", `{"ids":["a"]}`, 401, ""},
	}
	for _, path := range []string{"/dead-letters/retry", "/dead-letters/redeliver"} {
		for _, tc := range tests {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				code, got := sendBulk(t, h, path, tc.key, tc.body)
				if code != tc.wantCode || got.Field != tc.wantField {
					t.Errorf("got %d field %q, want %d field %q", code, got.Field, tc.wantCode, tc.wantField)
				}
			})
		}
	}
}
