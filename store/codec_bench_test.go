package store

import (
	stdjson "encoding/json"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	json "github.com/goccy/go-json"
)

// benchRecord and benchCallback are records as an accept event and its
// callback leave them: what the hot path encodes and decodes.
func benchRecord() Record {
	t := time.Date(2026, 12, 2, 9, 0, 0, 123456789, time.UTC)
	r := Record{ID: "evt_01JDQ8Z3K4M5N6P7Q8R9S0T1V2", EventType: "user_created", Status: event.StatusSucceeded, Run: 1, Attempts: 1,
		BodyHash: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", SuccessURL: "http://127.0.0.1:8080/ok", FailURL: "http://127.0.0.1:8080/fail",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", AcceptedAt: t, UpdatedAt: t, FirstAttemptAt: t, CompletedAt: t}
	r.AddAttempt(Attempt{Run: 1, Number: 1, StartedAt: t, Outcome: event.StatusSucceeded})
	return r
}

func benchCallback() Callback {
	t := time.Date(2026, 12, 2, 9, 0, 0, 123456789, time.UTC)
	return Callback{ID: "cb_evt_01JDQ8Z3K4M5N6P7Q8R9S0T1V2_1", EventID: "evt_01JDQ8Z3K4M5N6P7Q8R9S0T1V2", URL: "http://127.0.0.1:8080/ok",
		Status: event.CallbackPending, CreatedAt: t, QueuedAt: t, UpdatedAt: t, EventType: "user_created", EventStatus: event.StatusSucceeded,
		EventAttempts: 1, CompletedAt: t, EventAcceptedAt: t, TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
}

// BenchmarkCodec weighs the store's codec, goccy/go-json behind a
// json.Valid pass (decode), against encoding/json alone, on the records of
// the hot path: run both in one `go test -bench Codec -benchmem -count 5`.
func BenchmarkCodec(b *testing.B) {
	rec, cb := benchRecord(), benchCallback()
	recJSON, _ := stdjson.Marshal(rec)
	cbJSON, _ := stdjson.Marshal(cb)
	for _, c := range []struct {
		name string
		f    func() error
	}{
		{"encode-record/goccy", func() error { _, err := json.Marshal(rec); return err }},
		{"encode-record/std", func() error { _, err := stdjson.Marshal(rec); return err }},
		{"encode-callback/goccy", func() error { _, err := json.Marshal(cb); return err }},
		{"encode-callback/std", func() error { _, err := stdjson.Marshal(cb); return err }},
		{"decode-record/goccy+valid", func() error { var r Record; return decode(recJSON, &r) }},
		{"decode-record/std", func() error { var r Record; return stdjson.Unmarshal(recJSON, &r) }},
		{"decode-callback/goccy+valid", func() error { var c Callback; return decode(cbJSON, &c) }},
		{"decode-callback/std", func() error { var c Callback; return stdjson.Unmarshal(cbJSON, &c) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.f(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// encoding/json reads what goccy/go-json wrote, and the other way round,
// to the same values: records written before a change of codec still read.
func TestCodecsAgree(t *testing.T) {
	for _, tc := range []struct {
		v        any
		newValue func() any
	}{
		{benchRecord(), func() any { return new(Record) }},
		{benchCallback(), func() any { return new(Callback) }},
	} {
		g, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		s, err := stdjson.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		fromG, fromS := tc.newValue(), tc.newValue()
		if err := stdjson.Unmarshal(g, fromG); err != nil {
			t.Fatalf("encoding/json reading goccy's %s: %v", g, err)
		}
		if err := decode(s, fromS); err != nil {
			t.Fatalf("goccy reading encoding/json's %s: %v", s, err)
		}
		a, _ := stdjson.Marshal(fromG)
		b, _ := stdjson.Marshal(fromS)
		if string(a) != string(b) || string(a) != string(s) {
			t.Errorf("%T: round trips differ:\n%s\n%s\nwant %s", tc.v, a, b, s)
		}
	}
}
