package process

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
)

// BenchmarkProcessOutcome measures what a worker does per event besides
// Redis: build the outcome and its callback record, as the finish script
// receives them.
func BenchmarkProcessOutcome(b *testing.B) {
	rec := store.Record{ID: "bench-000000001", EventType: "user_created", BodyHash: "h",
		SuccessURL: "http://127.0.0.1:9000/cb", FailURL: "http://127.0.0.1:9000/cb"}
	p := &Processor{routes: Routes{Wildcard: {EventType: Wildcard, Logic: Accept(), Retry: retry.Policy{}.WithDefaults()}},
		now: time.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	job := store.Job{Lease: store.Lease{ID: rec.ID, Token: 1}, Attempt: 1, Record: rec, Body: []byte(`{"id":"bench-000000001"}`)}
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
