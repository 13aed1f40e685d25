package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/internal/wire"
	"github.com/boomerang-events/boomerang/store"
)

// The seed corpus is both added here with f.Add and committed under
// testdata/fuzz/<target>/, so plain `go test` runs it and the fuzzer starts
// from it. The committed files were generated from the seed functions at the
// end of this file; keep the two in step when adding a seed.

// fuzzMaxBody is the MaxBodyBytes of FuzzPostEvent's server: small, so that
// 413 is reachable.
const fuzzMaxBody = 4096

// fuzzFlushEvery bounds miniredis' memory during long fuzz runs: the store
// is emptied after this many requests.
const fuzzFlushEvery = 5000

// FuzzPostEvent sends arbitrary bodies with arbitrary Content-Types to POST
// /event of a Server on miniredis.
func FuzzPostEvent(f *testing.F) {
	for _, s := range postEventSeeds() {
		f.Add([]byte(s.body), s.contentType)
	}

	// One server per fuzzing process: f.Fuzz calls the function below
	// sequentially within a process.
	b := redistest.Mini(f)
	st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
	if err != nil {
		f.Fatal(err)
	}
	logs := &syncBuffer{}
	srv := NewServer(st, ServerConfig{MaxBodyBytes: fuzzMaxBody, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	f.Cleanup(srv.Close)
	h := srv.Handler()
	guard := outbound.Policy{} // ServerConfig.AllowPrivateCallbacks is false
	runs := 0

	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		if runs++; runs%fuzzFlushEvery == 0 {
			b.Mini.FlushAll() // our own miniredis, created above
		}
		logs.Reset()

		req := httptest.NewRequest(http.MethodPost, "/event", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("status %d: answer is not a JSON object: %v (%q)", rec.Code, err, rec.Body.Bytes())
		}

		// What the answer must be, from the request alone.
		var parsed store.NewEvent
		var parseErr error
		switch {
		case !wire.JSONContentType(contentType):
			mustStatus(t, rec, http.StatusUnsupportedMediaType)
		case len(body) > fuzzMaxBody:
			mustStatus(t, rec, http.StatusRequestEntityTooLarge)
		default:
			parsed, parseErr = wire.Parse(body, "", guard)
			if parseErr != nil {
				mustStatus(t, rec, http.StatusBadRequest)
				var fe *event.FieldError
				if !errors.As(parseErr, &fe) {
					t.Fatalf("parseEvent error %v is not an *event.FieldError", parseErr)
				}
				if got, _ := answer["field"].(string); got != fe.Field {
					t.Errorf("400 answer has field %q, want %q (%v)", got, fe.Field, parseErr)
				}
			}
		}

		switch rec.Code {
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if msg, _ := answer["error"].(string); msg == "" {
				t.Fatalf("status %d: answer has no \"error\" string: %q", rec.Code, rec.Body.Bytes())
			}
			return
		case http.StatusOK, http.StatusAccepted:
		case http.StatusServiceUnavailable:
			t.Fatalf("status 503 with miniredis up: %q; server logs: %s", rec.Body.Bytes(), logs.String())
		default:
			t.Fatalf("got status %d (%q), want one of 200, 202, 400, 409, 413, 415", rec.Code, rec.Body.Bytes())
		}

		// 2xx: the event was parsed above and is now stored.
		if parseErr != nil {
			t.Fatalf("status %d for a body parseEvent refuses (%v)", rec.Code, parseErr)
		}
		id, _ := answer["event_id"].(string)
		if id == "" {
			t.Fatalf("status %d: answer has no \"event_id\" string: %q", rec.Code, rec.Body.Bytes())
		}
		if err := event.ValidateID(id); err != nil {
			t.Fatalf("status %d: answer's event_id %q: %v", rec.Code, id, err)
		}
		if rec.Code == http.StatusOK && id != parsed.Record.ID {
			// A 200 repeats a stored event, so the body named its id.
			t.Fatalf("200 answer has event_id %q, want the body's id %q", id, parsed.Record.ID)
		}
		if rec.Code != http.StatusAccepted {
			return
		}
		get := httptest.NewRecorder()
		h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/callback?event_id="+url.QueryEscape(id), nil))
		if get.Code != http.StatusOK {
			t.Fatalf("GET /callback?event_id=%s after 202: got status %d (%q), want 200", id, get.Code, get.Body.Bytes())
		}
		var view struct {
			EventID   string `json:"event_id"`
			EventType string `json:"event_type"`
		}
		if err := json.Unmarshal(get.Body.Bytes(), &view); err != nil {
			t.Fatalf("GET /callback?event_id=%s: answer is not JSON: %v", id, err)
		}
		if view.EventID != id || view.EventType != parsed.Record.EventType {
			t.Fatalf("GET /callback?event_id=%s: got event %q of type %q, want %q of type %q", id, view.EventID, view.EventType, id, parsed.Record.EventType)
		}
	})
}

func mustStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("got status %d (%q), want %d", rec.Code, rec.Body.Bytes(), want)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines to log to.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// The seeds. Everything below uses only the strings package, so it can be
// copied into a program that writes testdata/fuzz.

// fuzzExampleEvent is the original event package's example event.
const fuzzExampleEvent = `{
  "event_type": "user_created",
  "timestamp": "2024-08-20T05:21:19.143357839Z",
  "payload": {"user_id": "12345", "username": "johndoe"},
  "metadata": {"source": "user_service", "version": "1.0"}
}`

// nested returns a payload of depth nested arrays.
func nested(depth int) string {
	return `{"event_type":"deep","payload":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
}

func withCallback(success string) string {
	return `{"event_type":"a","callback":{"success_url":"` + success + `","fail_url":""}}`
}

type postEventSeed struct {
	name, body, contentType string
}

func postEventSeeds() []postEventSeed {
	const ct = "application/json"
	return []postEventSeed{
		{"example", fuzzExampleEvent, ct},
		{"example_charset", fuzzExampleEvent, "application/json; charset=utf-8"},
		{"example_cloudevents", fuzzExampleEvent, "application/cloudevents+json"},
		{"example_text_plain", fuzzExampleEvent, "text/plain"},
		{"example_no_content_type", fuzzExampleEvent, ""},
		{"example_garbage_content_type", fuzzExampleEvent, ";;;"},
		{"bad_content_type_param", fuzzExampleEvent, `application/json; charset="`},
		{"with_id", `{"id":"evt-fuzz-1","event_type":"a","payload":{"n":1}}`, ct},
		{"with_id_repeat_respaced", `{ "id": "evt-fuzz-1", "event_type": "a", "payload": { "n": 1 } }`, ct},
		{"with_id_other_body", `{"id":"evt-fuzz-1","event_type":"a","payload":{"n":2}}`, ct},
		{"deep_nesting_1500", nested(1500), ct},
		{"too_large", `{"event_type":"a","payload":"` + strings.Repeat("x", fuzzMaxBody) + `"}`, ct},
		{"huge_numbers", `{"event_type":"n","payload":[1e400,123456789012345678901234567890]}`, ct},
		{"invalid_utf8", `{"event_type":"a` + "\xff" + `","payload":"` + "\xfe" + `"}`, ct},
		{"duplicate_keys", `{"event_type":"a","event_type":"b"}`, ct},
		{"wrong_types", `{"event_type":"a","metadata":{"v":1},"timestamp":5,"callback":"x"}`, ct},
		{"empty", "", ct},
		{"null", "null", ct},
		{"array", "[]", ct},
		{"trailing_garbage", `{"event_type":"a"} x`, ct},
		{"bom", "\xef\xbb\xbf" + `{"event_type":"a"}`, ct},
		{"nul", "\x00", ct},
		{"callback_metadata_ip", withCallback("http://169.254.169.254/"), ct},
		{"callback_ipv6_loopback", withCallback("http://[::1]/"), ct},
		{"callback_public", withCallback("https://user:pass@hooks.example.com/ok"), "application/problem+json"},
	}
}
