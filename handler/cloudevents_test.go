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

// CloudEvents batch mode (application/cloudevents-batch+json) is answered
// by POST /event as POST /events answers it, item by item, each item being
// a CloudEvent in structured mode; POST /events takes it too, and refuses
// the single-event modes.
func TestCloudEventsBatch(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		srv := handler.NewServer(st, handler.ServerConfig{MaxBodyBytes: 1024, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		t.Cleanup(srv.Close)
		h := srv.Handler()
		type result struct {
			Status    int            `json:"status"`
			EventID   string         `json:"event_id"`
			StatusURL string         `json:"status_url"`
			Event     map[string]any `json:"event"`
			Error     string         `json:"error"`
			Field     string         `json:"field"`
		}
		post := func(path, contentType, body string, header ...string) (int, []result, string) {
			t.Helper()
			req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			req.Header.Set("Content-Type", contentType)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var ans struct {
				Results []result `json:"results"`
			}
			json.Unmarshal(rec.Body.Bytes(), &ans)
			return rec.Code, ans.Results, rec.Body.String()
		}
		ce := func(id, more string) string {
			return `{"specversion":"1.0","id":"` + id + `","source":"/users","type":"user.created","data":{"n":1}` + more + `}`
		}
		batch := `[` + strings.Join([]string{
			ce("b-1", `,"subject":"user/1"`),
			ce("b-1", `,"subject":"user/1"`), // the same again: a repeat
			ce("b-1", `,"subject":"user/2"`), // other content: a conflict
			`{"specversion":"1.0","id":"b-bad","source":"/users","type":"user created"}`,
			ce("b-bad", `,"data_base64":"aGk="`),
			`["not an object"]`,
			ce("b-big", `,"pad":"`+strings.Repeat("x", 1100)+`"`),
			ce("b-2", ``),
		}, ",") + `]`
		want := []struct {
			status  int
			id      string
			field   string
			message string
		}{
			{202, "b-1", "", ""},
			{200, "b-1", "", ""},
			{409, "b-1", "", "different body"},
			{400, "", "type", "allowed are"},
			{400, "", "data_base64", "must be JSON"},
			{400, "", "body", "JSON object"},
			{413, "", "", "max_body_bytes"},
			{202, "b-2", "", ""},
		}
		check := func(t *testing.T, code int, got []result, raw string, first bool) {
			t.Helper()
			if code != http.StatusOK || len(got) != len(want) {
				t.Fatalf("got %d %s, want 200 with %d results", code, raw, len(want))
			}
			for i, w := range want {
				g := got[i]
				status := w.status
				if !first && status == 202 { // sent before: a repeat now
					status = 200
				}
				if g.Status != status || g.EventID != w.id || g.Field != w.field || !strings.Contains(g.Error, w.message) {
					t.Errorf("item %d: got %+v, want status %d, event_id %q, field %q, error with %q", i, g, status, w.id, w.field, w.message)
				}
				if status == 202 && g.StatusURL != "/callback?event_id="+w.id {
					t.Errorf("item %d: got status_url %q, want /callback?event_id=%s", i, g.StatusURL, w.id)
				}
				if status == 200 && g.Event["event_id"] != w.id {
					t.Errorf("item %d: got event %v, want the record of %s", i, g.Event, w.id)
				}
			}
		}
		t.Run("POST /event", func(t *testing.T) {
			code, got, raw := post("/event", "application/cloudevents-batch+json", batch)
			check(t, code, got, raw, true)
		})
		t.Run("POST /events, the same batch again", func(t *testing.T) {
			code, got, raw := post("/events", "application/cloudevents-batch+json; charset=utf-8", batch)
			check(t, code, got, raw, false)
		})
		t.Run("stored as Boomerang's JSON", func(t *testing.T) {
			want, err := wire.Parse([]byte(`{"id":"b-1","event_type":"user.created","payload":{"n":1},"metadata":{"source":"/users","subject":"user/1"}}`), "", outbound.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := st.Body(t.Context(), "b-1"); err != nil || !bytes.Equal(got, want.Body) {
				t.Errorf("stored body of b-1: got %s (%v), want %s", got, err, want.Body)
			}
		})
		for _, tc := range []struct {
			name, path, contentType, body string
			header                        []string
			want                          int
			wantMsg                       string
		}{
			{"not an array", "/event", "application/cloudevents-batch+json", ce("b-3", ""), nil, 400, "JSON array"},
			{"empty", "/event", "application/cloudevents-batch+json", `[]`, nil, 400, "no event"},
			{"structured mode on POST /events", "/events", "application/cloudevents+json", ce("b-3", ""), nil, 415, "POST /event"},
			{"binary mode on POST /events", "/events", "application/json", `[]`, []string{"ce-specversion", "1.0"}, 415, "POST /event"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, _, raw := post(tc.path, tc.contentType, tc.body, tc.header...)
				if code != tc.want || !strings.Contains(raw, tc.wantMsg) {
					t.Errorf("got %d %s, want %d saying %q", code, raw, tc.want, tc.wantMsg)
				}
			})
		}
	})
}
