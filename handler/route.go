package handler

import (
	"fmt"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/retry"
)

// RetryPolicy is the exponential backoff of an event's attempts.
type RetryPolicy = retry.Policy

// Route chooses the business logic of the events whose type matches.
type Route struct {
	// EventType is the type matched, or "*" for every type.
	EventType string
	// Logic runs the event.
	Logic LogicFunc
	// Timeout bounds one attempt; zero means no bound but the lease's
	// renewal.
	Timeout time.Duration
	// Retry is the route's policy; zero fields take the processor's.
	Retry RetryPolicy
}

// router picks the first route matching an event type.
type router []Route

func (r router) match(eventType string) (Route, bool) {
	for _, rt := range r {
		if rt.EventType == "*" || rt.EventType == eventType {
			return rt, true
		}
	}
	return Route{}, false
}

func validateRoutes(routes []Route) error {
	for i, rt := range routes {
		if rt.EventType != "*" {
			if err := event.ValidateEventType(rt.EventType); err != nil {
				return fmt.Errorf("handler: route %d: %w", i, err)
			}
		}
		if rt.Logic == nil {
			return fmt.Errorf("handler: route %d (%s): nil Logic", i, rt.EventType)
		}
		if err := rt.Retry.Validate(); err != nil {
			return fmt.Errorf("handler: route %d (%s): retry: %w", i, rt.EventType, err)
		}
	}
	return nil
}
