package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
	"github.com/redis/go-redis/v9"
)

// A store keeps the number of partitions it was created with: opening it
// with another is refused with a clear error, as is a store of the layout
// before partitions.
func TestCheckPartitions(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		ctx := context.Background()
		open := func(prefix string, n int) *store.Redis {
			s, err := store.New(b.Client, store.Config{Prefix: prefix, Partitions: n})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		if err := open(b.Prefix, 8).Check(ctx); err != nil {
			t.Fatalf("a new store: %v", err)
		}
		if err := open(b.Prefix, 8).Check(ctx); err != nil {
			t.Fatalf("the same number again: %v", err)
		}
		err := open(b.Prefix, 16).Check(ctx)
		if !errors.Is(err, store.ErrPartitions) {
			t.Fatalf("another number: got %v, want ErrPartitions", err)
		}
		for _, want := range []string{"created with 8 partitions", "configured with 16", "partitions: 8"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}

		legacy := b.Prefix + "-old"
		t.Cleanup(func() { redistest.DeletePrefix(t, b.Client, legacy) })
		if err := b.Client.ZAdd(ctx, "{"+legacy+"}:recent", redis.Z{Score: 1, Member: "e1"}).Err(); err != nil {
			t.Fatal(err)
		}
		if err := open(legacy, 16).Check(ctx); !errors.Is(err, store.ErrPartitions) || !strings.Contains(err.Error(), "before partitions") {
			t.Errorf("a store of the old layout: got %v, want ErrPartitions naming it", err)
		}
	})
}

// Listings merge the partitions newest first, and a cursor stays correct
// while events arrive: every page continues where the last ended, nothing
// twice, nothing skipped, and events accepted meanwhile do not show up in
// later pages (they sort before the cursor).
func TestListMergesPartitions(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		var want []string // newest first
		for i := range 60 {
			id := fmt.Sprintf("e%02d", i)
			// Two events per millisecond, so ties on the score are crossed
			// by pages too.
			enqueue(t, s, t0.Add(time.Duration(i/2)*time.Millisecond), id)
			want = append([]string{id}, want...)
		}
		// Within one millisecond the later id sorts first.
		for i := 0; i+1 < len(want); i += 2 {
			want[i], want[i+1] = max(want[i], want[i+1]), min(want[i], want[i+1])
		}
		var got []string
		cursor := ""
		for page := 0; page < 20; page++ {
			snaps, next, err := s.List(ctx, store.ListOptions{Limit: 7, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, snap := range snaps {
				got = append(got, snap.Record.ID)
			}
			if page == 1 {
				enqueue(t, s, t0.Add(time.Hour), "late1", "late2")
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages: got %v, want %v", got, want)
		}

		// A filter still pages through every partition.
		snaps, _, err := s.List(ctx, store.ListOptions{Limit: 100, Status: event.StatusQueued})
		if err != nil || len(snaps) != 62 {
			t.Errorf("queued: got %d, %v; want 62", len(snaps), err)
		}
	})
}

// A partition with a long backlog does not starve the others: claims go
// round the partitions, so events of the quiet ones are claimed within a
// few claims whatever the backlog ahead of them.
func TestClaimIsFairAcrossPartitions(t *testing.T) {
	b := redistest.Mini(t)
	s, err := store.New(b.Client, store.Config{Prefix: b.Prefix, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	// 400 events in partition 0, then 3 in each other partition, all due.
	var ids []string
	late := map[string]bool{}
	perPart := map[int]int{}
	for i := 0; (len(ids) < 400 || len(late) < 9) && i < 100000; i++ {
		id := fmt.Sprintf("e-%d", i)
		switch p := store.PartitionOf(s, id); {
		case p == 0 && len(ids) < 400:
			ids = append(ids, id)
		case p != 0 && perPart[p] < 3:
			perPart[p]++
			late[id] = true
		}
	}
	enqueue(t, s, t0, ids...)
	for id := range late {
		enqueue(t, s, t0.Add(time.Second), id)
	}
	now := t0.Add(2 * time.Second)
	for round := 1; round <= 4; round++ {
		for _, j := range claim(t, s, now, 10) {
			delete(late, j.ID)
		}
	}
	if len(late) != 0 {
		t.Errorf("after 4 claims of 10 (40 of 409 due): %d of the 9 events of the quiet partitions not claimed: the backlog of one starves the others", len(late))
	}
}

// An idle store costs its workers no busy polling: once a claim has found
// every partition empty, claims send nothing to Redis until idleRecheck
// has passed, and then one round trip looks at every partition.
func TestIdleClaimsCostNoRoundTrips(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		q := s.Events()
		if _, _, err := q.Claim(ctx, t0, lease, 10); err != nil {
			t.Fatal(err)
		}
		hook := &roundTrips{}
		b.Client.AddHook(hook)
		for i := range 10 {
			if jobs, _, err := q.Claim(ctx, t0.Add(time.Duration(i)*10*time.Millisecond), lease, 10); err != nil || len(jobs) != 0 {
				t.Fatalf("claim: %d jobs, %v", len(jobs), err)
			}
		}
		if got := hook.n.Load(); got != 0 {
			t.Errorf("10 claims within 100ms of an empty look: got %d round trips, want 0", got)
		}
		if _, _, err := q.Claim(ctx, t0.Add(time.Second), lease, 10); err != nil {
			t.Fatal(err)
		}
		if got := hook.n.Load(); got != 1 {
			t.Errorf("a claim after the recheck interval: got %d round trips, want 1 (one pipelined look at all %d partitions)", got, s.Partitions())
		}
		// Work queued by another process is found at that look.
		other := newStore(t, b)
		enqueue(t, other, t0.Add(time.Second), "remote")
		if jobs := claim(t, s, t0.Add(2*time.Second), 10); len(jobs) != 1 {
			t.Errorf("after another process queued one: got %d jobs, want 1", len(jobs))
		}
	})
}

// A destination's limits hold across partitions: its in-flight cap counts
// deliveries of every partition.
func TestFlowLimitsSpanPartitions(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		q := s.Callbacks().WithFlow(store.Flow{Default: store.Limits{MaxInFlight: 3}})
		var ids []string
		for i := range 24 {
			ids = append(ids, fmt.Sprintf("c%02d", i))
		}
		queueCallbacks(t, s, t0, sick, ids...)
		got := claimIDs(t, q, t0, 24)
		got2 := claimIDs(t, q, t0, 24)
		if len(got)+len(got2) != 3 {
			t.Errorf("in flight: got %d then %d, want 3 in all (the cap), across %d partitions", len(got), len(got2), s.Partitions())
		}
		if d := destination(t, s, t0, sick); d.InFlight != 3 {
			t.Errorf("destination: got %d in flight, want 3", d.InFlight)
		}
	})
}

// Scripts the server has not cached (a restarted node, a promoted replica)
// are sent again in full, and only those: a batch over many partitions
// after SCRIPT FLUSH is recorded once.
func TestScriptsSurviveAFlushedCache(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "warm") // the enqueue script is cached now
		if err := b.Client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := range 40 {
			ids = append(ids, fmt.Sprintf("f%02d", i))
		}
		enqueue(t, s, t0, ids...)
		snaps, _, err := s.List(ctx, store.ListOptions{Limit: 100})
		if err != nil || len(snaps) != 41 {
			t.Fatalf("listed %d, %v; want 41", len(snaps), err)
		}
		if jobs := claim(t, s, t0, 100); len(jobs) != 41 {
			t.Errorf("claimed %d, want 41, each once", len(jobs))
		}
	})
}
