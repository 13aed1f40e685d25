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
	"github.com/boomerang-events/boomerang/store"
)

// The seed corpus is both added here with f.Add and committed under
// testdata/fuzz/<target>/, so plain `go test` runs it and the fuzzer starts
// from it. The committed files were generated from the seed functions at the
// end of this file; keep the two in step when adding a seed.

// FuzzParseEvent checks parseEvent on arbitrary bodies and Idempotency-Key
// headers, under both the default policy and one allowing private networks.
func FuzzParseEvent(f *testing.F) {
	for _, s := range parseEventSeeds() {
		f.Add([]byte(s.body), s.idemKey)
	}
	f.Fuzz(func(t *testing.T, body []byte, idemKey string) {
		open := outbound.Policy{AllowPrivate: true}
		strict := outbound.Policy{}
		evOpen, errOpen := checkParse(t, body, idemKey, open)
		evStrict, errStrict := checkParse(t, body, idemKey, strict)

		// The policy decides only whether callback URLs are accepted: the
		// strict one refuses a superset of what the open one refuses, and
		// both store the same body for the same id.
		switch {
		case errOpen != nil && errStrict == nil:
			t.Fatalf("refused with AllowPrivate (%v) but accepted with the zero policy", errOpen)
		case errOpen == nil && errStrict != nil:
			var fe *event.FieldError
			if errors.As(errStrict, &fe) && fe.Field != "callback.success_url" && fe.Field != "callback.fail_url" {
				t.Fatalf("accepted with AllowPrivate, refused with the zero policy on field %q (%v); want a callback field", fe.Field, errStrict)
			}
		case errOpen == nil && errStrict == nil && evOpen.Record.ID == evStrict.Record.ID:
			if !bytes.Equal(evOpen.Body, evStrict.Body) {
				t.Fatalf("same id, bodies differ by policy:\nopen   %q\nstrict %q", evOpen.Body, evStrict.Body)
			}
		}
	})
}

// checkParse runs parseEvent on one input and checks every property of its
// result. It returns what parseEvent returned.
func checkParse(t *testing.T, body []byte, idemKey string, guard outbound.Policy) (store.NewEvent, error) {
	t.Helper()
	ev, err := parseEvent(body, idemKey, guard)
	if err != nil {
		var fe *event.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("policy %+v: got error %T %v, want an *event.FieldError", guard, err, err)
		}
		if fe.Field == "" {
			t.Fatalf("policy %+v: got FieldError with an empty Field (%v), want the field at fault", guard, err)
		}
		if !errors.Is(err, event.ErrInvalid) {
			t.Fatalf("policy %+v: error %v does not match event.ErrInvalid", guard, err)
		}
		return ev, err
	}

	// No blow-up: the stored body is the input re-encoded. One input byte
	// becomes at most 6 (a '<', '>', '&' escaped as \u003c; U+2028 and
	// U+2029 are 3 bytes escaped as 6; invalid UTF-8 becomes the 3-byte
	// U+FFFD). What is added: the id (the header's or a generated one of 30
	// bytes) with its key, and an empty "fail_url" or "success_url" of a
	// callback that names only one.
	if max := 6*len(body) + len(idemKey) + 256; len(ev.Body) > max {
		t.Fatalf("policy %+v: stored body is %d bytes for a %d-byte input, want at most %d", guard, len(ev.Body), len(body), max)
	}
	if !json.Valid(ev.Body) {
		t.Fatalf("policy %+v: stored body is not valid JSON: %q", guard, ev.Body)
	}
	var back struct {
		ID        string `json:"id"`
		EventType string `json:"event_type"`
	}
	if err := json.Unmarshal(ev.Body, &back); err != nil {
		t.Fatalf("policy %+v: stored body does not decode: %v (%q)", guard, err, ev.Body)
	}
	if back.ID != ev.Record.ID || back.EventType != ev.Record.EventType {
		t.Fatalf("policy %+v: stored body has id %q, event_type %q; record has %q, %q", guard, back.ID, back.EventType, ev.Record.ID, ev.Record.EventType)
	}
	if err := event.ValidateID(ev.Record.ID); err != nil {
		t.Fatalf("policy %+v: accepted id %q: %v", guard, ev.Record.ID, err)
	}
	if err := event.ValidateEventType(ev.Record.EventType); err != nil {
		t.Fatalf("policy %+v: accepted event_type %q: %v", guard, ev.Record.EventType, err)
	}
	if idemKey != "" && ev.Record.ID != idemKey {
		t.Fatalf("policy %+v: got id %q, want the Idempotency-Key %q", guard, ev.Record.ID, idemKey)
	}
	if got, want := ev.Record.BodyHash, store.HashBody(ev.Body); got != want {
		t.Fatalf("policy %+v: got BodyHash %s, want HashBody(body) %s", guard, got, want)
	}
	for _, u := range []string{ev.Record.SuccessURL, ev.Record.FailURL} {
		if u != "" && guard.CheckURL(u) != nil {
			t.Fatalf("policy %+v: accepted callback URL %q that the policy refuses", guard, u)
		}
	}

	// The same request again is the same event (a client's retry).
	if again, err := parseEvent(body, idemKey, guard); err != nil {
		t.Fatalf("policy %+v: second parse of the same input failed: %v", guard, err)
	} else if again.Record.ID == ev.Record.ID && !bytes.Equal(again.Body, ev.Body) {
		t.Fatalf("policy %+v: same input, same id, different stored bodies:\n%q\n%q", guard, ev.Body, again.Body)
	}

	// Normalisation is idempotent: the stored body, sent again, is accepted
	// as the same event with the same hash, so a retried POST matches.
	re, err := parseEvent(ev.Body, "", guard)
	if err != nil {
		t.Fatalf("policy %+v: stored body %q is refused when sent again: %v", guard, ev.Body, err)
	}
	if re.Record.BodyHash != ev.Record.BodyHash {
		t.Fatalf("policy %+v: stored body is not a fixed point:\nfirst  %q\nsecond %q", guard, ev.Body, re.Body)
	}
	if re.Record.ID != ev.Record.ID || re.Record.EventType != ev.Record.EventType ||
		re.Record.SuccessURL != ev.Record.SuccessURL || re.Record.FailURL != ev.Record.FailURL {
		t.Fatalf("policy %+v: stored body parses to another record: got %+v, want %+v", guard, re.Record, ev.Record)
	}
	return ev, nil
}

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
		case !jsonContentType(contentType):
			mustStatus(t, rec, http.StatusUnsupportedMediaType)
		case len(body) > fuzzMaxBody:
			mustStatus(t, rec, http.StatusRequestEntityTooLarge)
		default:
			parsed, parseErr = parseEvent(body, "", guard)
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

