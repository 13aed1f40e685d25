package callback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/store"
)

// Option configures the handler NewEventHandler returns.
type Option func(*handlerConfig)

type handlerConfig struct {
	lease        time.Duration
	allowPrivate bool
	notify       func()
	now          func() time.Time
	log          *slog.Logger
}

// WithLease sets how long an event run in-request stays leased to its
// request: if the process dies, a repeat of the request with the same id
// takes the event over after this long. Default 5m.
func WithLease(d time.Duration) Option { return func(c *handlerConfig) { c.lease = d } }

// WithAllowPrivateNetworks accepts callback URLs on loopback and private
// addresses. Link-local and metadata addresses are always refused.
func WithAllowPrivateNetworks(allow bool) Option {
	return func(c *handlerConfig) { c.allowPrivate = allow }
}

// WithDispatcher wakes d whenever an outcome queues a callback, so it is
// delivered at once rather than at d's next poll.
func WithDispatcher(d *Dispatcher) Option { return func(c *handlerConfig) { c.notify = d.Notify } }

// WithLogger sets the handler's logger. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *handlerConfig) { c.log = l } }

// eventHandler is the callback-aware event.EventHandler.
type eventHandler[T any] struct {
	st  *store.Redis
	cfg handlerConfig

	mu   sync.Mutex // guards jobs
	jobs map[event.EventMessage[T]]store.Job
}

// NewEventHandler returns an event.EventHandler that keeps each event's state
// in st and sends its outcome back to the event's callback URLs:
//
//   - UnmarshalEventMessage decodes a *CallbackEventMessage[T];
//   - BeforeHandle validates the event, records it in Redis and leases it to
//     the request; a repeat of an id answers with the earlier outcome
//     (*event.DuplicateError) and the business logic does not run again;
//   - AfterHandle records the outcome and, in the same atomic step, the
//     callback record, which a Dispatcher on the same store delivers.
//
// Use it with handler.NewGinEventHandler, and run a Dispatcher.
func NewEventHandler[T any](st *store.Redis, opts ...Option) event.EventHandler[T] {
	cfg := handlerConfig{lease: 5 * time.Minute, now: time.Now, log: slog.Default(), notify: func() {}}
	for _, o := range opts {
		o(&cfg)
	}
	return &eventHandler[T]{st: st, cfg: cfg, jobs: make(map[event.EventMessage[T]]store.Job)}
}

// UnmarshalEventMessage decodes data into a *CallbackEventMessage[T].
func (h *eventHandler[T]) UnmarshalEventMessage(data []byte) (event.EventMessage[T], error) {
	var msg CallbackEventMessage[T]
	if err := json.Unmarshal(data, &msg); err != nil {
		return nil, fmt.Errorf("callback: decode event message: %w", err)
	}
	return &msg, nil
}

// BeforeHandle validates msg and records it, leased to this request.
func (h *eventHandler[T]) BeforeHandle(ctx context.Context, msg event.EventMessage[T]) error {
	if err := event.ValidateEventType(msg.GetEventType()); err != nil {
		return err
	}
	rec := store.Record{EventType: msg.GetEventType()}
	if m, ok := msg.(interface{ GetCallback() *CallbackInfo }); ok && m.GetCallback() != nil {
		info := m.GetCallback()
		if err := info.Check(h.cfg.allowPrivate); err != nil {
			return err
		}
		rec.SuccessURL, rec.FailURL = info.SuccessURL, info.FailURL
	}
	if m, ok := msg.(interface {
		GetID() string
		SetID(string)
	}); ok {
		if m.GetID() == "" {
			m.SetID(event.NewID())
		}
		rec.ID = m.GetID()
	} else {
		rec.ID = event.NewID()
	}
	if err := event.ValidateID(rec.ID); err != nil {
		return err
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("callback: encode event %s: %w", rec.ID, err)
	}
	rec.BodyHash = store.HashBody(body)

	job, err := h.st.Begin(ctx, h.cfg.now(), h.cfg.lease, store.NewEvent{Record: rec, Body: body})
	var dup *store.DuplicateError
	if errors.As(err, &dup) {
		return &event.DuplicateError{ID: rec.ID, Status: dup.Record.Status, LastError: dup.Record.LastError,
			Conflict: dup.Record.BodyHash != rec.BodyHash}
	}
	if err != nil {
		return unavailableError{err}
	}
	if job.Record.BodyHash != rec.BodyHash { // took over an abandoned run of another body
		h.st.ReleaseInline(ctx, h.cfg.now(), job.Lease)
		return &event.DuplicateError{ID: rec.ID, Status: job.Record.Status, Conflict: true}
	}
	h.mu.Lock()
	h.jobs[msg] = job
	h.mu.Unlock()
	return nil
}

// AfterHandle records the outcome of msg's business logic and queues its
// callback. The attempts made, when handler.NewGinEventHandler retried the
// business logic, come from event.AttemptsFromContext.
func (h *eventHandler[T]) AfterHandle(ctx context.Context, msg event.EventMessage[T], eventResult error) error {
	h.mu.Lock()
	job, ok := h.jobs[msg]
	delete(h.jobs, msg)
	h.mu.Unlock()
	if !ok {
		return errors.New("callback: AfterHandle without a successful BeforeHandle")
	}
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
	cb := NewRecord(rec)

	// The request may be gone; the outcome is recorded all the same.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	errs, err := h.st.FinishInline(ctx, now, []store.Outcome{{Lease: job.Lease, Record: rec, Callback: cb}})
	if err != nil {
		return unavailableError{err}
	}
	if errs[0] != nil {
		return fmt.Errorf("callback: record outcome of %s: %w", rec.ID, errs[0])
	}
	if cb != nil {
		h.cfg.notify()
	}
	return nil
}

// unavailableError is a store failure: the answer is 503, the client may
// retry with the same id.
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return "event store unavailable: " + e.err.Error() }
func (e unavailableError) Unwrap() error   { return e.err }
func (e unavailableError) HTTPStatus() int { return 503 }
