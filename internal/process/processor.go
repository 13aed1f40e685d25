// Package process runs queued events through the business logic of their
// type: the routes (typed Go functions, forwarding to an HTTP endpoint, or
// accepting), one attempt at a time, each outcome decided by the retry
// policy and recorded with its callback in one atomic step.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/internal/worker"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Config tunes a Processor. The engine (package boomerang) sets every
// field; zero values take worker.Config's defaults.
type Config struct {
	// Workers is the number of events run at once.
	Workers int
	// Retry is the default policy; a route's non-zero fields override it.
	Retry retry.Policy
	// Lease is how long a claimed event stays claimed without renewal.
	Lease time.Duration
	// PollInterval is the longest the processor waits before looking for
	// due events when not woken.
	PollInterval time.Duration
	// DrainTimeout is how long Run waits for running events when it stops.
	DrainTimeout time.Duration
	// Flow is the flow control of the routes' destinations, resolved
	// (callback.ResolveFlow).
	Flow store.Flow
	// TracerProvider makes the span of each attempt, a child of the trace
	// context stored with the event. Default: none, and the stored context
	// itself is the attempt's (so it still reaches the business logic and
	// a forward's traceparent).
	TracerProvider trace.TracerProvider
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the processor's logs. Default slog.Default().
	Logger *slog.Logger
	// Observer is told of every attempt, for metrics. Default: nobody.
	Observer Observer
}

// Observer is told of each attempt whose outcome is recorded (not of one
// cut short by shutdown or a lost lease). It is called on the workers'
// path, so it must be quick.
type Observer interface {
	Attempt(eventType string, outcome Outcome, d time.Duration)
}

// Outcome is what an attempt led to.
type Outcome int

// Outcomes of an attempt.
const (
	Success   Outcome = iota // the logic succeeded
	Retry                    // it failed, and another attempt is scheduled
	Permanent                // it failed with a permanent error: the event failed
	Exhausted                // it failed and the retry policy is spent: the event failed
)

var outcomeNames = [...]string{"success", "retry", "permanent", "exhausted"}

// String returns the outcome's name: success, retry, permanent, exhausted.
func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return "unknown"
	}
	return outcomeNames[o]
}

// Processor runs queued events through their route's logic with retries,
// from any number of instances sharing one store.
type Processor struct {
	routes Routes
	now    func() time.Time
	log    *slog.Logger
	obs    Observer     // nil: nobody
	tracer trace.Tracer // nil: tracing off
	pool   *worker.Pool[store.Job, store.Outcome]
}

