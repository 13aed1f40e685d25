package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/store"
)

// The seed corpus is both added here with f.Add and committed under
// testdata/fuzz/<target>/, so plain `go test` runs it and the fuzzer starts
// from it. The committed files were generated from the seed functions at the
// end of this file; keep the two in step when adding a seed.

// FuzzParseEvent checks Parse on arbitrary bodies and Idempotency-Key
// headers, under both the default policy and one allowing private networks.
func FuzzParseEvent(f *testing.F) {
	for _, s := range ParseSeeds() {
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

// checkParse runs Parse on one input and checks every property of its
// result. It returns what Parse returned.
func checkParse(t *testing.T, body []byte, idemKey string, guard outbound.Policy) (store.NewEvent, error) {
	t.Helper()
	ev, err := Parse(body, idemKey, guard)
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
	if again, err := Parse(body, idemKey, guard); err != nil {
		t.Fatalf("policy %+v: second parse of the same input failed: %v", guard, err)
	} else if again.Record.ID == ev.Record.ID && !bytes.Equal(again.Body, ev.Body) {
		t.Fatalf("policy %+v: same input, same id, different stored bodies:\n%q\n%q", guard, ev.Body, again.Body)
	}

	// Normalisation is idempotent: the stored body, sent again, is accepted
	// as the same event with the same hash, so a retried POST matches.
	re, err := Parse(ev.Body, "", guard)
	if err != nil {
		t.Fatalf("policy %+v: stored body %q is refused when sent again: %v", guard, ev.Body, err)
	}
	if re.Record.BodyHash != ev.Record.BodyHash {
		t.Fatalf("policy %+v: stored body is not a fixed point:\nfirst  %q\nsecond %q", guard, ev.Body, re.Body)
	}
	if re.Record.ID != ev.Record.ID || re.Record.EventType != ev.Record.EventType ||
		re.Record.SuccessURL != ev.Record.SuccessURL || re.Record.FailURL != ev.Record.FailURL ||
		re.Record.CallbackMethod != ev.Record.CallbackMethod || re.Record.CallbackFormat != ev.Record.CallbackFormat {
		t.Fatalf("policy %+v: stored body parses to another record: got %+v, want %+v", guard, re.Record, ev.Record)
	}
	return ev, nil
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

type ParseSeed struct {
	name, body, idemKey string
}

// nested returns a payload of depth nested arrays.
func nested(depth int) string {
	return `{"event_type":"deep","payload":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`
}

func withCallback(success string) string {
	return `{"event_type":"a","callback":{"success_url":"` + success + `","fail_url":""}}`
}

func ParseSeeds() []ParseSeed {
	return []ParseSeed{
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
		{"callback_get", `{"event_type":"a","callback":{"success_url":"https://x.example/ok?a=1","method":"GET","format":"json"}}`, ""},
		{"callback_get_cloudevents", `{"event_type":"a","callback":{"fail_url":"https://x.example/f","method":"GET","format":"cloudevents"}}`, ""},
		{"html_and_separators", `{"event_type":"a","payload":"<&>` + "\u2028\u2029" + `","metadata":{"<":"&"},"timestamp":"2024-08-20T05:21:19Z"}`, ""},
		{"folded_keys", `{"Event_Type":"a","TIMESTAMP":null,"callbac` + "\u212a" + `":{"ſuccess_url":"https://x.example"}}`, ""},
	}
}
