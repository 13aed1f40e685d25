package handler

import (
	json "github.com/goccy/go-json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/store"
)

// benchEvent is the original package's example event with callbacks and a
// payload of about 200 bytes, as the load generator sends it.
var benchEvent = []byte(`{"id":"bench-000000001","event_type":"user_created","timestamp":"2024-08-20T05:21:19.143357839Z",
"payload":{"user_id":"12345","username":"johndoe","seq":1,"pad":"` + strings.Repeat("x", 150) + `"},
"metadata":{"source":"user_service","version":"1.0"},
"callback":{"success_url":"http://127.0.0.1:9000/cb","fail_url":"http://127.0.0.1:9000/cb"}}`)

func BenchmarkParseEvent(b *testing.B) {
	guard := outbound.Policy{AllowPrivate: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseEvent(benchEvent, "", guard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcessOutcome measures what a worker does per event besides
// Redis: build the outcome and its callback record, as the finish script
// receives them.
func BenchmarkProcessOutcome(b *testing.B) {
	ev, err := parseEvent(benchEvent, "", outbound.Policy{AllowPrivate: true})
	if err != nil {
		b.Fatal(err)
	}
	p := &Processor{routes: router{{EventType: "*", Logic: Accept(), Retry: RetryPolicy{}.WithDefaults()}}, cfg: ProcessorConfig{}}
	p.cfg.Now = time.Now
	p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	job := store.Job{Lease: store.Lease{ID: ev.Record.ID, Token: 1}, Attempt: 1, Record: ev.Record, Body: ev.Body}
	job.Record.Status, job.Record.Run = event.StatusQueued, 1
	b.ReportAllocs()
	for b.Loop() {
		out := p.process(b.Context(), job)
		// What finishOutcomes encodes for the finish script, with the store's codec.
		if _, err := json.Marshal(out.Record); err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(out.Callback); err != nil {
			b.Fatal(err)
		}
	}
}
