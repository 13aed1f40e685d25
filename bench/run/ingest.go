package main

import (
	"context"
	"fmt"
	"math"
)

// ingestResult is phase a: closed-loop runs of each server, in order.
type ingestResult struct {
	runs map[string][]loadRun
}

// phaseIngest alternates closed-loop runs of the baseline and Boomerang,
// on a fresh Redis each.
func (b *bench) phaseIngest(ctx context.Context) (ingestResult, error) {
	res := ingestResult{runs: map[string][]loadRun{}}
	spec := loadSpec{conns: b.opts.conns, duration: b.opts.duration, warmup: b.opts.warmup}
	for i := range b.opts.reps {
		for _, name := range []string{baselineName, boomerangName} {
			b.logf("[a] closed loop, %d conns: %s (%d/%d)", spec.conns, name, i+1, b.opts.reps)
			err := b.withServer(ctx, name, route{}, func(srv *server) error {
				run, err := b.loadgen(ctx, srv, spec, b.profileWatch(srv, spec, fmt.Sprintf("a-ingest-%d", i+1)))
				if err != nil {
					return err
				}
				res.runs[name] = append(res.runs[name], run)
				b.logf("[a] %s: %.0f req/s, %d errors, server CPU %.0f%%, other processes on core 0 / 1: %s",
					name, run.res.AchievedRPS, run.res.errors(), run.use.pct(run.use.server), run.use.others())
				return nil
			})
			if err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// latencyResult is phase b: one fixed-rate run per server, at the rate
// asked for or, when the load generator could not hold that, at the
// highest lower one it could.
type latencyResult struct {
	asked float64            // the rate asked for
	rate  float64            // the rate of runs
	runs  map[string]loadRun // at rate
	// tooFast are the rates tried before rate whose runs the load
	// generator fell behind in, with the worse send lag p99 (ms).
	tooFast []rateTried
}

// rateTried is a latency rate given up on.
type rateTried struct {
	rate, lagP99 float64
}

// maxSendLagMs is the send lag p99 past which a fixed-rate run measured
// the load generator rather than the server: a fifth of the 5 ms target.
const maxSendLagMs = 1.0

// latencyTries bounds the rates phase b tries.
const latencyTries = 3

// sendLagP99 is a run's send lag p99 in ms, 0 when loadgen reported none.
func sendLagP99(r loadRun) float64 {
	if r.res.SendLag == nil {
		return 0
	}
	return r.res.SendLag.P99
}

// phaseLatency sends a fixed rate to the baseline, then to Boomerang. When
// the load generator falls behind (send lag p99 over maxSendLagMs, for
// either server), the rate was beyond this machine's generator, not a
// measure of the server: it tries again at 0.7 x the rate, up to
// latencyTries rates in all.
func (b *bench) phaseLatency(ctx context.Context, rate float64) (latencyResult, error) {
	res := latencyResult{asked: rate}
	for try := range latencyTries {
		res.rate, res.runs = rate, map[string]loadRun{}
		spec := loadSpec{rate: rate, duration: b.opts.duration, warmup: b.opts.warmup}
		lag := 0.0
		for _, name := range []string{baselineName, boomerangName} {
			b.logf("[b] fixed rate %.0f req/s: %s", spec.rate, name)
			err := b.withServer(ctx, name, route{}, func(srv *server) error {
				run, err := b.loadgen(ctx, srv, spec, nil)
				if err != nil {
					return err
				}
				res.runs[name] = run
				l := run.res.Latency
				lag = max(lag, sendLagP99(run))
				b.logf("[b] %s: p50 %.2fms p99 %.2fms p99.9 %.2fms, dropped %d, loadgen send lag p99 %.2fms, other processes on core 0 / 1: %s",
					name, l.P50, l.P99, l.P999, run.res.Dropped, sendLagP99(run), run.use.others())
				return nil
			})
			if err != nil {
				return res, err
			}
		}
		if lag <= maxSendLagMs || try == latencyTries-1 || b.opts.rate > 0 {
			return res, nil
		}
		b.logf("[b] the load generator fell behind at %.0f req/s (send lag p99 %.1fms): trying %.0f", rate, lag, math.Floor(rate*0.7/100)*100)
		res.tooFast = append(res.tooFast, rateTried{rate: rate, lagP99: lag})
		rate = max(100, math.Floor(rate*0.7/100)*100)
	}
	return res, nil
}
