package event

import "context"

// EventHandler is the lifecycle around an event's business logic: decode the
// request body, prepare, and record the result. handler.NewGinEventHandler
// calls UnmarshalEventMessage, then BeforeHandle, then the business logic,
// then AfterHandle with the business logic's error (nil on success).
//
// An error returned by BeforeHandle stops the event before the business logic
// runs. An error that has an HTTPStatus() int method chooses the HTTP status
// of the answer; any other error answers 500.
type EventHandler[T any] interface {
	BeforeHandle(ctx context.Context, msg EventMessage[T]) error
	AfterHandle(ctx context.Context, msg EventMessage[T], eventResult error) error
	UnmarshalEventMessage(data []byte) (EventMessage[T], error)
}
