package event

import (
	"context"
	"fmt"
	"time"
)

// Attempt is one run of an event's business logic.
type Attempt struct {
	Number    int // 1 for the first
	StartedAt time.Time
	Duration  time.Duration
	Err       error // nil when the run succeeded
}

type attemptsKey struct{}

// ContextWithAttempts returns a context carrying the attempts made of the
// business logic, so an EventHandler's AfterHandle can record them.
func ContextWithAttempts(ctx context.Context, attempts []Attempt) context.Context {
	return context.WithValue(ctx, attemptsKey{}, attempts)
}

// AttemptsFromContext returns the attempts ContextWithAttempts put in ctx.
func AttemptsFromContext(ctx context.Context) []Attempt {
	a, _ := ctx.Value(attemptsKey{}).([]Attempt)
	return a
}

// DuplicateError is returned by an EventHandler's BeforeHandle for an event
// id it has seen before: the business logic does not run again, and the
// request is answered with the earlier outcome (HTTPStatus).
type DuplicateError struct {
	ID     string
	Status Status // the event's status now
	// LastError is the error of the earlier outcome, if it failed.
	LastError string
	// Conflict is true when the repeat's body differs from the original's.
	Conflict bool
}

func (e *DuplicateError) Error() string {
	switch {
	case e.Conflict:
		return fmt.Sprintf("event %s was already accepted with a different body", e.ID)
	case e.Status == StatusSucceeded:
		return fmt.Sprintf("event %s already succeeded", e.ID)
	case e.Status == StatusFailed:
		return fmt.Sprintf("event %s already failed: %s", e.ID, e.LastError)
	default:
		return fmt.Sprintf("event %s is %s; try again later", e.ID, e.Status)
	}
}

// HTTPStatus is the answer to the repeat: 200 when the event succeeded, 500
// when it failed (as the first answer was), 409 on a conflict or while the
// event is still running.
func (e *DuplicateError) HTTPStatus() int {
	switch {
	case e.Conflict:
		return 409
	case e.Status == StatusSucceeded:
		return 200
	case e.Status == StatusFailed:
		return 500
	default:
		return 409
	}
}
