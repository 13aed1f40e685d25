package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/worker"
	"github.com/boomerang-events/boomerang/store"
)

// ProcessorConfig tunes a Processor. The zero value works.
type ProcessorConfig struct {
	// Workers is the number of events run at once. Default 64.
	Workers int
	// Retry is the default policy; a route's non-zero fields override it.
	// Zero fields take the retry package's defaults (5 attempts, 500ms
	// initial interval, multiplier 2, randomization 0.5, 1m max interval,
	// 1h max elapsed time).
	Retry RetryPolicy
	// Lease is how long a claimed event stays claimed without renewal; the
	// processor renews it every Lease/3 while the logic runs. Default 30s.
	Lease time.Duration
	// PollInterval is the longest the processor waits before looking for
	// due events when not notified. Default 100ms.
	PollInterval time.Duration
	// DrainTimeout is how long Run waits for running events when it stops.
	// Default 10s.
	DrainTimeout time.Duration
	// OnCallback is called after outcomes that queued a callback were
	// recorded, such as a Dispatcher's Notify. Default: nothing.
	OnCallback func()
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the processor's logs. Default slog.Default().
	Logger *slog.Logger
}

// Processor runs queued events through their route's logic with retries,
// from any number of instances sharing one store.
type Processor struct {
	routes router
	cfg    ProcessorConfig
	pool   *worker.Pool[store.Job, store.Outcome]
	log    *slog.Logger
}

// NewProcessor returns a processor of st's events. Routes are matched in
// order, the first match wins; an event no route matches fails.
func NewProcessor(st *store.Redis, routes []Route, cfg ProcessorConfig) (*Processor, error) {
	if st == nil {
		return nil, errors.New("handler: nil store")
	}
	cfg.Retry = cfg.Retry.WithDefaults()
	if err := cfg.Retry.Validate(); err != nil {
		return nil, fmt.Errorf("handler: retry: %w", err)
	}
	resolved := make(router, len(routes))
	for i, rt := range routes {
		rt.Retry = rt.Retry.Or(cfg.Retry)
		resolved[i] = rt
	}
	if err := validateRoutes(resolved); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnCallback == nil {
		cfg.OnCallback = func() {}
	}
	p := &Processor{routes: resolved, cfg: cfg, log: cfg.Logger}
	p.pool = worker.New(eventQueue{st: st, onCallback: cfg.OnCallback}, func(j store.Job) store.Lease { return j.Lease }, p.process, worker.Config{
		Name: "events", Workers: cfg.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval,
		DrainTimeout: cfg.DrainTimeout, Now: cfg.Now, Logger: cfg.Logger,
	})
	return p, nil
}

// Run processes events until ctx ends, then lets running events finish (up
// to DrainTimeout) and gives the rest back to the queue.
func (p *Processor) Run(ctx context.Context) error { return p.pool.Run(ctx) }

// Notify tells the processor an event may be due now. It never blocks.
func (p *Processor) Notify() { p.pool.Notify() }

// process runs one attempt of a claimed event and returns its outcome.
func (p *Processor) process(ctx context.Context, j store.Job) store.Outcome {
	rec := j.Record
	start := p.cfg.Now()
	if rec.FirstAttemptAt.IsZero() {
		rec.FirstAttemptAt = start
	}
	rt, ok := p.routes.match(rec.EventType)
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("no route for event type %q", rec.EventType)
	case j.Attempt > rt.Retry.MaxAttempts:
		// Workers died during the earlier attempts: the policy is spent.
		err = fmt.Errorf("%d attempts started, policy allows %d", j.Attempt, rt.Retry.MaxAttempts)
	default:
		err = p.call(ctx, rt, Event{ID: rec.ID, Type: rec.EventType, Attempt: j.Attempt, Body: j.Body})
	}
	end := p.cfg.Now()

	rec.Attempts = j.Attempt
	rec.UpdatedAt = end
	rec.NextAttemptAt = time.Time{}
	switch {
	case err == nil:
		rec.Status, rec.LastError = event.StatusSucceeded, ""
	case !ok || j.Attempt > rt.Retry.MaxAttempts || isPermanent(err):
		rec.Status, rec.LastError = event.StatusFailed, err.Error()
	default:
		rec.LastError = err.Error()
		if due, more := rt.Retry.Next(j.Attempt, rec.FirstAttemptAt, end, retryAfter(err)); more {
			rec.Status, rec.NextAttemptAt = event.StatusRetrying, due
		} else {
			rec.Status = event.StatusFailed
		}
	}
	rec.AddAttempt(store.Attempt{Run: rec.Run, Number: j.Attempt, StartedAt: start, Duration: end.Sub(start), Outcome: rec.Status, Error: rec.LastError})
	out := store.Outcome{Lease: j.Lease, Record: rec}
	if rec.Status.Terminal() {
		rec.CompletedAt = end
		out.Record = rec
		out.Callback = callback.NewRecord(rec)
		p.log.Debug("event done", "event_id", rec.ID, "status", rec.Status, "attempts", rec.Attempts)
	} else if err != nil {
		p.log.Info("event attempt failed; will retry", "event_id", rec.ID, "attempt", j.Attempt, "next_attempt_at", rec.NextAttemptAt, "err", err)
	}
	return out
}

// call runs the route's logic with its timeout, turning a panic into an
// error.
func (p *Processor) call(ctx context.Context, rt Route, ev Event) (err error) {
	if rt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.Timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("business logic panicked", "event_id", ev.ID, "panic", fmt.Sprint(r))
			err = fmt.Errorf("business logic panicked: %v", r)
		}
	}()
	return rt.Logic(ctx, ev)
}

// eventQueue adapts the store's event methods to worker.Queue.
type eventQueue struct {
	st         *store.Redis
	onCallback func()
}

func (q eventQueue) Claim(ctx context.Context, now time.Time, lease time.Duration, n int) ([]store.Job, time.Time, error) {
	return q.st.ClaimEvents(ctx, now, lease, n)
}

func (q eventQueue) Renew(ctx context.Context, now time.Time, lease time.Duration, leases []store.Lease) ([]string, error) {
	return q.st.RenewEvents(ctx, now, lease, leases)
}

func (q eventQueue) Finish(ctx context.Context, now time.Time, outs []store.Outcome) ([]error, error) {
	errs, err := q.st.FinishEvents(ctx, now, outs)
	if err == nil {
		for i, o := range outs {
			if errs[i] == nil && o.Callback != nil && o.Callback.Status == event.CallbackPending {
				q.onCallback()
				break
			}
		}
	}
	return errs, err
}

func (q eventQueue) Release(ctx context.Context, now time.Time, leases []store.Lease) (int, error) {
	return q.st.ReleaseEvents(ctx, now, leases)
}
