package main

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
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
	rate float64 // of the fixed-rate run
	// closedRuns are Boomerang's closed-loop runs and limit the keep-nothing
	// limit server's, alternated, --reps of each.
	closedRuns []e2eRun
	limit      []loadRun
	// closed is the closed-loop run of median rate, whose Redis work is
	// reported; fixed is Boomerang at the fixed rate.
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

// cpuPerCallback is the server's CPU time per callback of a run in
// microseconds, every callback of the run (its warmup's too) against the
// CPU of the whole run; NaN without callbacks.
func cpuPerCallback(run loadRun) float64 {
	if run.res.Callbacks == nil || run.res.Callbacks.Arrived == 0 {
		return math.NaN()
	}
	return float64(run.use.server.Microseconds()) / float64(run.res.Callbacks.Arrived)
}

// medianOf is the median of f over runs, leaving out the runs it has no
// figure for (NaN).
func medianOf(runs []loadRun, f func(loadRun) float64) float64 {
	v := make([]float64, 0, len(runs))
	for _, r := range runs {
		if x := f(r); finite(x) {
			v = append(v, x)
		}
	}
	return median(v)
}

// boomerangCapacity is Boomerang's median closed-loop end-to-end rate.
func (r e2eResult) boomerangCapacity() float64 { return medianOf(r.boomerangRuns(), delivered) }

// limitCapacity is the keep-nothing server's median closed-loop rate.
func (r e2eResult) limitCapacity() float64 { return medianOf(r.limit, delivered) }

func (r e2eResult) boomerangRuns() []loadRun {
	out := make([]loadRun, len(r.closedRuns))
	for i, x := range r.closedRuns {
		out[i] = x.run
	}
	return out
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

// seedBest is the seed-like server's best end-to-end run, the one
// Boomerang is compared with.
func (r e2eResult) seedBest() (loadRun, string) {
	return best([]loadRun{r.seedRate, r.seedClosed}, []string{"same rate", "closed loop"})
}

// backlogGrowth is the slope of the backlog (events plus callbacks queued)
// over the measured part of a run, in events per second, by least squares;
// NaN with fewer than two samples.
func backlogGrowth(samples []backlogSample, warmup time.Duration) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, b := range samples {
		if b.at < warmup {
			continue
		}
		x, y := b.at.Seconds(), float64(b.events+b.callbacks)
		n++
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	d := n*sxx - sx*sx
	if n < 2 || d == 0 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / d
}

// seedDrain bounds the wait for the seed-like server's callbacks: it gives
// each one 2s and never retries, so a callback not there 5s after the load
// will not come.
const seedDrain = 5 * time.Second

// phaseE2E sends events with callbacks in a closed loop to the
// keep-nothing limit server and to Boomerang, alternated --reps times
// (Boomerang drained after each), then to Boomerang at a fixed rate (0.8 x
// its median closed-loop rate unless --e2e-rate) with the backlog sampled;
// then to the seed-like server at the same rate and in a closed loop.
func (b *bench) phaseE2E(ctx context.Context) (e2eResult, error) {
	var res e2eResult
	closed := loadSpec{conns: b.opts.conns, duration: b.opts.duration, warmup: b.opts.warmup, callbacks: true, drain: b.opts.drainMax}
	for i := range b.opts.reps {
		b.logf("[d] end to end with callbacks: limit (keeps nothing), closed loop %d conns (%d/%d)", closed.conns, i+1, b.opts.reps)
		err := b.withServer(ctx, limitName, route{}, func(srv *server) error {
			run, err := b.loadgen(ctx, srv, closed, nil)
			if err != nil {
				return err
			}
			res.limit = append(res.limit, run)
			if cb := run.res.Callbacks; cb != nil {
				b.logf("[d] limit: accepted %.0f req/s, callbacks delivered %.0f/s, lost %d, duplicates %d, server CPU %.0f µs per callback",
					run.res.AchievedRPS, delivered(run), cb.Lost, cb.Duplicates, cpuPerCallback(run))
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		b.logf("[d] end to end with callbacks: boomerang, closed loop %d conns (%d/%d)", closed.conns, i+1, b.opts.reps)
		run, err := b.boomerangE2E(ctx, boomerangName, closed, fmt.Sprintf("d-e2e-closed-%d", i+1))
		if err != nil {
			return res, err
		}
		res.closedRuns = append(res.closedRuns, run)
	}
	byRate := slices.Clone(res.closedRuns)
	slices.SortFunc(byRate, func(x, y e2eRun) int { return cmp.Compare(delivered(x.run), delivered(y.run)) })
	res.closed = byRate[(len(byRate)-1)/2]
	res.rate = b.opts.e2eRate
	if res.rate == 0 {
		res.rate = max(100, math.Floor(0.8*res.boomerangCapacity()/100)*100)
	}
	fixed := closed
	fixed.rate = res.rate
	b.logf("[d] end to end with callbacks: boomerang at a fixed %.0f events/s", res.rate)
	var err error
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
		b.logf("[d] %s: accepted %.0f req/s, callbacks delivered %.0f/s (last %.1fs after the load), delay p50 %.1fms p99 %.1fms, lost %d, duplicates %d; %.2f Redis commands/event, server CPU %.0f µs per callback",
			name, run.res.AchievedRPS, delivered(run), cb.TailSeconds, cb.Delay.P50, cb.Delay.P99, cb.Lost, cb.Duplicates, perEvent(res.work.total(), res.delivered), cpuPerCallback(run))
		return nil
	})
	return res, err
}
