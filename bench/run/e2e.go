package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// backlogSample is the queues' length at one moment of a load.
type backlogSample struct {
	at                time.Duration // since the load started
	events, callbacks int64
}

// e2eRun is one end-to-end run of Boomerang, with the Redis work it caused.
type e2eRun struct {
	run       loadRun
	backlog   []backlogSample // every second of the load, the last at its end
	delivered int64           // callbacks delivered between the two snapshots, the warmup's included
	work      commandDelta
}

// backlogEnd is the last sample, taken when the load ended.
func (r e2eRun) backlogEnd() backlogSample {
	if len(r.backlog) == 0 {
		return backlogSample{}
	}
	return r.backlog[len(r.backlog)-1]
}

// e2eResult is phase d.
type e2eResult struct {
	rate float64 // of the fixed-rate runs
	// Boomerang in a closed loop (its capacity), then at the fixed rate.
	closed, fixed e2eRun
	// The seed-like server at the same fixed rate, and in a closed loop.
	seedRate, seedClosed loadRun
}

// delivered is the rate at which a run's events were called back, NaN when
// it has no callback result.
func delivered(run loadRun) float64 {
	if run.res.Callbacks == nil {
		return math.NaN()
	}
	return run.res.Callbacks.deliveredEPS(run.res.DurationSeconds)
}

// best returns the run that called events back fastest, preferring runs
// that lost none, with how it was loaded.
func best(runs []loadRun, hows []string) (loadRun, string) {
	bi := -1
	better := func(i int) bool {
		if bi < 0 {
			return true
		}
		li, lb := runs[i].res.Callbacks.Lost == 0, runs[bi].res.Callbacks.Lost == 0
		if li != lb {
			return li
		}
		return delivered(runs[i]) > delivered(runs[bi])
	}
	for i := range runs {
		if runs[i].res.Callbacks != nil && better(i) {
			bi = i
		}
	}
	if bi < 0 {
		return loadRun{}, "none"
	}
	return runs[bi], hows[bi]
}

// boomerangBest is Boomerang's best end-to-end run.
func (r e2eResult) boomerangBest() (loadRun, string) {
	return best([]loadRun{r.closed.run, r.fixed.run}, []string{"closed loop", "fixed rate"})
}

// seedBest is the seed-like server's best end-to-end run, the one
// Boomerang is compared with.
func (r e2eResult) seedBest() (loadRun, string) {
	return best([]loadRun{r.seedRate, r.seedClosed}, []string{"same rate", "closed loop"})
}

// seedDrain bounds the wait for the seed-like server's callbacks: it gives
// each one 2s and never retries, so a callback not there 5s after the load
// will not come.
const seedDrain = 5 * time.Second

// phaseE2E sends events with callbacks to Boomerang in a closed loop (its
// capacity, drained) and at a fixed rate (0.8 x that capacity unless
// --e2e-rate), each with INFO commandstats before and after; then to the
// seed-like server at the same rate and in a closed loop.
func (b *bench) phaseE2E(ctx context.Context) (e2eResult, error) {
	var res e2eResult
	closed := loadSpec{conns: b.opts.conns, duration: b.opts.duration, warmup: b.opts.warmup, callbacks: true, drain: b.opts.drainMax}
	b.logf("[d] end to end with callbacks: boomerang, closed loop %d conns", closed.conns)
	var err error
	if res.closed, err = b.boomerangE2E(ctx, boomerangName, closed, "d-e2e-closed"); err != nil {
		return res, err
	}
	res.rate = b.opts.e2eRate
	if res.rate == 0 {
		res.rate = max(100, math.Floor(0.8*delivered(res.closed.run)/100)*100)
	}
	fixed := closed
	fixed.rate = res.rate
	b.logf("[d] end to end with callbacks: boomerang at a fixed %.0f events/s", res.rate)
	if res.fixed, err = b.boomerangE2E(ctx, boomerangName, fixed, "d-e2e-fixed-rate"); err != nil {
		return res, err
	}

	seedRate, seedClosed := fixed, closed
	seedRate.drain = min(seedDrain, b.opts.drainMax)
	seedClosed.drain = seedRate.drain
	for _, s := range []struct {
		desc string
		spec loadSpec
		dst  *loadRun
	}{
		{fmt.Sprintf("at %.0f events/s", res.rate), seedRate, &res.seedRate},
		{fmt.Sprintf("closed loop, %d conns", b.opts.conns), seedClosed, &res.seedClosed},
	} {
		b.logf("[d] end to end with callbacks: seedlike %s", s.desc)
		err := b.withServer(ctx, seedlikeName, route{}, func(srv *server) error {
			run, err := b.loadgen(ctx, srv, s.spec, nil)
			if err != nil {
				return err
			}
			*s.dst = run
			if cb := run.res.Callbacks; cb != nil {
				b.logf("[d] seedlike %s: accepted %.0f req/s, callbacks delivered %.0f/s, lost %d of %d",
					s.desc, run.res.AchievedRPS, delivered(run), cb.Lost, cb.Accepted)
			}
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// boomerangE2E runs one end-to-end load against a fresh Boomerang (name is
// boomerangName or refName): INFO before, the load with the backlog sampled
// every second and at the end of the load, loadgen's wait for the
// callbacks, INFO after.
func (b *bench) boomerangE2E(ctx context.Context, name string, spec loadSpec, profile string) (e2eRun, error) {
	var res e2eRun
	err := b.withServer(ctx, name, route{}, func(srv *server) error {
		before, err := b.redis.snapshot(ctx)
		if err != nil {
			return err
		}
		loadEnd := spec.warmup + spec.duration
		var mu sync.Mutex // guards res.backlog
		watch := func(wctx context.Context, _ *child, start time.Time) {
			for next := time.Second; ; next += time.Second {
				at := min(next, loadEnd)
				sleep(wctx, time.Until(start.Add(at)))
				if wctx.Err() != nil {
					return
				}
				n, err := b.redis.zcard(wctx, keyEvents, keyCallbacks)
				if err != nil {
					return
				}
				mu.Lock()
				res.backlog = append(res.backlog, backlogSample{at: at, events: n[0], callbacks: n[1]})
				mu.Unlock()
				if at == loadEnd {
					return
				}
			}
		}
		run, err := b.loadgen(ctx, srv, spec, both(watch, b.profileWatch(srv, spec, profile)))
		if err != nil {
			return err
		}
		res.run = run
		after, err := b.redis.snapshot(ctx)
		if err != nil {
			return err
		}
		res.work = after.since(before)
		n, err := b.redis.zcard(ctx, keyRecent, keyEvents, keyCallbacks, keyDead)
		if err != nil {
			return err
		}
		res.delivered = n[0] - n[1] - n[2] - n[3]
		cb := run.res.Callbacks
		if cb == nil {
			return fmt.Errorf("loadgen reported no callbacks")
		}
		b.logf("[d] %s: accepted %.0f req/s, callbacks delivered %.0f/s (last %.1fs after the load), delay p50 %.1fms p99 %.1fms, lost %d, duplicates %d; %.2f Redis commands/event",
			name, run.res.AchievedRPS, delivered(run), cb.TailSeconds, cb.Delay.P50, cb.Delay.P99, cb.Lost, cb.Duplicates, perEvent(res.work.total(), res.delivered))
		return nil
	})
	return res, err
}
