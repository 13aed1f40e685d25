package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
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

// BenchmarkCodec measures the store's codec on the records of the hot
// path: its own encoders (encode.go) and encoding/json's decoder.
// (goccy/go-json, behind a json.Valid pass, was 1.5x faster than
// encoding/json here, and no faster end to end: docs/benchmarks.md.)
func BenchmarkCodec(b *testing.B) {
	rec, cb := benchRecord(), benchCallback()
	recJSON, _ := json.Marshal(rec)
	cbJSON, _ := json.Marshal(cb)
	for _, c := range []struct {
		name string
		f    func() error
	}{
		{"encode-record", func() error { _, err := marshalRecord(&rec); return err }},
		{"encode-callback", func() error { _, err := marshalCallback(&cb); return err }},
		{"decode-record", func() error { var r Record; return decode(recJSON, &r) }},
		{"decode-callback", func() error { var c Callback; return decode(cbJSON, &c) }},
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

// Records written by goccy/go-json, the store's codec before, store unset
// times as the zero time (it ignores omitzero): they read back as the
// records they were.
func TestReadsGoccyRecords(t *testing.T) {
	const goccyRecord = `{"id":"evt_01JDQ8Z3K4M5N6P7Q8R9S0T1V2","event_type":"user_created","status":"succeeded","run":1,"attempts":1,"body_hash":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","success_url":"http://127.0.0.1:8080/ok","fail_url":"http://127.0.0.1:8080/fail","trace_parent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","accepted_at":"2026-12-02T09:00:00.123456789Z","updated_at":"2026-12-02T09:00:00.123456789Z","first_attempt_at":"2026-12-02T09:00:00.123456789Z","next_attempt_at":"0001-01-01T00:00:00Z","completed_at":"2026-12-02T09:00:00.123456789Z","history":[{"run":1,"attempt":1,"started_at":"2026-12-02T09:00:00.123456789Z","duration_ns":0,"outcome":"succeeded"}]}`
	const goccyCallback = `{"id":"cb_evt_01JDQ8Z3K4M5N6P7Q8R9S0T1V2_1","event_id":"evt_01JDQ8Z3K4M5N6P7Q8R9S0T1V2","url":"http://127.0.0.1:8080/ok","status":"pending","attempts":0,"created_at":"2026-12-02T09:00:00.123456789Z","queued_at":"2026-12-02T09:00:00.123456789Z","updated_at":"2026-12-02T09:00:00.123456789Z","next_attempt_at":"0001-01-01T00:00:00Z","delivered_at":"0001-01-01T00:00:00Z","event_type":"user_created","event_status":"succeeded","event_attempts":1,"completed_at":"2026-12-02T09:00:00.123456789Z","event_accepted_at":"2026-12-02T09:00:00.123456789Z","trace_parent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}`
	var r Record
	if err := decode([]byte(goccyRecord), &r); err != nil {
		t.Fatal(err)
	}
	var c Callback
	if err := decode([]byte(goccyCallback), &c); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct{ got, want any }{{r, benchRecord()}, {c, benchCallback()}} {
		got, _ := json.Marshal(x.got)
		want, _ := json.Marshal(x.want)
		if string(got) != string(want) {
			t.Errorf("%T:\n got %s\nwant %s", x.got, got, want)
		}
	}
}
