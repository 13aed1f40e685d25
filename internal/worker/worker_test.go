package worker_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/internal/worker"
	"github.com/boomerang-events/boomerang/store"
)

var (
	_ worker.Queue[store.Job, store.Outcome]                 = store.EventQueue{}
	_ worker.Queue[store.Job, store.Outcome]                 = store.InlineQueue{}
	_ worker.Queue[store.CallbackJob, store.CallbackOutcome] = store.CallbackQueue{}
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func leaseOf(j store.Job) store.Lease { return j.Lease }

func succeed(j store.Job) store.Outcome {
	rec := j.Record
	rec.Status = event.StatusSucceeded
	return store.Outcome{Lease: j.Lease, Record: rec}
}

func enqueue(t *testing.T, st *store.Redis, ids ...string) {
	t.Helper()
	var evs []store.NewEvent
	for _, id := range ids {
		evs = append(evs, store.NewEvent{Record: store.Record{ID: id, EventType: "t", BodyHash: "h"}, Body: []byte("{}")})
	}
	if _, err := st.Enqueue(context.Background(), time.Now(), evs); err != nil {
		t.Fatal(err)
	}
}

func runPool(t *testing.T, p *worker.Pool[store.Job, store.Outcome]) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitStatus(t *testing.T, st *store.Redis, id string, want event.Status, d time.Duration) store.Snapshot {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		snap, err := st.Get(context.Background(), id)
		if err == nil && snap.Record.Status == want {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %+v %v, want %s within %s", id, snap.Record, err, want, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A job that runs three times longer than its lease keeps its lease, so a
// second pool on the same queue never runs it.
func TestSlowJobKeepsLease(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
		enqueue(t, st, "slow")
		var runs atomic.Int32
		slow := func(ctx context.Context, j store.Job) store.Outcome {
			runs.Add(1)
			select {
			case <-time.After(900 * time.Millisecond):
			case <-ctx.Done():
			}
			return succeed(j)
		}
		cfg := worker.Config{Workers: 2, Lease: 300 * time.Millisecond, PollInterval: 5 * time.Millisecond, Logger: quiet}
		runPool(t, worker.New(st.Events(), leaseOf, slow, cfg))
		runPool(t, worker.New(st.Events(), leaseOf, slow, cfg))

		snap := waitStatus(t, st, "slow", event.StatusSucceeded, 5*time.Second)
		if n := runs.Load(); n != 1 || snap.Record.Attempts != 1 {
			t.Errorf("runs: got %d (attempts %d), want 1", n, snap.Record.Attempts)
		}
	})
}

// A pool that stops while a job outlives the drain cancels it and gives its
// lease back: the next claim gets it at once, as the same attempt.
func TestStopReleasesUnfinishedJobs(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
		enqueue(t, st, "stuck", "quick")
		started := make(chan struct{}, 2)
		var cancelled atomic.Bool
		run := func(ctx context.Context, j store.Job) store.Outcome {
			if j.ID == "quick" {
				return succeed(j)
			}
			started <- struct{}{}
			<-ctx.Done()
			cancelled.Store(true)
			return succeed(j) // dropped: the pool stopped for good
		}
		p := worker.New(st.Events(), leaseOf, run, worker.Config{Workers: 2, Lease: time.Minute, DrainTimeout: 100 * time.Millisecond, Logger: quiet})
		stop := runPool(t, p)
		<-started
		waitStatus(t, st, "quick", event.StatusSucceeded, 5*time.Second)
		stop()

		if !cancelled.Load() {
			t.Error("the stuck job was not cancelled")
		}
		jobs, _, err := st.Events().Claim(context.Background(), time.Now(), time.Minute, 10)
		if err != nil || len(jobs) != 1 || jobs[0].ID != "stuck" || jobs[0].Attempt != 1 {
			t.Fatalf("claim after stop: got %+v, %v; want stuck, attempt 1 again", jobs, err)
		}
	})
}

// A burst of events is processed once each by several pools.
func TestPoolsShareTheQueue(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
		const n = 300
		ids := make([]string, n)
		for i := range ids {
			ids[i] = "e" + string(rune('a'+i%26)) + time.Duration(i).String()
		}
		enqueue(t, st, ids...)
		var mu sync.Mutex
		ran := make(map[string]int)
		run := func(ctx context.Context, j store.Job) store.Outcome {
			mu.Lock()
			ran[j.ID]++
			mu.Unlock()
			return succeed(j)
		}
		for range 3 {
			p := worker.New(st.Events(), leaseOf, run, worker.Config{Workers: 8, Lease: 10 * time.Second, PollInterval: 5 * time.Millisecond, Logger: quiet})
			runPool(t, p)
		}
		for _, id := range ids {
			waitStatus(t, st, id, event.StatusSucceeded, 10*time.Second)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if ran[id] != 1 {
				t.Errorf("%s ran %d times, want 1", id, ran[id])
			}
		}
	})
}
