package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// TestTraceContextRoundTrip: the trace context written with an event at
// enqueue comes back with every claim of it, and with its callback record,
// as any instance reads them; an event without one stores no field.
func TestTraceContextRoundTrip(t *testing.T) {
	const (
		parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		state  = "vendor=opaque"
	)
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		traced := newEvent("traced")
		traced.Record.TraceParent, traced.Record.TraceState = parent, state
		if errs, err := s.Enqueue(ctx, t0, []store.NewEvent{traced, newEvent("plain")}); err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatalf("Enqueue: %v %v", errs, err)
		}
		raw, err := b.Client.Get(ctx, store.RecordKey(s, "plain")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(raw, "trace_") {
			t.Errorf("record of an event without trace context: got %s, want no trace field", raw)
		}

		// Another store on the same Redis: nothing is in process memory.
		other := newStore(t, b)
		jobs, _, err := other.Events().Claim(ctx, t0, lease, 10)
		if err != nil || len(jobs) != 2 {
			t.Fatalf("Claim: got %d jobs, %v; want 2", len(jobs), err)
		}
		var outs []store.Outcome
		for _, j := range jobs {
			want := ""
			if j.ID == "traced" {
				want = parent
				if string(j.Body) != string(traced.Body) {
					t.Errorf("body: got %s, want %s unchanged", j.Body, traced.Body)
				}
			}
			if j.Record.TraceParent != want {
				t.Errorf("%s: claimed trace parent: got %q, want %q", j.ID, j.Record.TraceParent, want)
			}
			rec := j.Record
			rec.Status = event.StatusSucceeded
			cb := &store.Callback{ID: "cb-" + j.ID, EventID: j.ID, Status: event.CallbackPending, URL: rec.SuccessURL,
				EventStatus: rec.Status, TraceParent: rec.TraceParent, TraceState: rec.TraceState}
			outs = append(outs, store.Outcome{Lease: j.Lease, Record: rec, Callback: cb})
		}
		if errs, err := other.Events().Finish(ctx, t0, outs); err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatalf("Finish: %v %v", errs, err)
		}
		if rec := get(t, s, "traced").Record; rec.TraceParent != parent || rec.TraceState != state {
			t.Errorf("record after finish: got %q %q, want %q %q", rec.TraceParent, rec.TraceState, parent, state)
		}
		cjobs, _, err := s.Callbacks().Claim(ctx, t0, lease, 10)
		if err != nil || len(cjobs) != 2 {
			t.Fatalf("claim callbacks: got %d, %v; want 2", len(cjobs), err)
		}
		for _, j := range cjobs {
			want := ""
			if j.ID == "traced" {
				want = parent
			}
			if j.Callback.TraceParent != want {
				t.Errorf("%s: callback trace parent: got %q, want %q", j.ID, j.Callback.TraceParent, want)
			}
		}
	})
}
