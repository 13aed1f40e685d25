package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

func ordered(id, key string) store.NewEvent {
	ev := newEvent(id)
	ev.Record.OrderingKey = key
	return ev
}

// claimEventIDs claims what is due and returns the ids.
func claimEventIDs(t *testing.T, s *store.Redis, now time.Time) []string {
	t.Helper()
	var ids []string
	for _, j := range claim(t, s, now, 10) {
		ids = append(ids, j.ID)
	}
	return ids
}

// The healer repairs what a crash between the steps of ordering leaves:
// an event that joined its sequence but was never recorded holds the key
// until it is orphaned (then it is dropped and the next runs), and an
// event that ended without its sequence advancing holds it until the
// healer's next look. Meanwhile nothing of the key runs out of order.
func TestHealOrder(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		now := time.Now()

		// A request that died after joining: "ghost" heads key k.
		if err := store.JoinOnly(s, now, ordered("ghost", "k")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Enqueue(ctx, now, []store.NewEvent{ordered("e1", "k"), ordered("e2", "k")}); err != nil {
			t.Fatal(err)
		}
		if ids := claimEventIDs(t, s, now); len(ids) != 0 {
			t.Fatalf("claimed %v while the key's head was never recorded, want nothing", ids)
		}
		if head, _ := s.OrderHead(ctx, "k"); head != "ghost" {
			t.Fatalf("head: %q, want ghost", head)
		}
		if st, err := s.Stats(ctx, now); err != nil || st.Held != 2 || st.Events.Items != 0 {
			t.Fatalf("Stats: got %+v (%v), want e1 and e2 held, none queued", st, err)
		}
		if _, err := s.HealOrder(ctx, now.Add(time.Second), 100); err != nil {
			t.Fatal(err)
		}
		if ids := claimEventIDs(t, s, now.Add(time.Second)); len(ids) != 0 {
			t.Fatalf("claimed %v before the ghost was orphaned, want nothing", ids)
		}
		later := now.Add(time.Minute)
		if _, err := s.HealOrder(ctx, later, 100); err != nil {
			t.Fatal(err)
		}
		jobs := claim(t, s, later, 10)
		if len(jobs) != 1 || jobs[0].ID != "e1" {
			t.Fatalf("after the ghost was orphaned: claimed %v, want e1 alone", jobs)
		}

		// e1 ends, and the process dies before its sequence advances.
		store.SkipAdvance(s)
		rec := jobs[0].Record
		rec.Status, rec.CompletedAt = event.StatusSucceeded, later
		if errs, err := s.Events().Finish(ctx, later, []store.Outcome{{Lease: jobs[0].Lease, Record: rec}}); err != nil || errs[0] != nil {
			t.Fatalf("Finish e1: %v %v", errs, err)
		}
		if ids := claimEventIDs(t, s, later); len(ids) != 0 {
			t.Fatalf("claimed %v while e1's end was not yet seen by its sequence, want nothing", ids)
		}
		if snap := get(t, s, "e2"); snap.Record.Status != event.StatusQueued {
			t.Fatalf("e2: %s, want queued (held)", snap.Record.Status)
		}
		if _, err := s.HealOrder(ctx, later.Add(time.Second), 100); err != nil {
			t.Fatal(err)
		}
		if ids := claimEventIDs(t, s, later.Add(time.Second)); len(ids) != 1 || ids[0] != "e2" {
			t.Fatalf("after healing: claimed %v, want e2", ids)
		}
	})
}

// A repeat of an ordered event that already ended joins its sequence
// again, and is dropped from it at once, not holding the key.
func TestOrderRepeatOfEndedEvent(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		now := time.Now()
		if _, err := s.Enqueue(ctx, now, []store.NewEvent{ordered("r1", "k")}); err != nil {
			t.Fatal(err)
		}
		jobs := claim(t, s, now, 10)
		rec := jobs[0].Record
		rec.Status, rec.CompletedAt = event.StatusSucceeded, now
		if _, err := s.Events().Finish(ctx, now, []store.Outcome{{Lease: jobs[0].Lease, Record: rec}}); err != nil {
			t.Fatal(err)
		}
		errs, err := s.Enqueue(ctx, now, []store.NewEvent{ordered("r1", "k"), ordered("r2", "k")})
		if err != nil || errs[0] == nil || errs[1] != nil {
			t.Fatalf("Enqueue the repeat and r2: %v %v, want r1 a repeat and r2 new", errs, err)
		}
		if ids := claimEventIDs(t, s, now); len(ids) != 1 || ids[0] != "r2" {
			t.Fatalf("claimed %v, want r2: the repeat must not hold the key", ids)
		}
	})
}

// One finish that ends the last event of one key and the head of another
// advances both at once: the other key's next event is due right away,
// without waiting for the healer (a regression: an empty sequence's pop
// once failed the whole pipeline of pops).
func TestAdvanceSeveralKeys(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		now := time.Now()
		if _, err := s.Enqueue(ctx, now, []store.NewEvent{ordered("x1", "kx"), ordered("y1", "ky"), ordered("y2", "ky")}); err != nil {
			t.Fatal(err)
		}
		jobs := claim(t, s, now, 10)
		if len(jobs) != 2 {
			t.Fatalf("claimed %d, want x1 and y1", len(jobs))
		}
		outs := make([]store.Outcome, len(jobs))
		for i, j := range jobs {
			rec := j.Record
			rec.Status, rec.CompletedAt = event.StatusSucceeded, now
			outs[i] = store.Outcome{Lease: j.Lease, Record: rec}
		}
		if _, err := s.Events().Finish(ctx, now, outs); err != nil {
			t.Fatal(err)
		}
		if ids := claimEventIDs(t, s, now); len(ids) != 1 || ids[0] != "y2" {
			t.Fatalf("after one finish of both keys' heads: claimed %v, want y2 at once", ids)
		}
	})
}
