package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
	"github.com/redis/go-redis/v9"
)

// settled is newEvent(id) settled at ingest: succeeded after one attempt,
// with a pending callback when withCallback.
func settled(id string, withCallback bool) store.NewEvent {
	ev := newEvent(id)
	rec := ev.Record
	rec.Status, rec.Run, rec.Attempts = event.StatusSucceeded, 1, 1
	rec.AcceptedAt, rec.CompletedAt, rec.UpdatedAt = t0, t0, t0
	st := &store.Settled{Record: rec}
	if withCallback {
		st.Callback = &store.Callback{ID: "cb_" + id + "_1", EventID: id, URL: rec.SuccessURL, Status: event.CallbackPending, EventStatus: rec.Status, CreatedAt: t0}
	}
	ev.Settled = st
	return ev
}

func TestEnqueueSettled(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		errs, err := s.Enqueue(ctx, t0, []store.NewEvent{settled("s1", true), newEvent("q1"), settled("s2", false), settled("s1", true)})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range errs[:3] {
			if e != nil {
				t.Fatalf("event %d: got %v, want created", i, e)
			}
		}
		var dup *store.DuplicateError
		if !errors.As(errs[3], &dup) || dup.Record.Status != event.StatusSucceeded {
			t.Fatalf("s1 twice in a batch: got %v, want a duplicate of the succeeded record", errs[3])
		}

		// Only the event that was not settled is queued for the workers.
		jobs := claim(t, s, t0.Add(time.Hour), 10)
		if len(jobs) != 1 || jobs[0].ID != "q1" {
			t.Fatalf("claim events: got %d jobs (%v), want q1 alone", len(jobs), jobs)
		}
		snap := get(t, s, "s1")
		if snap.Record.Status != event.StatusSucceeded || snap.Record.Attempts != 1 || snap.Callback == nil || snap.Callback.Status != event.CallbackPending {
			t.Fatalf("s1: got %+v / %+v, want succeeded with a pending callback", snap.Record, snap.Callback)
		}
		if snap := get(t, s, "s2"); snap.Record.Status != event.StatusSucceeded || snap.Callback != nil {
			t.Fatalf("s2: got %+v / %+v, want succeeded without a callback", snap.Record, snap.Callback)
		}
		// s1's callback is queued for delivery, s2 has none.
		cjobs, _, err := s.Callbacks().Claim(ctx, t0, lease, 10)
		if err != nil || len(cjobs) != 1 || cjobs[0].ID != "s1" || cjobs[0].Callback.URL != "http://example.com/ok" {
			t.Fatalf("claim callbacks: got %+v, %v; want s1's callback alone", cjobs, err)
		}
		// Settled events are listed like any other.
		snaps, _, err := s.List(ctx, store.ListOptions{Limit: 10, Status: event.StatusSucceeded})
		if err != nil || len(snaps) != 2 {
			t.Fatalf("list succeeded: got %d records, %v; want s1 and s2", len(snaps), err)
		}

		// A repeat of a settled id is a duplicate, and queues nothing more.
		errs, err = s.Enqueue(ctx, t0.Add(time.Second), []store.NewEvent{settled("s1", true), newEvent("s2")})
		if err != nil || !errors.As(errs[0], &dup) || !errors.As(errs[1], &dup) {
			t.Fatalf("repeats: got %v, %v; want two duplicates", errs, err)
		}
		if jobs := claim(t, s, t0.Add(time.Hour), 10); len(jobs) != 0 {
			t.Fatalf("claim after repeats: got %d jobs, want 0", len(jobs))
		}
	})
}

func TestEnqueueRefusesUnsettledOutcome(t *testing.T) {
	s := newStore(t, redistest.Mini(t))
	ev := settled("x", true)
	ev.Settled.Record.Status = event.StatusRetrying
	if _, err := s.Enqueue(context.Background(), t0, []store.NewEvent{ev}); err == nil {
		t.Fatal("a settled outcome that is not terminal: got no error")
	}
	if snap, err := s.Get(context.Background(), "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a refused enqueue: got %+v, %v; want not found", snap, err)
	}
}

