package main

import (
	"context"
	"fmt"
	"time"
)

// sustainedResult is phase c.
type sustainedResult struct {
	run          loadRun
	accepted     int64   // every event accepted, the warmup's included
	loadSeconds  float64 // warmup plus measured duration, as loadgen ran them
	backlogEnd   int64   // ZCARD of the event queue when the load ended
	drainSeconds float64
	left         int64   // still queued when the drain wait ended (0: drained)
	drainCPU     float64 // server CPU during the drain, % of a core
	eps          float64 // (accepted - left) / (loadSeconds + drainSeconds)
}

// phaseSustained loads Boomerang (route accept, no callbacks) in a closed
// loop, then waits for the backlog to drain; then the same through the
// workers, its route forwarding every event to a keep-nothing target
// (bench/limit on the load core), which the accept route, settled at
// ingest, no longer measures.
func (b *bench) phaseSustained(ctx context.Context) (sustainedResult, sustainedResult, error) {
	b.logf("[c] sustained ingest + processing, no callbacks: boomerang, closed loop %d conns", b.opts.conns)
	accept, err := b.sustained(ctx, boomerangName, route{})
	if err != nil {
		return accept, sustainedResult{}, err
	}
	target, err := b.startServerOn(ctx, b.loadCore, limitName, route{})
	if err != nil {
		return accept, sustainedResult{}, fmt.Errorf("forward target: %w", err)
	}
	defer b.stopServer(target)
	b.logf("[c] the same through the workers: route forward to a keep-nothing target")
	forward, err := b.sustained(ctx, boomerangName, route{forward: target.url + "/event", timeout: 5 * time.Second})
	return accept, forward, err
}

// sustained measures the named Boomerang as phase c does, with route r.
func (b *bench) sustained(ctx context.Context, name string, r route) (sustainedResult, error) {
	var res sustainedResult
	spec := loadSpec{conns: b.opts.conns, duration: b.opts.duration, warmup: b.opts.warmup}
	err := b.withServer(ctx, name, r, func(srv *server) error {
		run, err := b.loadgen(ctx, srv, spec, nil)
		if err != nil {
			return err
		}
		res.run = run
		res.loadSeconds = run.use.wall.Seconds()
		n, err := b.redis.zcard(ctx, keyEvents)
		if err != nil {
			return err
		}
		res.backlogEnd = n[0]
		b.logf("[c] %s load done: %.0f req/s; backlog %d; draining (at most %v)", name, run.res.AchievedRPS, res.backlogEnd, b.opts.drainMax)
		start := time.Now()
		cpu0, _ := cpuTime(srv.proc.pid())
		res.left, err = b.waitDrained(ctx, b.opts.drainMax, keyEvents)
		if err != nil {
			return err
		}
		drain := time.Since(start)
		cpu1, _ := cpuTime(srv.proc.pid())
		res.drainSeconds = drain.Seconds()
		if drain > 0 {
			res.drainCPU = 100 * (cpu1 - cpu0).Seconds() / drain.Seconds()
		}
		n, err = b.redis.zcard(ctx, keyRecent)
		if err != nil {
			return err
		}
		res.accepted = n[0]
		res.eps = float64(res.accepted-res.left) / (res.loadSeconds + res.drainSeconds)
		b.logf("[c] %d accepted, drained in %.1fs (%d left): %.0f events/s sustained", res.accepted, res.drainSeconds, res.left, res.eps)
		return nil
	})
	return res, err
}

// waitDrained polls the queues until they are all empty or bound has
// passed, and returns what is left in them.
func (b *bench) waitDrained(ctx context.Context, bound time.Duration, keys ...string) (int64, error) {
	return pollDrained(ctx, bound, func(ctx context.Context) ([]int64, error) { return b.redis.zcard(ctx, keys...) })
}

// pollDrained polls count every 50ms until the counts it returns sum to 0
// or bound has passed, and returns that sum.
func pollDrained(ctx context.Context, bound time.Duration, count func(context.Context) ([]int64, error)) (int64, error) {
	deadline := time.Now().Add(bound)
	for {
		n, err := count(ctx)
		if err != nil {
			return 0, err
		}
		var left int64
		for _, v := range n {
			left += v
		}
		if left == 0 || time.Now().After(deadline) {
			return left, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		sleep(ctx, 50*time.Millisecond)
	}
}