// New returns a processor of st's events. An event whose type has no route
// (and no Wildcard route exists) fails.
func New(st *store.Redis, routes Routes, cfg Config) (*Processor, error) {
	if st == nil {
		return nil, errors.New("process: nil store")
	}
	if err := cfg.Retry.Validate(); err != nil {
		return nil, fmt.Errorf("process: retry.%w", err)
	}
	resolved := make(Routes, len(routes))
	for _, rt := range routes {
		rt.Retry = rt.Retry.Or(cfg.Retry).WithDefaults()
		if err := resolved.Add(rt); err != nil {
			return nil, fmt.Errorf("process: %w", err)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Processor{routes: resolved, now: cfg.Now, log: cfg.Logger, obs: cfg.Observer}
	if cfg.TracerProvider != nil {
		p.tracer = cfg.TracerProvider.Tracer(tracing.InstrumentationName)
	}
	destByType := make(map[string]string, len(resolved))
	for t, rt := range resolved {
		destByType[t] = rt.Dest
	}
	p.pool = worker.New(st.Events().WithFlow(destByType, cfg.Flow), func(j store.Job) store.Lease { return j.Lease }, p.process, worker.Config{
		Name: "events", Workers: cfg.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval,
		DrainTimeout: cfg.DrainTimeout, Now: cfg.Now, Logger: cfg.Logger,
	})
	return p, nil
}

// Run processes events until ctx ends, then lets running events finish (up
// to DrainTimeout) and gives the rest back to the queue.
func (p *Processor) Run(ctx context.Context) error { return p.pool.Run(ctx) }

// process runs one attempt of a claimed event and returns its outcome.
func (p *Processor) process(ctx context.Context, j store.Job) store.Outcome {
	rec := j.Record
	// The attempt continues the trace the event was accepted in, on
	// whichever instance runs it: the logic gets the span in ctx, and a
	// forward sends it as its traceparent.
	// Tracing off, the restored context is the attempt's, and no span is
	// made.
	ctx = tracing.Restore(ctx, rec.TraceParent, rec.TraceState)
	span := trace.SpanFromContext(ctx)
	if p.tracer != nil {
		ctx, span = p.tracer.Start(ctx, "event attempt", trace.WithSpanKind(trace.SpanKindConsumer))
		defer span.End()
	}
	start := p.now()
	if rec.FirstAttemptAt.IsZero() {
		rec.FirstAttemptAt = start
	}
	rt, ok := p.routes.Match(rec.EventType)
	var err error
	spent := false
	switch {
	case !ok:
		err = retry.Permanent(fmt.Errorf("no route for event type %q", rec.EventType))
	case rt.Retry.Spent(j.Attempt):
		// Workers died during the earlier attempts: the policy is spent.
		err = retry.Permanent(fmt.Errorf("%d attempts started, policy allows %d", j.Attempt, rt.Retry.MaxAttempts))
		spent = true
	default:
		err = p.call(ctx, rt, Event{ID: rec.ID, Type: rec.EventType, Attempt: j.Attempt, Body: j.Body})
	}
	end := p.now()

	rec.Attempts = j.Attempt
	rec.UpdatedAt = end
	rec.NextAttemptAt = time.Time{}
	rec.LastError = ""
	if err != nil {
		rec.LastError = err.Error()
	}
	var outcome Outcome
	switch dec := rt.Retry.Decide(j.Attempt, rec.FirstAttemptAt, end, err); dec.Verdict {
	case retry.Succeeded:
		rec.Status, outcome = event.StatusSucceeded, Success
	case retry.Again:
		rec.Status, rec.NextAttemptAt, outcome = event.StatusRetrying, dec.Due, Retry
	default:
		rec.Status, outcome = event.StatusFailed, Exhausted
		if retry.IsPermanent(err) && !spent {
			outcome = Permanent
		}
	}
	rec.AddAttempt(store.Attempt{Run: rec.Run, Number: j.Attempt, StartedAt: start, Duration: end.Sub(start), Outcome: rec.Status, Error: rec.LastError})
	if span.IsRecording() {
		span.SetAttributes(attribute.String(tracing.AttrEventID, rec.ID), attribute.String(tracing.AttrEventType, rec.EventType),
			attribute.Int(tracing.AttrAttempt, j.Attempt), attribute.String("boomerang.outcome", rec.Status.String()))
		if err != nil {
			span.SetStatus(codes.Error, rec.LastError)
		}
	}
	out := store.Outcome{Lease: j.Lease, Record: rec}
	if ok && rt.Dest != "" {
		var se *outbound.StatusError
		code := 0
		if errors.As(err, &se) {
			code = se.Code
		}
		out.Flow = callback.FlowOutcome(code, err)
	}
	if rec.Status.Terminal() {
		rec.CompletedAt = end
		out.Record = rec
		out.Callback = callback.NewRecord(rec)
	}
	if ctx.Err() != nil {
		// Given back at shutdown, or the lease was lost: the pool drops
		// this outcome, so it is no failed attempt.
		return out
	}
	if p.obs != nil {
		p.obs.Attempt(rec.EventType, outcome, end.Sub(start))
	}
	// The log gets the error's details, redacted: a forward's error holds
	// the target's URL, whose query may hold a token (LastError holds only
	// the failure's class).
	switch {
	case rec.Status == event.StatusFailed:
		p.log.Warn("event failed for good", "event_id", rec.ID, tracing.LogAttr(ctx), "attempts", rec.Attempts, "err", outbound.Redact(err))
	case rec.Status == event.StatusRetrying:
		p.log.Info("event attempt failed; will retry", "event_id", rec.ID, tracing.LogAttr(ctx), "attempt", j.Attempt, "next_attempt_at", rec.NextAttemptAt, "err", outbound.Redact(err))
	default:
		p.log.Debug("event done", "event_id", rec.ID, tracing.LogAttr(ctx), "status", rec.Status, "attempts", rec.Attempts)
	}
	return out
}

// call runs the route's logic with its timeout, turning a panic into an
// error of the attempt (retried like any other), logged with its stack.
func (p *Processor) call(ctx context.Context, rt Route, ev Event) (err error) {
	if rt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.Timeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			pe := event.NewPanicError(r)
			p.log.Error("business logic panicked", "event_id", ev.ID, tracing.LogAttr(ctx), "panic", fmt.Sprint(r), "stack", string(pe.Stack))
			err = pe
		}
	}()
	return rt.Logic(ctx, ev)
}
