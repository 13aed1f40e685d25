package event

import (
	"fmt"
	"runtime/debug"
)

// PanicError is the error of an attempt whose business logic panicked. The
// server's workers and handler.NewGinEventHandler both turn a panic into
// one, log it with its stack, and treat it as any other error of that
// attempt: retried under the policy.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

// NewPanicError returns the error of a panic with value r; call it in the
// deferred function that recovered, so the stack is the panic's.
func NewPanicError(r any) *PanicError {
	return &PanicError{Value: r, Stack: debug.Stack()}
}

func (e *PanicError) Error() string { return fmt.Sprintf("business logic panicked: %v", e.Value) }
