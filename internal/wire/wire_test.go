package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/store"
)

func TestAppendJSON(t *testing.T) {
	in := incoming{
		ID:        "evt-1",
		EventType: "user_created",
		Timestamp: json.RawMessage(`"2024-08-20T05:21:19Z"`),
		Payload:   json.RawMessage(`{"a":[1,2.5e10,null],"s":"x\"y"}`),
		Metadata:  map[string]string{"z": "last", "a": "quote \" back\\slash \x00\x1f tab\t", "ü": "ünïcode \u2028 <&>"},
		Callback:  &callbackURLs{SuccessURL: "http://h/ok?a=1&b=2", Method: event.CallbackPOST, Format: event.CallbackCloudEvents},
	}
	b := in.appendJSON(nil)
	var out incoming
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, b)
	}
	if out.ID != in.ID || out.EventType != in.EventType || string(out.Timestamp) != string(in.Timestamp) ||
		string(out.Payload) != string(in.Payload) || out.Callback.SuccessURL != in.Callback.SuccessURL || out.Callback.FailURL != "" ||
		out.Callback.Method != in.Callback.Method || out.Callback.Format != in.Callback.Format {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	for k, v := range in.Metadata {
		if out.Metadata[k] != v {
			t.Errorf("metadata %q: got %q, want %q", k, out.Metadata[k], v)
		}
	}
	for range 20 { // map order is random: the bytes must not be
		if again := in.appendJSON(nil); string(again) != string(b) {
			t.Fatalf("not deterministic:\n%s\n%s", b, again)
		}
	}
	minimal := incoming{ID: "e", EventType: "t"}
	if got, want := string(minimal.appendJSON(nil)), `{"id":"e","event_type":"t"}`; got != want {
		t.Errorf("minimal: got %s, want %s", got, want)
	}
}

