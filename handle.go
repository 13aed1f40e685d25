package boomerang

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/process"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
)

// Wildcard is the event type that matches every type without logic of its
// own.
const Wildcard = "*"

// HandleOption tunes the logic of one event type.
type HandleOption func(*handleConfig)

type handleConfig struct {
	retry    RetryPolicy
	timeout  time.Duration
	callback callback.Options
}

// WithRetry sets the event type's retry policy: its non-zero fields replace
// those of Config.Retry.
func WithRetry(p RetryPolicy) HandleOption { return func(c *handleConfig) { c.retry = p } }

// WithTimeout bounds one attempt: its context ends after d. Default: no
// bound for Handle, DefaultForwardTimeout for Forward.
func WithTimeout(d time.Duration) HandleOption { return func(c *handleConfig) { c.timeout = d } }

// WithCallback sets how the callbacks of the event type's events are sent
// when the event itself does not say (its callback.method and
// callback.format): its non-zero fields replace Config.Callback's Method
// and Format. GET with cloudevents is refused when registering.
func WithCallback(o callback.Options) HandleOption { return func(c *handleConfig) { c.callback = o } }

// Handle registers fn as the business logic of the events of eventType (or
// of every type without logic of its own, for Wildcard). Each attempt gets
// the event decoded into a *callback.CallbackEventMessage[T], whose payload
// is a T, and a context that ends when the attempt's timeout passes or the
// engine stops. fn returns nil on success; an error marked with Permanent
// (or backoff.Permanent) fails the event at once; any other error, or a
// panic, is retried under the policy, no sooner than RetryAfter asks. An
// event whose payload does not decode into a T fails at once.
//
// Register before Run; registering a type twice is an error.
func Handle[T any](e *Engine, eventType string, fn func(ctx context.Context, msg event.EventMessage[T]) error, opts ...HandleOption) error {
	if fn == nil {
		return fmt.Errorf("boomerang: handle %s: nil function", eventType)
	}
	return e.handle(eventType, typed(fn), opts, "")
}

// typed adapts a function of a typed message to the processor's logic.
func typed[T any](fn func(ctx context.Context, msg event.EventMessage[T]) error) process.Logic {
	return func(ctx context.Context, ev process.Event) error {
		var msg callback.CallbackEventMessage[T]
		if err := json.Unmarshal(ev.Body, &msg); err != nil {
			return Permanent(fmt.Errorf("decode event %s: %w", ev.ID, err))
		}
		return fn(ctx, &msg)
	}
}

// Forward registers, as the business logic of eventType, a POST of the
// event's JSON to url: a 2xx answer is success; 5xx, 408, 429 and network
// errors are retried (honouring Retry-After); any other answer fails the
// event. Forward targets are your own services: private addresses are
// allowed, link-local and metadata ones are not. The request carries
// Idempotency-Key and Boomerang-Event-Id (the event id) and
// Boomerang-Attempt.
func (e *Engine) Forward(eventType, url string, opts ...HandleOption) error {
	if err := CheckForwardURL(url); err != nil {
		return fmt.Errorf("boomerang: forward %s: %w", eventType, err)
	}
	opts = append([]HandleOption{WithTimeout(DefaultForwardTimeout)}, opts...)
	return e.handle(eventType, process.Forward(url, e.forward), opts, store.DestinationOf(url))
}

// CheckForwardURL reports whether Forward accepts url as a target: an
// absolute http or https URL whose host is not a link-local or metadata
// address.
func CheckForwardURL(url string) error {
	if err := forwardPolicy.CheckURL(url); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "outbound: "))
	}
	return nil
}

// Accept registers, as the business logic of eventType, success without
// doing anything: for demos, and for events whose only point is their
// callback and their record. Such an event needs no worker: POST /event
// records it as succeeded, with its callback queued, in the same atomic
// step that records it (docs/architecture.md, "Settled at ingest").
func (e *Engine) Accept(eventType string, opts ...HandleOption) error {
	return e.add(process.Route{EventType: eventType, Logic: process.Accept(), Instant: true}, opts)
}

// handle registers logic for eventType; dest is the destination its
// requests go to, for flow control ("" for none).
func (e *Engine) handle(eventType string, logic process.Logic, opts []HandleOption, dest string) error {
	return e.add(process.Route{EventType: eventType, Logic: logic, Dest: dest}, opts)
}

// add registers rt with the options' retry policy and timeout.
func (e *Engine) add(rt process.Route, opts []HandleOption) error {
	var c handleConfig
	for _, o := range opts {
		o(&c)
	}
	rt.Retry, rt.Timeout, rt.Callback = c.retry, c.timeout, c.callback
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running {
		return ErrRunning
	}
	if err := e.routes.Add(rt); err != nil {
		return fmt.Errorf("boomerang: %w", err)
	}
	return nil
}

// Permanent marks err as not worth another attempt: business logic returns
// it to fail the event at once. Permanent(nil) is nil.
func Permanent(err error) error { return retry.Permanent(err) }

// RetryAfter marks err as retryable no sooner than d from now (within the
// policy's MaxInterval), as an HTTP Retry-After asks. RetryAfter(nil, d) is
// nil.
func RetryAfter(err error, d time.Duration) error { return retry.After(err, d) }

// settler settles at ingest the events of the engine's Accept routes
// (handler.Settler): an instance that only ingests settles them too, as
// its routes say.
type settler struct{ e *Engine }

func (s settler) Settle(rec store.Record, now time.Time) *store.Settled {
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	return process.Settle(s.e.routes, rec, now)
}

func (s settler) Settled(st *store.Settled) {
	if m := s.e.metrics; m != nil {
		m.Attempt(st.Record.EventType, process.Success, 0)
	}
	s.e.log.Debug("event done", "event_id", st.Record.ID, "status", st.Record.Status, "attempts", st.Record.Attempts, "settled_at_ingest", true)
}
