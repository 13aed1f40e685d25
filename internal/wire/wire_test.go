package wire

import (
	"encoding/json"
	"testing"

	"github.com/boomerang-events/boomerang/internal/outbound"
)

func TestAppendJSON(t *testing.T) {
	in := incoming{
		ID:        "evt-1",
		EventType: "user_created",
		Timestamp: json.RawMessage(`"2024-08-20T05:21:19Z"`),
		Payload:   json.RawMessage(`{"a":[1,2.5e10,null],"s":"x\"y"}`),
		Metadata:  map[string]string{"z": "last", "a": "quote \" back\\slash \x00\x1f tab\t", "ü": "ünïcode \u2028 <&>"},
		Callback:  &callbackURLs{SuccessURL: "http://h/ok?a=1&b=2"},
	}
	b := in.appendJSON(nil)
	var out incoming
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, b)
	}
	if out.ID != in.ID || out.EventType != in.EventType || string(out.Timestamp) != string(in.Timestamp) ||
		string(out.Payload) != string(in.Payload) || out.Callback.SuccessURL != in.Callback.SuccessURL || out.Callback.FailURL != "" {
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
