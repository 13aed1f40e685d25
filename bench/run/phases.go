package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Boomerang's queues and indexes, by their per-partition name
// (store/keys.go); privateRedis.zcard counts one in every partition of the
// default key prefix.
const (
	keyEvents    = "events"
	keyCallbacks = "callbacks"
	keyRecent    = "recent"
	keyDead      = "dead"
)

// run runs every phase and returns the report.
func (b *bench) run(ctx context.Context) (*report, error) {
	rep := &report{opts: b.opts, date: time.Now().UTC(), pinNote: b.pinNote}
	b.logf("building cmd/server, bench/baseline, cmd/loadgen, bench/seedlike, bench/limit")
	if err := b.build(ctx); err != nil {
		return nil, err
	}
	if b.pin {
		b.logf("pinning: servers on core %s (GOMAXPROCS=1), loadgen and redis-server on core %s", b.srvCore, b.loadCore)
	} else {
		b.logf("%s", b.pinNote)
	}
	r, err := b.startRedis(ctx)
	if err != nil {
		return nil, err
	}
	b.redis = r
	defer func() {
		if err := r.close(); err != nil {
			b.logf("redis-server: %v", err)
		}
	}()
	b.logf("private redis-server %s on %s", r.version, r.addr)
	rep.machine = b.machine(r.version)
	rep.calib = r.calibrate(ctx)
	if rep.calib.err != nil {
		return nil, fmt.Errorf("calibration: %w", rep.calib.err)
	}

	if b.opts.runs("a") {
		if rep.ingest, err = b.phaseIngest(ctx); err != nil {
			return nil, fmt.Errorf("phase a (ingest): %w", err)
		}
	}
	if b.opts.runs("c") {
		if rep.sustained, rep.sustainedForward, err = b.phaseSustained(ctx); err != nil {
			return nil, fmt.Errorf("phase c (sustained): %w", err)
		}
	}
	if b.opts.runs("b") {
		if rep.latency, err = b.phaseLatency(ctx, rep.latencyRate()); err != nil {
			return nil, fmt.Errorf("phase b (latency): %w", err)
		}
	}
	if b.opts.runs("d") {
		if rep.e2e, err = b.phaseE2E(ctx); err != nil {
			return nil, fmt.Errorf("phase d (end to end): %w", err)
		}
	}
	if b.opts.runs("e") {
		if rep.memory, err = b.phaseMemory(ctx); err != nil {
			return nil, fmt.Errorf("phase e (memory): %w", err)
		}
	}
	if b.opts.runs("f") {
		c, err := b.phaseCompare(ctx)
		if err != nil {
			return nil, fmt.Errorf("phase f (compare): %w", err)
		}
		rep.compare, rep.refRevision = &c, b.refRevision
	}
	rep.elapsed = time.Since(b.started)
	rep.loadEnd = loadAverage()
	b.logf("done in %.0fs", rep.elapsed.Seconds())
	return rep, nil
}

// withServer resets Redis, starts the named server, runs f and stops the
// server.
func (b *bench) withServer(ctx context.Context, name string, r route, f func(srv *server) error) error {
	if err := b.redis.reset(ctx); err != nil {
		return err
	}
	srv, err := b.startServer(ctx, name, r)
	if err != nil {
		return err
	}
	defer b.stopServer(srv)
	return f(srv)
}

// median returns the median of v, or NaN when v is empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// perEvent is n / events, NaN without events.
func perEvent(n, events int64) float64 {
	if events <= 0 {
		return math.NaN()
	}
	return float64(n) / float64(events)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
