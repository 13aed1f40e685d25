package process

import (
	"fmt"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/retry"
)

// Wildcard is the event type of a route that matches every type without a
// route of its own (boomerang.Wildcard).
const Wildcard = "*"

// Route is the business logic of the events of one type.
type Route struct {
	// EventType is the type matched, or Wildcard.
	EventType string
	// Logic runs the event.
	Logic Logic
	// Timeout bounds one attempt; zero means no bound but the lease's
	// renewal.
	Timeout time.Duration
	// Retry is the route's policy; zero fields take the processor's.
	Retry retry.Policy
	// Dest is the destination of a forward route (store.DestinationOf of
	// its URL), whose flow control its events go through; "" for none.
	Dest string
	// Instant marks a route whose Logic succeeds at once without doing
	// anything (Accept): its events are settled at ingest (Settle) instead
	// of going through the workers.
	Instant bool
	// Callback is how the route's callbacks are sent, unless their event
	// says; zero fields leave it to the dispatcher's Config.
	Callback callback.Options
}

// Validate reports what is wrong with the route, naming its event type.
func (rt Route) Validate() error {
	if rt.EventType != Wildcard {
		if err := event.ValidateEventType(rt.EventType); err != nil {
			return err
		}
	}
	if rt.Logic == nil {
		return fmt.Errorf("route %s: no logic", rt.EventType)
	}
	if rt.Timeout < 0 {
		return fmt.Errorf("route %s: timeout must not be negative, got %s", rt.EventType, rt.Timeout)
	}
	if err := rt.Retry.Validate(); err != nil {
		return fmt.Errorf("route %s: retry.%w", rt.EventType, err)
	}
	if err := rt.Callback.Check(); err != nil {
		return fmt.Errorf("route %s: %w", rt.EventType, err)
	}
	return nil
}

// Routes picks an event type's route: its own, else the Wildcard's.
type Routes map[string]Route

// Add adds rt, refusing a second route for the same type.
func (r Routes) Add(rt Route) error {
	if err := rt.Validate(); err != nil {
		return err
	}
	if _, dup := r[rt.EventType]; dup {
		return fmt.Errorf("route %s: added twice", rt.EventType)
	}
	r[rt.EventType] = rt
	return nil
}

// Match returns eventType's route: its own, else the Wildcard's.
func (r Routes) Match(eventType string) (Route, bool) {
	if rt, ok := r[eventType]; ok {
		return rt, true
	}
	rt, ok := r[Wildcard]
	return rt, ok
}
