package retry

import (
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// permanentError marks an error that no retry can mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth another attempt: the event (or the
// delivery) fails at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// afterError asks for the next attempt to wait at least d.
type afterError struct {
	err error
	d   time.Duration
}

func (e *afterError) Error() string { return e.err.Error() }
func (e *afterError) Unwrap() error { return e.err }

// After marks err as retryable no sooner than d from now, as an HTTP
// Retry-After asks. The policy's MaxInterval still caps the wait. After(nil,
// d) is nil.
func After(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &afterError{err: err, d: d}
}

// IsPermanent reports whether err was marked with Permanent, or with
// backoff.Permanent as the original event package's users do.
func IsPermanent(err error) bool {
	var p *permanentError
	var bp *backoff.PermanentError
	return errors.As(err, &p) || errors.As(err, &bp)
}

// AfterOf returns the least wait err asks for with After, or 0.
func AfterOf(err error) time.Duration {
	var a *afterError
	if errors.As(err, &a) {
		return a.d
	}
	return 0
}
