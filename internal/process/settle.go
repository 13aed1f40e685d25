package process

import (
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/store"
)

// Settle decides at ingest the outcome of an event whose route is Instant
// (Accept): the record its first attempt would have produced at now,
// succeeded after one attempt of no duration, and its callback record,
// exactly what the workers would write. It returns nil for an event of
// any other route, or of no route: the workers run those.
//
// Settling at ingest is no weaker than running the attempt: the outcome is
// written in the same atomic step that records the event
// (store.NewEvent.Settled), so the event is either not recorded at all, or
// recorded as succeeded with its callback queued.
//
// An event scheduled for later (Record.DeliverAt after now) or in an
// ordering key's sequence waits for its time or its turn like any other,
// so it is never settled at ingest.
func Settle(routes Routes, rec store.Record, now time.Time) *store.Settled {
	rt, ok := routes.Match(rec.EventType)
	if !ok || !rt.Instant || rec.OrderingKey != "" || rec.DeliverAt.After(now) {
		return nil
	}
	rec.Status, rec.Run, rec.Attempts = event.StatusSucceeded, 1, 1
	rec.AcceptedAt, rec.FirstAttemptAt, rec.UpdatedAt, rec.CompletedAt = now, now, now, now
	rec.NextAttemptAt, rec.LastError = time.Time{}, ""
	rec.AddAttempt(store.Attempt{Run: 1, Number: 1, StartedAt: now, Outcome: event.StatusSucceeded})
	return &store.Settled{Record: rec, Callback: callback.NewRecord(rec)}
}