// A flush of events of many partitions is one script on a single node,
// where slots mean nothing, and one per partition on a cluster.
func TestEnqueueScriptsPerFlush(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "warm") // the script is cached from here on
		var evs []store.NewEvent
		parts := map[int]bool{}
		for i := range 64 {
			id := fmt.Sprintf("e%02d", i)
			evs = append(evs, newEvent(id))
			parts[store.PartitionOf(s, id)] = true
		}
		h := &roundTrips{}
		b.Client.AddHook(h)
		errs, err := s.Enqueue(ctx, t0, evs)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range errs {
			if e != nil {
				t.Fatalf("event %d: %v", i, e)
			}
		}
		want := int64(1)
		if _, cluster := b.Client.(*redis.ClusterClient); cluster {
			want = int64(len(parts))
		}
		if got := h.scripts.Load(); got != want {
			t.Errorf("64 events in %d partitions: got %d scripts, want %d", len(parts), got, want)
		}
		if jobs := claim(t, s, t0.Add(time.Hour), 100); len(jobs) != 65 {
			t.Errorf("claim: got %d jobs, want all 65 queued", len(jobs))
		}
	})
}

// Delivery outcomes of many partitions are recorded by one script on a
// single node, and one per partition on a cluster.
func TestFinishCallbacksScriptsPerFlush(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		var evs []store.NewEvent
		for i := range 48 {
			evs = append(evs, settled(fmt.Sprintf("s%02d", i), true))
		}
		if _, err := s.Enqueue(ctx, t0, evs); err != nil {
			t.Fatal(err)
		}
		jobs, _, err := s.Callbacks().Claim(ctx, t0, lease, 100)
		if err != nil || len(jobs) != 48 {
			t.Fatalf("claim: got %d, %v; want 48", len(jobs), err)
		}
		parts := map[int]bool{}
		var outs []store.CallbackOutcome
		for i, j := range jobs {
			parts[store.PartitionOf(s, j.ID)] = true
			cb := j.Callback
			cb.Status = event.CallbackDelivered
			if i == 0 {
				cb.Status, cb.NextAttemptAt = event.CallbackRetrying, t0.Add(time.Minute)
			}
			outs = append(outs, store.CallbackOutcome{Lease: j.Lease, Callback: cb})
		}
		// One outcome whose lease is not held any more is refused.
		stale := outs[1]
		stale.Token++
		outs = append(outs, stale)
		h := &roundTrips{}
		b.Client.AddHook(h)
		errs, err := s.Callbacks().Finish(ctx, t0, outs)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range errs {
			if want := i == len(outs)-1; (e != nil) != want {
				t.Errorf("outcome %d: got %v, want lease lost %v", i, e, want)
			}
		}
		want := int64(1)
		if _, cluster := b.Client.(*redis.ClusterClient); cluster {
			want = int64(len(parts))
		}
		if got := h.scripts.Load(); got != want {
			t.Errorf("48 outcomes in %d partitions: got %d scripts, want %d", len(parts), got, want)
		}
		if snap := get(t, s, jobs[5].ID); snap.Callback.Status != event.CallbackDelivered {
			t.Errorf("%s: got %s, want delivered", jobs[5].ID, snap.Callback.Status)
		}
		// The retried one is due again in a minute, and nothing else is.
		again, _, err := s.Callbacks().Claim(ctx, t0.Add(2*time.Minute), lease, 100)
		if err != nil || len(again) != 1 || again[0].ID != jobs[0].ID {
			t.Errorf("claim after: got %d (%v), want %s alone", len(again), err, jobs[0].ID)
		}
	})
}

// A claim over many partitions is one script on a single node, and one per
// partition on a cluster; its admission by their destination is one more.
func TestClaimScriptsPerCall(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		q := s.Callbacks().WithFlow(store.Flow{})
		if _, err := s.Enqueue(ctx, t0, []store.NewEvent{settled("warm", true)}); err != nil {
			t.Fatal(err)
		}
		if jobs, _, err := q.Claim(ctx, t0, lease, 10); err != nil || len(jobs) != 1 { // the scripts are cached from here on
			t.Fatalf("warm-up claim: %d, %v", len(jobs), err)
		}
		var evs []store.NewEvent
		parts := map[int]bool{}
		for i := range 48 {
			id := fmt.Sprintf("s%02d", i)
			evs = append(evs, settled(id, true))
			parts[store.PartitionOf(s, id)] = true
		}
		if _, err := s.Enqueue(ctx, t0, evs); err != nil {
			t.Fatal(err)
		}
		h := &roundTrips{}
		b.Client.AddHook(h)
		jobs, _, err := q.Claim(ctx, t0, lease, 100)
		if err != nil || len(jobs) != 48 {
			t.Fatalf("claim: got %d, %v; want 48", len(jobs), err)
		}
		want := int64(2) // claim, admit
		if _, cluster := b.Client.(*redis.ClusterClient); cluster {
			want = 2 * int64(len(parts)) // a claim and an admission per partition
		}
		if got := h.scripts.Load(); got != want {
			t.Errorf("claim of 48 in %d partitions: got %d scripts, want %d", len(parts), got, want)
		}
	})
}
