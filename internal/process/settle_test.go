package process

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
)

// Settling an accept event at ingest writes what a worker running its
// first attempt would have written, at the same instant.
func TestSettleIsTheWorkersOutcome(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	accept := Route{EventType: "t", Logic: Accept(), Instant: true, Retry: retry.Policy{}.WithDefaults()}
	p := &Processor{routes: Routes{"t": accept}, now: func() time.Time { return now }, log: quiet}
	for _, tc := range []struct {
		name string
		rec  store.Record
	}{
		{"with a callback", store.Record{ID: "e1", EventType: "t", BodyHash: "h", SuccessURL: "http://127.0.0.1:9/ok", FailURL: "http://127.0.0.1:9/fail", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		{"without a callback", store.Record{ID: "e2", EventType: "t", BodyHash: "h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// As Enqueue stores it, then as the worker's first attempt leaves it.
			queued := tc.rec
			queued.Status, queued.Run, queued.AcceptedAt, queued.UpdatedAt = event.StatusQueued, 1, now, now
			out := p.process(context.Background(), store.Job{Lease: store.Lease{ID: tc.rec.ID, Token: 1}, Attempt: 1, Record: queued})

			got := Settle(Routes{"t": accept}, tc.rec, now)
			if got == nil {
				t.Fatal("Settle of an accept route: got nil")
			}
			if !reflect.DeepEqual(got.Record, out.Record) {
				t.Errorf("record:\n settled %+v\n worker  %+v", got.Record, out.Record)
			}
			if !reflect.DeepEqual(got.Callback, out.Callback) {
				t.Errorf("callback:\n settled %+v\n worker  %+v", got.Callback, out.Callback)
			}
		})
	}
}

func TestSettleOnlyInstantRoutes(t *testing.T) {
	routes := Routes{
		"a":      {EventType: "a", Logic: Accept(), Instant: true},
		"slow":   {EventType: "slow", Logic: Accept()}, // accept-like logic, not marked: the workers run it
		Wildcard: {EventType: Wildcard, Logic: Accept()},
	}
	now := time.Now()
	for typ, want := range map[string]bool{"a": true, "slow": false, "other": false} {
		if got := Settle(routes, store.Record{ID: "e", EventType: typ}, now) != nil; got != want {
			t.Errorf("Settle of type %s: settled %v, want %v", typ, got, want)
		}
	}
	if Settle(Routes{}, store.Record{ID: "e", EventType: "a"}, now) != nil {
		t.Error("Settle without routes: got an outcome, want nil")
	}
	// Waiting for its time or its turn: not settled, even on an instant route.
	for name, rec := range map[string]store.Record{
		"scheduled":    {ID: "e", EventType: "a", DeliverAt: now.Add(time.Minute)},
		"ordering key": {ID: "e", EventType: "a", OrderingKey: "k"},
	} {
		if Settle(routes, rec, now) != nil {
			t.Errorf("Settle of an event %s: got an outcome, want nil", name)
		}
	}
	if Settle(routes, store.Record{ID: "e", EventType: "a", DeliverAt: now.Add(-time.Minute)}, now) == nil {
		t.Error("Settle of an event scheduled in the past: got nil, want it settled now")
	}
}
