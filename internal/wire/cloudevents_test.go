package wire

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/store"
)

// ceInput is a CloudEvent as a request carries it: structured (body only)
// or binary (headers and body).
type ceInput struct {
	binary  bool
	header  map[string][]string // binary mode: the ce-* headers and Content-Type
	body    string
	idemKey string
}

func (c ceInput) parse(guard outbound.Policy) (store.NewEvent, error) {
	if c.binary {
		h := http.Header{}
		for k, vs := range c.header {
			for _, v := range vs {
				h.Add(k, v)
			}
		}
		return ParseCloudEventBinary(h, []byte(c.body), c.idemKey, guard)
	}
	return ParseCloudEvent([]byte(c.body), c.idemKey, guard)
}

func structured(body string) ceInput { return ceInput{body: body} }

// binary is a binary-mode input: header holds name, value pairs.
func binary(body string, header ...string) ceInput {
	h := map[string][]string{}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = append(h[header[i]], header[i+1])
	}
	return ceInput{binary: true, header: h, body: body}
}

// ceHeaders are the required attributes of a binary-mode event.
var ceHeaders = []string{"ce-specversion", "1.0", "ce-id", "e1", "ce-source", "/users", "ce-type", "user.created"}

func withHeaders(extra ...string) []string { return append(append([]string{}, ceHeaders...), extra...) }