// A long run of malformed bodies must keep getting 400s: a JSON decoder
// with pooled state (goccy/go-json v0.10.5) panics with an index out of
// range after enough of these, which is why parseEvent uses encoding/json.
func TestParseEventMalformedRun(t *testing.T) {
	malformed := []string{`{"\`, `{"\u`, `{"\u12`, `{"a":"\`, `{"event_type":"\`, `"\`, `{"\\`, `{"id":"x","payload":{"\`}
	for i := 0; i < 20000; i++ {
		for _, s := range malformed {
			if _, err := Parse([]byte(s), "", outbound.Policy{}); err == nil {
				t.Fatalf("%q: got no error", s)
			}
		}
	}
}

// null means absent: for metadata itself and for each of its values, which
// are stored as absent, never as "" (that would hand a forward target a
// value the producer did not send). A value of another type is refused.
func TestParseMetadataNulls(t *testing.T) {
	tests := []struct {
		name      string
		metadata  string
		want      string // the stored metadata, "" for none
		wantField string // the field refused, "" for none
	}{
		{"absent", ``, ``, ""},
		{"null", `,"metadata":null`, ``, ""},
		{"empty", `,"metadata":{}`, ``, ""},
		{"a null value", `,"metadata":{"k":null,"source":"users"}`, `,"metadata":{"source":"users"}`, ""},
		{"only null values", `,"metadata":{"k":null}`, ``, ""},
		{"an empty string stays", `,"metadata":{"k":""}`, `,"metadata":{"k":""}`, ""},
		{"a number", `,"metadata":{"k":1}`, ``, "metadata"},
		{"an object", `,"metadata":{"k":{}}`, ``, "metadata"},
		{"not an object", `,"metadata":"x"`, ``, "metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Parse([]byte(`{"id":"e1","event_type":"t"`+tc.metadata+`}`), "", outbound.Policy{})
			if tc.wantField != "" {
				var fe *event.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Fatalf("got %v, want a FieldError on %s", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(ev.Body), `{"id":"e1","event_type":"t"`+tc.want+`}`; got != want {
				t.Errorf("stored: got %s, want %s", got, want)
			}
		})
	}
	// The same event, written with and without its nulls, is one body.
	a, _ := Parse([]byte(`{"id":"e1","event_type":"t","metadata":{"k":null}}`), "", outbound.Policy{})
	b, _ := Parse([]byte(`{"id":"e1","event_type":"t"}`), "", outbound.Policy{})
	if a.Record.BodyHash != b.Record.BodyHash {
		t.Error("a null metadata value changes the body hash: a repeat would be a conflict")
	}
}

// RFC 3339 offsets run from -23:59 to +23:59; time.Parse takes more.
func TestParseTimestampOffsets(t *testing.T) {
	tests := []struct {
		ts string
		ok bool
	}{
		{"2024-08-20T05:21:19Z", true},
		{"2024-08-20T05:21:19.143357839Z", true},
		{"2024-08-20T05:21:19+23:59", true},
		{"2024-08-20T05:21:19-23:59", true},
		{"2024-08-20T05:21:19-00:00", true},
		{"2024-08-20T05:21:19.5+05:30", true},
		{"2024-08-20T05:21:19+24:00", false},
		{"2024-08-20T05:21:19-24:00", false},
		{"2024-08-20T05:21:19+23:60", false},
		{"2024-08-20T05:21:19.5+99:59", false},
		{"2024-08-20T05:21:19+00:99", false},
	}
	for _, tc := range tests {
		t.Run(tc.ts, func(t *testing.T) {
			for _, raw := range []string{`"` + tc.ts + `"`, `"` + strings.Replace(tc.ts, "T", `\u0054`, 1) + `"`} {
				_, err := Parse([]byte(`{"event_type":"t","timestamp":`+raw+`}`), "", outbound.Policy{})
				if tc.ok {
					if err != nil {
						t.Errorf("%s: got %v, want it accepted", raw, err)
					}
					continue
				}
				var fe *event.FieldError
				if !errors.As(err, &fe) || fe.Field != "timestamp" {
					t.Errorf("%s: got %v, want a FieldError on timestamp", raw, err)
				}
			}
		})
	}
}

// The callback's method and format are stored as the producer named them,
// and left out when it did not (or sent null), so such bodies are the bytes
// they always were and a repeat of an earlier event still matches its
// hash. A value other than those allowed, or GET with cloudevents, is a 400
// naming the field.
func TestParseCallbackOptions(t *testing.T) {
	const urls = `"success_url":"https://example.com/ok","fail_url":""`
	tests := []struct {
		name       string
		callback   string // the callback object sent
		wantStored string // the callback object stored
		wantMethod event.CallbackMethod
		wantFormat event.CallbackFormat
		wantField  string // the field refused, "" for none
	}{
		{"neither", `{` + urls + `}`, `{` + urls + `}`, "", "", ""},
		{"nulls", `{` + urls + `,"method":null,"format":null}`, `{` + urls + `}`, "", "", ""},
		{"GET", `{` + urls + `,"method":"GET"}`, `{` + urls + `,"method":"GET"}`, event.CallbackGET, "", ""},
		{"POST", `{"method":"POST",` + urls + `}`, `{` + urls + `,"method":"POST"}`, event.CallbackPOST, "", ""},
		{"cloudevents", `{` + urls + `,"format":"cloudevents"}`, `{` + urls + `,"format":"cloudevents"}`, "", event.CallbackCloudEvents, ""},
		{"POST and json", `{"format":"json","method":"POST",` + urls + `}`, `{` + urls + `,"method":"POST","format":"json"}`, event.CallbackPOST, event.CallbackJSON, ""},
		{"GET and json", `{` + urls + `,"method":"GET","format":"json"}`, `{` + urls + `,"method":"GET","format":"json"}`, event.CallbackGET, event.CallbackJSON, ""},
		{"no URL: nothing to send", `{"method":"GET"}`, ``, "", "", ""},
		{"lower case method", `{` + urls + `,"method":"get"}`, ``, "", "", "callback.method"},
		{"PUT", `{` + urls + `,"method":"PUT"}`, ``, "", "", "callback.method"},
		{"method a number", `{` + urls + `,"method":1}`, ``, "", "", "callback.method"},
		{"xml", `{` + urls + `,"format":"xml"}`, ``, "", "", "callback.format"},
		{"format an object", `{` + urls + `,"format":{}}`, ``, "", "", "callback.format"},
		{"GET with cloudevents", `{` + urls + `,"method":"GET","format":"cloudevents"}`, ``, "", "", "callback.format"},
		{"bad method without URL", `{"method":"PUT"}`, ``, "", "", "callback.method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Parse([]byte(`{"id":"e1","event_type":"t","callback":`+tc.callback+`}`), "", outbound.Policy{})
			if tc.wantField != "" {
				var fe *event.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Fatalf("got %v, want a FieldError on %s", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := `{"id":"e1","event_type":"t"}`
			if tc.wantStored != "" {
				want = `{"id":"e1","event_type":"t","callback":` + tc.wantStored + `}`
			}
			if got := string(ev.Body); got != want {
				t.Errorf("stored: got %s, want %s", got, want)
			}
			if got, want := ev.Record.BodyHash, store.HashBody([]byte(want)); got != want {
				t.Errorf("body hash: got %s, want %s", got, want)
			}
			if ev.Record.CallbackMethod != tc.wantMethod || ev.Record.CallbackFormat != tc.wantFormat {
				t.Errorf("record: got method %q format %q, want %q %q", ev.Record.CallbackMethod, ev.Record.CallbackFormat, tc.wantMethod, tc.wantFormat)
			}
		})
	}
}
