package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
	"github.com/redis/go-redis/v9"
)

// roundTrips is a go-redis hook counting round trips (n): one per command,
// or per pipeline, leaving out those that set up a new connection; and the
// scripts run (scripts): the EVALSHAs, an EVAL being only sent again after
// a NOSCRIPT, for a script the node had not cached.
type roundTrips struct{ n, scripts atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !connSetup(cmd) {
			h.n.Add(1)
		}
		h.countScript(cmd)
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !connSetup(cmds[0]) {
			h.n.Add(1)
		}
		for _, cmd := range cmds {
			h.countScript(cmd)
		}
		return next(ctx, cmds)
	}
}

func (h *roundTrips) countScript(cmd redis.Cmder) {
	if cmd.Name() == "evalsha" {
		h.scripts.Add(1)
	}
}

var _ redis.Hook = (*roundTrips)(nil)

// connSetup reports whether cmd is one go-redis sends on a new connection.
func connSetup(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return true
	}
	return false
}

func TestStatsIsOneRoundTrip(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "e1", "e2", "e3")
		claim(t, s, t0.Add(time.Second), 1) // leased: in the queue, not due

		hook := &roundTrips{}
		b.Client.AddHook(hook)
		now := t0.Add(3 * time.Second)
		st, err := s.Stats(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if got := hook.n.Load(); got != 1 {
			t.Errorf("round trips of Stats: got %d, want 1", got)
		}
		want := store.QueueStats{Items: 3, Due: 2, OldestDue: t0}
		if st.Events.Items != want.Items || st.Events.Due != want.Due || !st.Events.OldestDue.Equal(want.OldestDue) {
			t.Errorf("events: got %+v, want %+v", st.Events, want)
		}
		if st.Callbacks != (store.QueueStats{}) {
			t.Errorf("callbacks: got %+v, want an empty queue", st.Callbacks)
		}
		if st.Held != 0 {
			t.Errorf("held: got %d, want 0", st.Held)
		}
	})
}

// leaseCounts is an Observer that adds up what it is told.
type leaseCounts struct {
	mu              sync.Mutex
	reclaimed, lost map[string]int
}

func (c *leaseCounts) LeasesReclaimed(q string, n int) {
	c.mu.Lock()
	c.reclaimed[q] += n
	c.mu.Unlock()
}
func (c *leaseCounts) LeasesLost(q string, n int) { c.mu.Lock(); c.lost[q] += n; c.mu.Unlock() }

var _ store.Observer = (*leaseCounts)(nil)

func TestObserverSeesReclaimedAndLostLeases(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		obs := &leaseCounts{reclaimed: map[string]int{}, lost: map[string]int{}}
		s, err := store.New(b.Client, store.Config{Prefix: b.Prefix, Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		enqueue(t, s, t0, "e1", "e2")
		first := claim(t, s, t0, 1)[0]
		later := t0.Add(lease + time.Millisecond)
		jobs := claim(t, s, later, 10) // the first's lease expired; the other was never leased
		if len(jobs) != 2 {
			t.Fatalf("claim after expiry: got %d jobs, want 2", len(jobs))
		}
		if got := obs.reclaimed[store.QueueEvents]; got != 1 {
			t.Errorf("reclaimed: got %d, want 1", got)
		}
		rec := first.Record
		rec.Status = event.StatusSucceeded
		if _, err := s.Events().Finish(ctx, later, []store.Outcome{{Lease: first.Lease, Record: rec}}); err != nil {
			t.Fatal(err)
		}
		if got := obs.lost[store.QueueEvents]; got != 1 {
			t.Errorf("lost: got %d, want 1", got)
		}
		var outs []store.Outcome
		for _, j := range jobs {
			rec := j.Record
			rec.Status = event.StatusSucceeded
			outs = append(outs, store.Outcome{Lease: j.Lease, Record: rec})
		}
		if _, err := s.Events().Finish(ctx, later, outs); err != nil {
			t.Fatal(err)
		}
		enqueue(t, s, later, "e3")
		claim(t, s, later, 10)
		if obs.reclaimed[store.QueueEvents] != 1 || obs.lost[store.QueueEvents] != 1 {
			t.Errorf("after clean finishes and a fresh claim: got reclaimed %d lost %d, want 1 and 1",
				obs.reclaimed[store.QueueEvents], obs.lost[store.QueueEvents])
		}
	})
}
