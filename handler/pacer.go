package handler

import (
	"context"
	"sync/atomic"
	"time"
)

// pacer slows ingest down when the workers fall behind. A server that
// accepts events faster than the workers (of all instances) process them
// would take the CPU from them and grow a backlog that drains only after
// the load stops; instead, past a target backlog each accepted event waits
// in proportion to the excess, so producers slow down to what is processed.
// Events are never refused for it.
type pacer struct {
	target   int           // backlog tolerated without delay
	perEvent time.Duration // delay per event of backlog past target
	maxDelay time.Duration
	due      func(context.Context, time.Time) (int, error)

	backlog atomic.Int64 // last backlog read
}

// Pacing defaults.
const (
	DefaultBacklogTarget = 1000
	pacingPerEvent       = 20 * time.Microsecond
	pacingMaxDelay       = 250 * time.Millisecond
	pacingPoll           = 20 * time.Millisecond
)

// newPacer returns a pacer that delays nothing until run reads the
// backlog. A target below zero disables it.
func newPacer(target int, due func(context.Context, time.Time) (int, error)) *pacer {
	return &pacer{target: target, perEvent: pacingPerEvent, maxDelay: pacingMaxDelay, due: due}
}

// run reads the backlog every pacingPoll until ctx ends, then stops
// delaying.
func (p *pacer) run(ctx context.Context) {
	if p.target < 0 {
		return
	}
	defer p.backlog.Store(0)
	t := time.NewTicker(pacingPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		if n, err := p.due(rctx, time.Now()); err == nil {
			p.backlog.Store(int64(n))
		}
		cancel()
	}
}

// delay is how long an event accepted now should wait.
func (p *pacer) delay() time.Duration {
	excess := p.backlog.Load() - int64(p.target)
	if p.target < 0 || excess <= 0 {
		return 0
	}
	return min(time.Duration(excess)*p.perEvent, p.maxDelay)
}

// wait sleeps for the current delay, or until ctx ends.
func (p *pacer) wait(ctx context.Context) {
	d := p.delay()
	if d == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