type parseEventSeed struct {
	name, body, idemKey string
}

// nested returns a payload of depth nested arrays.
func nested(depth int) string {
	return `{"event_type":"deep","payload":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
}

func withCallback(success string) string {
	return `{"event_type":"a","callback":{"success_url":"` + success + `","fail_url":""}}`
}

func parseEventSeeds() []parseEventSeed {
	return []parseEventSeed{
		{"example", fuzzExampleEvent, ""},
		{"with_id_and_callbacks", `{"id":"evt-42","event_type":"user_created","payload":{"user_id":"12345"},` +
			`"callback":{"success_url":"http://localhost:8080/ok","fail_url":"https://hooks.example.com/failed?a=1&b=<2>"}}`, ""},
		{"idempotency_key", `{"event_type":"order.paid","payload":{"total":12.5}}`, "order-1234"},
		{"id_differs_from_key", `{"id":"evt-1","event_type":"a"}`, "evt-2"},
		{"invalid_key", `{"event_type":"a"}`, "has space\x00\xff"},
		{"deep_nesting_10000", nested(10000), ""},
		{"huge_numbers", `{"event_type":"n","payload":{"big":1e400,"long":123456789012345678901234567890,"neg":-0.0e-400}}`, ""},
		{"invalid_utf8", `{"event_type":"user` + "\xff" + `created","payload":"` + "\xff\xfe\xc3" + `","metadata":{"k` + "\xed\xa0\x80" + `":"` + "\xc3" + `"}}`, ""},
		{"invalid_utf8_payload_ok_type", `{"event_type":"a","payload":{"s":"` + "\xff\xc0\x80" + `\ud800"},"metadata":{"` + "\xff" + `":"1","` + "\xfe" + `":"2"}}`, ""},
		{"duplicate_keys", `{"event_type":"a","event_type":"b","id":"x","ID":"y","EVENT_TYPE":"c"}`, ""},
		{"wrong_types", `{"event_type":42}`, ""},
		{"metadata_array", `{"event_type":"a","metadata":[]}`, ""},
		{"metadata_number_value", `{"event_type":"a","metadata":{"v":1,"w":null}}`, ""},
		{"timestamp_number", `{"event_type":"a","timestamp":5}`, ""},
		{"callback_string", `{"event_type":"a","callback":"x","payload":null}`, ""},
		{"giant_event_type", `{"event_type":"` + strings.Repeat("a", 100<<10) + `"}`, ""},
		{"empty", "", ""},
		{"null", "null", ""},
		{"array", "[]", ""},
		{"trailing_garbage", `{"event_type":"a"}{"event_type":"b"}x`, ""},
		{"bom", "\xef\xbb\xbf" + `{"event_type":"a"}`, ""},
		{"nul_bytes", "{\"event_type\":\"a\x00\"}\x00", ""},
		{"escaped_nul_in_id", `{"id":"evt\u0000","event_type":"a"}`, ""},
		{"callback_javascript", withCallback("javascript:alert(1)"), ""},
		{"callback_file", withCallback("file:///etc/passwd"), ""},
		{"callback_metadata_ip", withCallback("http://169.254.169.254/latest/meta-data/"), ""},
		{"callback_ipv6_loopback", withCallback("http://[::1]:8080/x"), ""},
		{"callback_userinfo", withCallback("http://user:pass@host/"), ""},
		{"callback_long_url", withCallback("https://example.com/" + strings.Repeat("p", 8<<10)), ""},
		{"html_and_separators", `{"event_type":"a","payload":"<&>` + "\u2028\u2029" + `","metadata":{"<":"&"},"timestamp":"2024-08-20T05:21:19Z"}`, ""},
		{"folded_keys", `{"Event_Type":"a","TIMESTAMP":null,"callbac` + "\u212a" + `":{"ſuccess_url":"https://x.example"}}`, ""},
	}
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
