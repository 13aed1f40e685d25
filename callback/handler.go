package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/internal/wire"
	"github.com/boomerang-events/boomerang/store"
)

// Option configures the handler NewEventHandler returns.
type Option func(*handlerConfig)

type handlerConfig struct {
	lease        time.Duration
	allowPrivate bool
	now          func() time.Time
}

// DefaultInlineLease is how long an event run in-request stays leased to
// its request unless WithLease says otherwise.
const DefaultInlineLease = 5 * time.Minute

// WithLease sets how long an event run in-request stays leased to its
// request. If the process dies meanwhile, the lease expires: a repeat of the
// request with the same id then takes the event over, and an engine running
// on the same store (boomerang.Engine.Run) finishes the event as failed and
// sends its fail callback. Default DefaultInlineLease.
func WithLease(d time.Duration) Option { return func(c *handlerConfig) { c.lease = d } }

// WithAllowPrivateNetworks accepts callback URLs on loopback and private
// addresses. Link-local and metadata addresses are always refused.
func WithAllowPrivateNetworks(allow bool) Option {
	return func(c *handlerConfig) { c.allowPrivate = allow }
}

// eventHandler is the callback-aware event.EventHandler.
type eventHandler[T any] struct {
	st  *store.Redis
	cfg handlerConfig
}

// NewEventHandler returns an event.EventHandler that keeps each event's state
// in st and sends its outcome back to the event's callback URLs:
//
//   - UnmarshalEventMessage reads the event with the server's parser (the
//     same validation, the same stored bytes) into a *CallbackEventMessage[T];
//   - BeforeHandle records the event in Redis and leases it to the request;
//     a repeat of an id answers with the earlier outcome
//     (*event.DuplicateError) and the business logic does not run again;
//   - AfterHandle records the outcome and, in the same atomic step, the
//     callback record.
//
// The lease lives in the message itself, so nothing is kept in the handler
// between the two calls. Use it with handler.NewGinEventHandler, and run a
// boomerang.Engine on the same store: it delivers the callbacks and reaps
// the events of requests that died.
func NewEventHandler[T any](st *store.Redis, opts ...Option) event.EventHandler[T] {
	cfg := handlerConfig{lease: DefaultInlineLease, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	return &eventHandler[T]{st: st, cfg: cfg}
}

func (h *eventHandler[T]) guard() outbound.Policy {
	return outbound.Policy{AllowPrivate: h.cfg.allowPrivate}
}

// UnmarshalEventMessage validates data as the server's POST /event does and
// decodes it into a *CallbackEventMessage[T]. A field at fault is an
// *event.FieldError (400).
func (h *eventHandler[T]) UnmarshalEventMessage(data []byte) (event.EventMessage[T], error) {
	ev, err := wire.Parse(data, "", h.guard())
	if err == nil {
		err = wire.CheckInRequest(ev)
	}
	if err != nil {
		return nil, err
	}
	var msg CallbackEventMessage[T]
	if err := json.Unmarshal(ev.Body, &msg); err != nil {
		return nil, &event.FieldError{Field: "payload", Msg: "does not decode into the handler's payload type: " + err.Error()}
	}
	msg.accepted = &ev
	return &msg, nil
}

// BeforeHandle records msg and leases it to this request. msg must be a
// *CallbackEventMessage[T]; one not made by UnmarshalEventMessage is encoded
// and validated first.
func (h *eventHandler[T]) BeforeHandle(ctx context.Context, msg event.EventMessage[T]) error {
	m, ok := msg.(*CallbackEventMessage[T])
	if !ok {
		return fmt.Errorf("callback: BeforeHandle: got a %T, want the *CallbackEventMessage of UnmarshalEventMessage", msg)
	}
	if m.accepted == nil {
		data, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("callback: encode event: %w", err)
		}
		ev, err := wire.Parse(data, "", h.guard())
		if err == nil {
			err = wire.CheckInRequest(ev)
		}
		if err != nil {
			return err
		}
		m.accepted = &ev
	}
	ev := *m.accepted
	m.ID = ev.Record.ID
	// The callback of the outcome continues the request's trace, when ctx
	// holds one (otelgin, with gin's ContextWithFallback).
	ev.Record.TraceParent, ev.Record.TraceState = tracing.Save(ctx)

	job, err := h.st.Inline().Begin(ctx, h.cfg.now(), h.cfg.lease, ev)
	var dup *store.DuplicateError
	if errors.As(err, &dup) {
		return &event.DuplicateError{ID: ev.Record.ID, Status: dup.Record.Status, LastError: dup.Record.LastError,
			Conflict: dup.Record.BodyHash != ev.Record.BodyHash}
	}
	if err != nil {
		return unavailableError{err}
	}
	if job.Record.BodyHash != ev.Record.BodyHash { // took over an abandoned run of another body
		h.st.Inline().Release(ctx, h.cfg.now(), []store.Lease{job.Lease})
		return &event.DuplicateError{ID: ev.Record.ID, Status: job.Record.Status, Conflict: true}
	}
	m.job = &job
	return nil
}

// AfterHandle records the outcome of msg's business logic and queues its
// callback. The attempts made, when handler.NewGinEventHandler retried the
// business logic, come from event.AttemptsFromContext.
func (h *eventHandler[T]) AfterHandle(ctx context.Context, msg event.EventMessage[T], eventResult error) error {
	m, ok := msg.(*CallbackEventMessage[T])
	if !ok || m.job == nil {
		return errors.New("callback: AfterHandle without a successful BeforeHandle")
	}
	job := *m.job
	m.job = nil
	now := h.cfg.now()
	rec := job.Record
	attempts := event.AttemptsFromContext(ctx)
	if len(attempts) == 0 {
		attempts = []event.Attempt{{Number: 1, StartedAt: now, Err: eventResult}}
	}
	for _, a := range attempts {
		at := store.Attempt{Number: job.Attempt - 1 + a.Number, StartedAt: a.StartedAt, Duration: a.Duration, Outcome: event.StatusRetrying}
		if a.Err != nil {
			at.Error = a.Err.Error()
		}
		rec.AddAttempt(at)
	}
	if rec.FirstAttemptAt.IsZero() {
		rec.FirstAttemptAt = attempts[0].StartedAt
	}
	rec.Attempts = job.Attempt - 1 + len(attempts)
	rec.Status, rec.LastError = event.StatusSucceeded, ""
	if eventResult != nil {
		rec.Status, rec.LastError = event.StatusFailed, eventResult.Error()
	}
	rec.History[len(rec.History)-1].Outcome = rec.Status
	rec.UpdatedAt, rec.CompletedAt = now, now

	// The request may be gone; the outcome is recorded all the same.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	errs, err := h.st.Inline().Finish(ctx, now, []store.Outcome{{Lease: job.Lease, Record: rec, Callback: NewRecord(rec)}})
	if err != nil {
		return unavailableError{err}
	}
	if errs[0] != nil {
		return fmt.Errorf("callback: record outcome of %s: %w", rec.ID, errs[0])
	}
	return nil
}

// unavailableError is a store failure: the answer is 503, the client may
// retry with the same id.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return "event store unavailable: " + e.err.Error() }
func (e unavailableError) Unwrap() error   { return e.err }
func (e unavailableError) HTTPStatus() int { return 503 }
