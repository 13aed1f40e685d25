package main

import (
	"context"
	"fmt"
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

// latencyResult is phase b: one fixed-rate run per server.
type latencyResult struct {
	rate float64
	runs map[string]loadRun
}

// phaseLatency sends a fixed rate to the baseline, then to Boomerang.
func (b *bench) phaseLatency(ctx context.Context, rate float64) (latencyResult, error) {
	res := latencyResult{rate: rate, runs: map[string]loadRun{}}
	spec := loadSpec{rate: rate, duration: b.opts.duration, warmup: b.opts.warmup}
	for _, name := range []string{baselineName, boomerangName} {
		b.logf("[b] fixed rate %.0f req/s: %s", spec.rate, name)
		err := b.withServer(ctx, name, route{}, func(srv *server) error {
			run, err := b.loadgen(ctx, srv, spec, nil)
			if err != nil {
				return err
			}
			res.runs[name] = run
			l := run.res.Latency
			b.logf("[b] %s: p50 %.2fms p99 %.2fms p99.9 %.2fms, dropped %d, other processes on core 0 / 1: %s",
				name, l.P50, l.P99, l.P999, run.res.Dropped, run.use.others())
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}