// A CloudEvent, in either mode, is the Boomerang event of the same
// content: the same record and the same stored bytes (so a forward target
// gets Boomerang's JSON, and a repeat in either form or mode is a repeat).
func TestCloudEventMapping(t *testing.T) {
	const cbOK = "http://127.0.0.1:9000/ok"
	tests := []struct {
		name   string
		in     ceInput
		native string // the Boomerang event of the same content
	}{
		{"structured, required attributes",
			structured(`{"specversion":"1.0","id":"e1","source":"/users","type":"user.created"}`),
			`{"id":"e1","event_type":"user.created","metadata":{"source":"/users"}}`},
		{"structured, every attribute",
			structured(`{"specversion":"1.0","id":"e1","source":"/users","type":"user.created","time":"2024-08-20T05:21:19.143357839Z",
				"subject":"user/42","dataschema":"https://example.com/user.json","datacontenttype":"application/json",
				"data":{ "user_id" : "42", "tags":[1, 2] },"tenant":"acme","count":3,"replay":false,
				"callbacksuccessurl":"` + cbOK + `","callbackfailurl":"` + cbOK + `"}`),
			`{"id":"e1","event_type":"user.created","timestamp":"2024-08-20T05:21:19.143357839Z","payload":{"user_id":"42","tags":[1,2]},
				"metadata":{"count":"3","dataschema":"https://example.com/user.json","replay":"false","source":"/users","subject":"user/42","tenant":"acme"},
				"callback":{"success_url":"` + cbOK + `","fail_url":"` + cbOK + `"}}`},
		{"structured, partitionkey is the ordering key",
			structured(`{"specversion":"1.0","id":"e1","source":"/users","type":"user.created","partitionkey":"user-42"}`),
			`{"id":"e1","event_type":"user.created","metadata":{"source":"/users"},"ordering_key":"user-42"}`},
		{"binary, ce-partitionkey is the ordering key",
			binary(``, withHeaders("ce-partitionkey", "user-42")...),
			`{"id":"e1","event_type":"user.created","metadata":{"source":"/users"},"ordering_key":"user-42"}`},
		{"structured, one callback URL",
			structured(`{"specversion":"1.0","id":"e1","source":"/users","type":"user.created","callbackfailurl":"` + cbOK + `"}`),
			`{"id":"e1","event_type":"user.created","metadata":{"source":"/users"},"callback":{"fail_url":"` + cbOK + `"}}`},
		{"structured, null is absent",
			structured(`{"specversion":"1.0","id":"e1","source":"/users","type":"user.created","subject":null,"time":null,"tenant":null}`),
			`{"id":"e1","event_type":"user.created","metadata":{"source":"/users"}}`},
		{"structured, string data and a +json datacontenttype",
			structured(`{"specversion":"1.0","id":"e1","source":"/users","type":"user.created","datacontenttype":"application/vnd.users+json; charset=utf-8","data":"hello"}`),
			`{"id":"e1","event_type":"user.created","payload":"hello","metadata":{"source":"/users"}}`},
		{"structured, Idempotency-Key equal to id",
			ceInput{body: `{"specversion":"1.0","id":"e1","source":"/users","type":"user.created"}`, idemKey: "e1"},
			`{"id":"e1","event_type":"user.created","metadata":{"source":"/users"}}`},
		{"binary, required attributes, no data",
			binary(``, ceHeaders...),
			`{"id":"e1","event_type":"user.created","metadata":{"source":"/users"}}`},
		{"binary, every attribute",
			binary(" {\"user_id\": \"42\", \"tags\": [1, 2]}\n", withHeaders("Content-Type", "application/json",
				"ce-time", "2024-08-20T05:21:19.143357839Z", "ce-subject", "user/42", "ce-dataschema", "https://example.com/user.json",
				"ce-tenant", "acme", "ce-count", "3", "ce-replay", "false",
				"ce-callbacksuccessurl", cbOK, "ce-callbackfailurl", cbOK)...),
			`{"id":"e1","event_type":"user.created","timestamp":"2024-08-20T05:21:19.143357839Z","payload":{"user_id":"42","tags":[1,2]},
				"metadata":{"count":"3","dataschema":"https://example.com/user.json","replay":"false","source":"/users","subject":"user/42","tenant":"acme"},
				"callback":{"success_url":"` + cbOK + `","fail_url":"` + cbOK + `"}}`},
		{"binary, header names in any case",
			binary(`"hello"`, "CE-SPECVERSION", "1.0", "Ce-Id", "e1", "ce-SOURCE", "/users", "cE-tYpE", "user.created", "Ce-TenantName", "acme"),
			`{"id":"e1","event_type":"user.created","payload":"hello","metadata":{"source":"/users","tenantname":"acme"}}`},
		{"binary, percent-encoded and quoted values",
			binary(``, withHeaders("ce-subject", "zo%C3%AB%20caf%c3%a9", "ce-tenant", `"a \"quoted\" %25 value"`, "ce-note", "100% raw, zoë")...),
			`{"id":"e1","event_type":"user.created","metadata":{"note":"100% raw, zoë","source":"/users","subject":"zoë café","tenant":"a \"quoted\" % value"}}`},
		{"binary, ce-specversion among other headers",
			binary(`{}`, withHeaders("Authorization", "Bearer k", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "Idempotency-Key", "e1")...),
			`{"id":"e1","event_type":"user.created","payload":{},"metadata":{"source":"/users"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.in.parse(outbound.Policy{AllowPrivate: true})
			if err != nil {
				t.Fatalf("got %v, want it accepted", err)
			}
			want, err := Parse([]byte(tc.native), "", outbound.Policy{AllowPrivate: true})
			if err != nil {
				t.Fatalf("the native twin is refused: %v", err)
			}
			if string(got.Body) != string(want.Body) {
				t.Errorf("stored body:\ngot  %s\nwant %s", got.Body, want.Body)
			}
			if got.Record.ID != want.Record.ID || got.Record.EventType != want.Record.EventType || got.Record.BodyHash != want.Record.BodyHash ||
				got.Record.SuccessURL != want.Record.SuccessURL || got.Record.FailURL != want.Record.FailURL {
				t.Errorf("record: got %+v, want %+v", got.Record, want.Record)
			}
		})
	}
}

// Every CloudEvent refused is a 400 naming the CloudEvents attribute at
// fault (or the body, or the data).
func TestCloudEventRefusals(t *testing.T) {
	const req = `"specversion":"1.0","id":"e1","source":"/users","type":"user.created"`
	tests := []struct {
		name      string
		in        ceInput
		wantField string
		wantMsg   string // a part of the message, if any
	}{
		{"empty body", structured(` `), "body", "is empty"},
		{"a partitionkey that is not an ordering key", structured(`{` + req + `,"partitionkey":"user 42"}`), "partitionkey", "allowed are letters"},
		{"not UTF-8", structured("{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"/\xff\",\"type\":\"t\"}"), "body", "UTF-8"},
		{"not JSON", structured(`{"specversion":`), "body", "not valid JSON"},
		{"an array", structured(`[{` + req + `}]`), "body", "JSON object"},
		{"null", structured(`null`), "body", "JSON object"},
		{"a string", structured(`"x"`), "body", "JSON object"},
		{"no specversion", structured(`{"id":"e1","source":"/users","type":"t"}`), "specversion", "is required"},
		{"specversion 0.3", structured(`{"specversion":"0.3","id":"e1","source":"/users","type":"t"}`), "specversion", `"1.0"`},
		{"specversion a number", structured(`{"specversion":1.0,"id":"e1","source":"/users","type":"t"}`), "specversion", "must be a string"},
		{"no id", structured(`{"specversion":"1.0","source":"/users","type":"t"}`), "id", "is required"},
		{"empty id", structured(`{"specversion":"1.0","id":"","source":"/users","type":"t"}`), "id", "is required"},
		{"id of other characters", structured(`{"specversion":"1.0","id":"a b","source":"/users","type":"t"}`), "id", "allowed are"},
		{"id too long", structured(`{"specversion":"1.0","id":"` + strings.Repeat("i", 129) + `","source":"/users","type":"t"}`), "id", "at most 128"},
		{"id a number", structured(`{"specversion":"1.0","id":7,"source":"/users","type":"t"}`), "id", "must be a string"},
		{"id other than Idempotency-Key", ceInput{body: `{` + req + `}`, idemKey: "e2"}, "id", "Idempotency-Key"},
		{"no source", structured(`{"specversion":"1.0","id":"e1","type":"t"}`), "source", "is required"},
		{"empty source", structured(`{"specversion":"1.0","id":"e1","source":"","type":"t"}`), "source", "is required"},
		{"no type", structured(`{"specversion":"1.0","id":"e1","source":"/users"}`), "type", "is required"},
		{"type of other characters", structured(`{"specversion":"1.0","id":"e1","source":"/users","type":"com.example/user created"}`), "type", "allowed are"},
		{"type too long", structured(`{"specversion":"1.0","id":"e1","source":"/users","type":"` + strings.Repeat("t", 129) + `"}`), "type", "at most 128"},
		{"time not RFC 3339", structured(`{` + req + `,"time":"yesterday"}`), "time", "RFC 3339"},
		{"time a number", structured(`{` + req + `,"time":1724131279}`), "time", "must be a string"},
		{"empty subject", structured(`{` + req + `,"subject":""}`), "subject", "not be empty"},
		{"empty dataschema", structured(`{` + req + `,"dataschema":""}`), "dataschema", "not be empty"},
		{"data_base64", structured(`{` + req + `,"data_base64":"aGk="}`), "data_base64", "must be JSON"},
		{"datacontenttype not JSON", structured(`{` + req + `,"datacontenttype":"text/plain","data":"hi"}`), "datacontenttype", "must be JSON"},
		{"attribute name in capitals", structured(`{` + req + `,"Tenant":"acme"}`), "Tenant", "lowercase"},
		{"attribute name empty", structured(`{` + req + `,"":"x"}`), "body", "empty name"},
		{"attribute name with a dash", structured(`{` + req + `,"x-tenant":"acme"}`), "x-tenant", "lowercase"},
		{"extension an object", structured(`{` + req + `,"tenant":{"a":1}}`), "tenant", "an object"},
		{"extension an array", structured(`{` + req + `,"tenant":[]}`), "tenant", "an array"},
		{"extension a fraction", structured(`{` + req + `,"count":1.5}`), "count", "integer"},
		{"extension past 32 bits", structured(`{` + req + `,"count":2147483648}`), "count", "integer"},
		{"callback URL a number", structured(`{` + req + `,"callbacksuccessurl":5}`), "callbacksuccessurl", "must be a string"},
		{"callback URL at the metadata address", structured(`{` + req + `,"callbacksuccessurl":"http://169.254.169.254/"}`), "callbacksuccessurl", ""},
		{"callback URL not http", structured(`{` + req + `,"callbackfailurl":"ftp://example.com/"}`), "callbackfailurl", ""},
		{"callback URL private", structured(`{` + req + `,"callbackfailurl":"http://127.0.0.1:9000/"}`), "callbackfailurl", ""},

		{"binary, no ce-specversion", binary(``, "ce-id", "e1", "ce-source", "/users", "ce-type", "t"), "specversion", "ce-specversion header"},
		{"binary, specversion 0.3", binary(``, "ce-specversion", "0.3", "ce-id", "e1", "ce-source", "/users", "ce-type", "t"), "specversion", `"1.0"`},
		{"binary, no ce-id", binary(``, "ce-specversion", "1.0", "ce-source", "/users", "ce-type", "t"), "id", "ce-id header"},
		{"binary, no ce-source", binary(``, "ce-specversion", "1.0", "ce-id", "e1", "ce-type", "t"), "source", "ce-source header"},
		{"binary, no ce-type", binary(``, "ce-specversion", "1.0", "ce-id", "e1", "ce-source", "/users"), "type", "ce-type header"},
		{"binary, type of other characters", binary(``, "ce-specversion", "1.0", "ce-id", "e1", "ce-source", "/users", "ce-type", "a/b"), "type", "allowed are"},
		{"binary, time not RFC 3339", binary(``, withHeaders("ce-time", "2024-08-20")...), "time", "RFC 3339"},
		{"binary, data not JSON", binary(`{"a":`, ceHeaders...), "data", "not valid JSON"},
		{"binary, data two JSON values", binary(`{} {}`, ceHeaders...), "data", "not valid JSON"},
		{"binary, data not UTF-8", binary("\"\xff\"", ceHeaders...), "data", "UTF-8"},
		{"binary, ce-data", binary(``, withHeaders("ce-data", "{}")...), "data", "not a header"},
		{"binary, ce-datacontenttype", binary(``, withHeaders("ce-datacontenttype", "application/json")...), "datacontenttype", "not a header"},
		{"binary, a header twice", binary(``, withHeaders("ce-subject", "a", "ce-subject", "b")...), "subject", "more than one"},
		{"binary, an attribute name with an underscore", binary(``, withHeaders("ce-data_base64", "aGk=")...), "data_base64", "lowercase"},
		{"binary, not UTF-8 once decoded", binary(``, withHeaders("ce-subject", "caf%E9")...), "subject", "UTF-8"},
		{"binary, empty subject", binary(``, withHeaders("ce-subject", "")...), "subject", "not be empty"},
		{"binary, callback URL private", binary(``, withHeaders("ce-callbackfailurl", "http://127.0.0.1:9000/")...), "callbackfailurl", ""},
		{"binary, id other than Idempotency-Key", ceInput{binary: true, header: binary(``, ceHeaders...).header, idemKey: "e2"}, "id", "Idempotency-Key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := tc.in.parse(outbound.Policy{})
			var fe *event.FieldError
			if !errors.As(err, &fe) || !errors.Is(err, event.ErrInvalid) {
				t.Fatalf("got %v (event %s), want an *event.FieldError on %s", err, ev.Body, tc.wantField)
			}
			if fe.Field != tc.wantField || !strings.Contains(fe.Msg, tc.wantMsg) {
				t.Errorf("got %s: %s, want a FieldError on %s saying %q", fe.Field, fe.Msg, tc.wantField, tc.wantMsg)
			}
		})
	}
}

// FormatOf tells the mode as the CloudEvents HTTP binding does: the
// CloudEvents JSON format by Content-Type first, then binary mode by
// ce-specversion, else Boomerang's JSON; and refuses what none of them
// takes with a 415 that says why.
func TestFormatOf(t *testing.T) {
	tests := []struct {
		name    string
		header  []string
		want    Format
		wantMsg string // a part of the MediaTypeError's message; "" for none
	}{
		{"no Content-Type", nil, Native, ""},
		{"JSON", []string{"Content-Type", "application/json"}, Native, ""},
		{"JSON with a charset", []string{"Content-Type", "application/json; charset=utf-8"}, Native, ""},
		{"another +json", []string{"Content-Type", "application/vnd.users+json"}, Native, ""},
		{"text", []string{"Content-Type", "text/plain"}, 0, "Content-Type must be application/json"},
		{"malformed", []string{"Content-Type", "application/"}, 0, "Content-Type must be application/json"},
		{"structured", []string{"Content-Type", "application/cloudevents+json"}, CloudEvent, ""},
		{"structured, in capitals with a charset", []string{"Content-Type", "Application/CloudEvents+JSON; charset=UTF-8"}, CloudEvent, ""},
		{"structured wins over ce-specversion", []string{"Content-Type", "application/cloudevents+json", "ce-specversion", "1.0"}, CloudEvent, ""},
		{"batch", []string{"Content-Type", "application/cloudevents-batch+json"}, CloudEventBatch, ""},
		{"another event format", []string{"Content-Type", "application/cloudevents+xml"}, 0, "JSON event format"},
		{"no event format", []string{"Content-Type", "application/cloudevents"}, 0, "JSON event format"},
		{"a batch in another format", []string{"Content-Type", "application/cloudevents-batch+avro"}, 0, "JSON event format"},
		{"binary, JSON data", []string{"Content-Type", "application/json", "ce-specversion", "1.0"}, CloudEventBinary, ""},
		{"binary, no Content-Type", []string{"Ce-Specversion", "1.0"}, CloudEventBinary, ""},
		{"binary, +json data", []string{"Content-Type", "application/vnd.users+json", "CE-SPECVERSION", "1.0"}, CloudEventBinary, ""},
		{"binary, any specversion", []string{"ce-specversion", "0.3"}, CloudEventBinary, ""},
		{"binary, text data", []string{"Content-Type", "text/plain", "ce-specversion", "1.0"}, 0, "CloudEvents data must be JSON"},
		{"binary, bytes", []string{"Content-Type", "application/octet-stream", "ce-specversion", "1.0"}, 0, "CloudEvents data must be JSON"},
		{"ce- headers without ce-specversion", []string{"Content-Type", "text/plain", "ce-id", "e1"}, 0, "Content-Type must be application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tc.header); i += 2 {
				h.Add(tc.header[i], tc.header[i+1])
			}
			got, err := FormatOf(h)
			if tc.wantMsg == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %v, %v; want %v", got, err, tc.want)
				}
				return
			}
			var mte *MediaTypeError
			if !errors.As(err, &mte) || !strings.Contains(mte.Msg, tc.wantMsg) {
				t.Fatalf("got %v, %v; want a MediaTypeError saying %q", got, err, tc.wantMsg)
			}
		})
	}
}

// Header values are decoded as the HTTP binding says, and leniently where
// it says nothing.
func TestHeaderValue(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"plain", "plain", true},
		{"a%20b", "a b", true},
		{"%41%62", "Ab", true},       // unnecessarily encoded: accepted
		{"zo%C3%AB", "zoë", true},    // UTF-8 in two bytes
		{"zoë", "zoë", true},         // raw UTF-8, as the Go SDK sends it
		{"100%", "100%", true},       // '%' at the end: kept
		{"%zz%4", "%zz%4", true},     // not two hex digits: kept
		{"%2541", "%41", true},       // one round only
		{`"quoted"`, "quoted", true}, // a quoted string
		{`"a\"b\\c"`, `a"b\c`, true}, // with its escapes
		{`"a%20b"`, "a b", true},     // unquoted, then decoded
		{`"`, `"`, true},             // one quote is no quoted string
		{"caf%E9", "", false},        // Latin-1: not UTF-8
		{"%C3", "", false},           // a UTF-8 sequence cut short
		{"\xff", "", false},          // raw bytes that are not UTF-8
	}
	for _, tc := range tests {
		got, ok := headerValue(tc.raw)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("headerValue(%q): got %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseCloudEvent checks ParseCloudEvent on arbitrary bodies: a refusal
// is a FieldError naming a field, and an accepted CloudEvent is stored as a
// Boomerang event that Parse accepts back as the same record and bytes, so
// a forward target can read it and a repeat is recognised. Its seeds are
// the f.Add calls below only (no committed corpus).
func FuzzParseCloudEvent(f *testing.F) {
	const req = `"specversion":"1.0","id":"e1","source":"/users","type":"user.created"`
	for _, s := range []string{
		`{` + req + `}`,
		`{` + req + `,"time":"2024-08-20T05:21:19Z","subject":"user/42","data":{"a":[1,"x"]},"tenant":"acme","n":7,"b":true}`,
		`{` + req + `,"callbacksuccessurl":"http://127.0.0.1:9000/ok","callbackfailurl":""}`,
		`{` + req + `,"data_base64":"aGk="}`,
		`{` + req + `,"datacontenttype":"text/plain","data":"hi"}`,
		`{` + req + `,"X":1,"data":null,"subject":null}`,
		`{"specversion":"1.0","specversion":"0.3","id":"a","source":"s","type":"t"}`,
		`{` + req + `,"k` + "\u2028" + `":"<&>"}`,
		`[]`, `null`, ``, `{"specversion":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		guard := outbound.Policy{AllowPrivate: true}
		ev, err := ParseCloudEvent(body, "", guard)
		if err != nil {
			var fe *event.FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("got error %T %v, want an *event.FieldError naming a field", err, err)
			}
			return
		}
		native, err := Parse(ev.Body, "", guard)
		if err != nil {
			t.Fatalf("stored body %q is refused by Parse: %v", ev.Body, err)
		}
		if string(native.Body) != string(ev.Body) || native.Record.BodyHash != ev.Record.BodyHash {
			t.Fatalf("stored body is not Parse's fixed point:\nfirst  %q\nsecond %q", ev.Body, native.Body)
		}
		if native.Record.ID != ev.Record.ID || native.Record.EventType != ev.Record.EventType ||
			native.Record.SuccessURL != ev.Record.SuccessURL || native.Record.FailURL != ev.Record.FailURL {
			t.Fatalf("stored body parses to another record: got %+v, want %+v", native.Record, ev.Record)
		}
	})
}
