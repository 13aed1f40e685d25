package handler_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/internal/wire"
	"github.com/boomerang-events/boomerang/store"
)

// ceRequest is a POST /event of the CloudEvents test.
type ceRequest struct {
	header []string // name, value pairs
	body   []byte
}

// ceStructured is a structured-mode request of body.
func ceStructured(body string, header ...string) ceRequest {
	return ceRequest{header: append([]string{"Content-Type", "application/cloudevents+json"}, header...), body: []byte(body)}
}

// ceBinary is a binary-mode request: the required attributes of an event
// of type user.created from /users, with id (none when empty), more
// headers, and body.
func ceBinary(id, body string, header ...string) ceRequest {
	h := []string{"ce-specversion", "1.0", "ce-source", "/users", "ce-type", "user.created"}
	if id != "" {
		h = append(h, "ce-id", id)
	}
	return ceRequest{header: append(h, header...), body: []byte(body)}
}

// POST /event takes CloudEvents in structured and binary mode, answers
// them as it answers Boomerang's JSON (202, a repeat 200, another body
// 409, 400 naming the attribute, 413, 415), and stores the Boomerang event
// of the same content.
func TestPostCloudEvent(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		srv := handler.NewServer(st, handler.ServerConfig{MaxBodyBytes: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		t.Cleanup(srv.Close)
		h := srv.Handler()
		post := func(r ceRequest) (int, []byte, map[string]any) {
			t.Helper()
			req := httptest.NewRequest(http.MethodPost, "/event", bytes.NewReader(r.body))
			for i := 0; i+1 < len(r.header); i += 2 {
				req.Header.Add(r.header[i], r.header[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var ans map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
				t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body)
			}
			return rec.Code, rec.Body.Bytes(), ans
		}
		stored := func(id, native string) {
			t.Helper()
			want, err := wire.Parse([]byte(native), "", outbound.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Body(t.Context(), id)
			if err != nil || !bytes.Equal(got, want.Body) {
				t.Errorf("stored body of %s: got %s (%v), want %s", id, got, err, want.Body)
			}
		}

		structured := `{"specversion":"1.0","id":"ce-1","source":"/users","type":"user.created","subject":"user/42",` +
			`"time":"2024-08-20T05:21:19Z","datacontenttype":"application/json","data":{"user_id":"42"},"tenant":"acme"}`
		native := `{"id":"ce-1","event_type":"user.created","timestamp":"2024-08-20T05:21:19Z","payload":{"user_id":"42"},` +
			`"metadata":{"source":"/users","subject":"user/42","tenant":"acme"}}`
		t.Run("structured", func(t *testing.T) {
			code, raw, _ := post(ceStructured(structured))
			if want := `{"event_id":"ce-1","status":"queued","status_url":"/callback?event_id=ce-1"}`; code != http.StatusAccepted || string(raw) != want {
				t.Fatalf("got %d %s, want 202 %s", code, raw, want)
			}
			stored("ce-1", native)
		})
		t.Run("repeats and conflicts", func(t *testing.T) {
			for _, tc := range []struct {
				name string
				req  ceRequest
				want int
			}{
				{"the same CloudEvent", ceStructured(structured), http.StatusOK},
				{"the same in binary mode", ceBinary("ce-1", `{"user_id": "42"}`, "Content-Type", "application/json",
					"ce-subject", "user/42", "ce-time", "2024-08-20T05:21:19Z", "ce-tenant", "acme"), http.StatusOK},
				{"the same as Boomerang's JSON", ceRequest{header: []string{"Content-Type", "application/json"}, body: []byte(native)}, http.StatusOK},
				{"other data", ceStructured(strings.Replace(structured, `"42"}`, `"43"}`, 1)), http.StatusConflict},
				{"another subject, in binary mode", ceBinary("ce-1", `{"user_id":"42"}`, "ce-subject", "user/43",
					"ce-time", "2024-08-20T05:21:19Z", "ce-tenant", "acme"), http.StatusConflict},
			} {
				t.Run(tc.name, func(t *testing.T) {
					code, raw, ans := post(tc.req)
					if code != tc.want {
						t.Fatalf("got %d %s, want %d", code, raw, tc.want)
					}
					if code == http.StatusOK && (ans["event_id"] != "ce-1" || ans["event_type"] != "user.created") {
						t.Errorf("repeat: got %s, want the record of ce-1", raw)
					}
				})
			}
		})
		t.Run("binary", func(t *testing.T) {
			code, raw, ans := post(ceBinary("ce-2", `["a", 1]`, "Content-Type", "application/vnd.users+json; charset=utf-8",
				"ce-subject", "zo%C3%AB", "ce-callbacksuccessurl", "https://example.com/ok"))
			if code != http.StatusAccepted || ans["event_id"] != "ce-2" {
				t.Fatalf("got %d %s, want 202 for ce-2", code, raw)
			}
			stored("ce-2", `{"id":"ce-2","event_type":"user.created","payload":["a",1],"metadata":{"source":"/users","subject":"zoë"},`+
				`"callback":{"success_url":"https://example.com/ok"}}`)
			if snap, err := st.Get(t.Context(), "ce-2"); err != nil || snap.Record.SuccessURL != "https://example.com/ok" {
				t.Errorf("record of ce-2: got %+v (%v), want its success URL", snap.Record, err)
			}
		})
		t.Run("gzip", func(t *testing.T) {
			req := ceStructured(strings.Replace(structured, "ce-1", "ce-gzip", 1), "Content-Encoding", "gzip")
			req.body = gzipped(t, req.body)
			if code, raw, _ := post(req); code != http.StatusAccepted {
				t.Fatalf("got %d %s, want 202", code, raw)
			}
		})

		refused := []struct {
			name      string
			req       ceRequest
			want      int
			wantField string // of a 400
			wantMsg   string
		}{
			{"type of other characters", ceStructured(`{"specversion":"1.0","id":"ce-bad","source":"/users","type":"com.example/user created"}`),
				400, "type", "allowed are"},
			{"no specversion", ceStructured(`{"id":"ce-bad","source":"/users","type":"t"}`), 400, "specversion", "required"},
			{"specversion 0.3", ceStructured(`{"specversion":"0.3","id":"ce-bad","source":"/users","type":"t"}`), 400, "specversion", `"1.0"`},
			{"no source", ceStructured(`{"specversion":"1.0","id":"ce-bad","type":"t"}`), 400, "source", "required"},
			{"data_base64", ceStructured(`{"specversion":"1.0","id":"ce-bad","source":"/users","type":"t","data_base64":"aGk="}`),
				400, "data_base64", "must be JSON"},
			{"callback at the metadata address", ceStructured(`{"specversion":"1.0","id":"ce-bad","source":"/users","type":"t",` +
				`"callbackfailurl":"http://169.254.169.254/"}`), 400, "callbackfailurl", ""},
			{"id other than Idempotency-Key", ceStructured(`{"specversion":"1.0","id":"ce-bad","source":"/users","type":"t"}`, "Idempotency-Key", "ce-other"),
				400, "id", "Idempotency-Key"},
			{"binary, no ce-id", ceBinary("", `{}`), 400, "id", "ce-id header"},
			{"binary, data not JSON", ceBinary("ce-bad", `{"a":`), 400, "data", "not valid JSON"},
			{"binary, data as text", ceBinary("ce-bad", `hello`, "Content-Type", "text/plain"), 415, "", "CloudEvents data must be JSON"},
			{"another event format", ceRequest{header: []string{"Content-Type", "application/cloudevents+xml"}, body: []byte(`<event/>`)},
				415, "", "JSON event format"},
			{"batch mode", ceRequest{header: []string{"Content-Type", "application/cloudevents-batch+json"}, body: []byte(`[]`)},
				415, "", "batch"},
			{"too large", ceStructured(`{"specversion":"1.0","id":"ce-bad","source":"/users","type":"t","data":"` + strings.Repeat("x", 5000) + `"}`),
				413, "", "4096 bytes"},
			{"binary, too large", ceBinary("ce-bad", `"`+strings.Repeat("x", 5000)+`"`), 413, "", "4096 bytes"},
		}
		for _, tc := range refused {
			t.Run(tc.name, func(t *testing.T) {
				code, raw, ans := post(tc.req)
				msg, _ := ans["error"].(string)
				if code != tc.want || !strings.Contains(msg, tc.wantMsg) {
					t.Fatalf("got %d %s, want %d saying %q", code, raw, tc.want, tc.wantMsg)
				}
				if code == http.StatusBadRequest && ans["field"] != tc.wantField {
					t.Errorf("400 names field %v, want %s", ans["field"], tc.wantField)
				}
			})
		}
		// Only what was answered 202 was recorded.
		if _, err := st.Get(t.Context(), "ce-bad"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ce-bad: got %v, want it never recorded", err)
		}
		snaps, _, err := st.List(t.Context(), store.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(snaps) != 3 {
			t.Errorf("recorded %d events, want 3 (ce-1, ce-2, ce-gzip)", len(snaps))
		}
	})
}
