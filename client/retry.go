package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// RetryPolicy is how Send and SendBatch retry a request whose outcome is
// unknown: exponential backoff (cenkalti/backoff/v4) with ±50% jitter,
// doubling from InitialInterval up to MaxInterval, for at most MaxAttempts
// requests and never past the ctx of the call. With the defaults the
// delays before attempts 2 to 5 are:
//
//	attempt  interval  randomized
//	2        100ms     [50ms,  150ms]
//	3        200ms     [100ms, 300ms]
//	4        400ms     [200ms, 600ms]
//	5        800ms     [400ms, 1.2s]
//
// A delay is never shorter than the Retry-After of the answer (Boomerang's
// 503 says 1s), cut to MaxInterval.
//
// What is retried: transport errors that may pass (connection refused or
// reset, the connection closed before the answer, a timeout of one
// request, a DNS timeout) and the statuses 502, 503 and 504. Never a 4xx or
// another 5xx: asking again would get the same answer.
type RetryPolicy struct {
	// MaxAttempts is the most requests of one call, the first included.
	// Default 5; 1 means no retry.
	MaxAttempts int
	// InitialInterval is the delay before the second attempt, before
	// jitter. Default 100ms.
	InitialInterval time.Duration
	// MaxInterval caps the interval before jitter, and a Retry-After.
	// Default 5s.
	MaxInterval time.Duration
}

// Defaults of a RetryPolicy's zero fields.
const (
	DefaultMaxAttempts     = 5
	DefaultInitialInterval = 100 * time.Millisecond
	DefaultMaxInterval     = 5 * time.Second
)

func (p RetryPolicy) check() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("client: retry.max_attempts must not be negative, got %d", p.MaxAttempts)
	case p.InitialInterval < 0:
		return fmt.Errorf("client: retry.initial_interval must not be negative, got %s", p.InitialInterval)
	case p.MaxInterval < 0:
		return fmt.Errorf("client: retry.max_interval must not be negative, got %s", p.MaxInterval)
	}
	return nil
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialInterval == 0 {
		p.InitialInterval = DefaultInitialInterval
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = DefaultMaxInterval
	}
	return p
}

// backOff returns a fresh backoff of p, for one call (it is not safe for
// concurrent use). Attempts and ctx bound the call, not elapsed time.
func (p RetryPolicy) backOff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.InitialInterval),
		backoff.WithMaxInterval(p.MaxInterval),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0),
	)
}

// attemptFunc is one request of a retried call. done reports that the
// call is over, with err as its outcome; otherwise err says why the
// attempt failed, and the next one waits at least wait.
type attemptFunc func(ctx context.Context) (done bool, wait time.Duration, err error)

// retry runs fn until it is done, the policy's attempts are spent or ctx
// ends, and returns the number of attempts made and the last error.
func (c *Client) retry(ctx context.Context, fn attemptFunc) (int, error) {
	p := c.cfg.Retry
	bo := p.backOff()
	var last error // the error of the attempt before
	for n := 1; ; n++ {
		done, wait, err := fn(ctx)
		if cerr := ctx.Err(); err != nil && cerr != nil && last != nil {
			// ctx ended during this attempt: the one before says more.
			return n, fmt.Errorf("%w after %d attempts; last: %w", cerr, n, last)
		}
		if done {
			return n, err
		}
		if n >= p.MaxAttempts {
			return n, fmt.Errorf("%d attempts: %w", n, err)
		}
		last = err
		if serr := sleep(ctx, max(bo.NextBackOff(), min(wait, p.MaxInterval))); serr != nil {
			return n, fmt.Errorf("%w after %d attempts; last: %w", serr, n, err)
		}
	}
}

// retryStatus reports whether an answer of this status is retried: the
// server (or a proxy before it) could not say what became of the request.
func retryStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// transient reports whether err, a transport error of a request made with
// ctx, may pass if the request is sent again. The end of ctx itself never
// does.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(err, &dnsErr): // before OpError, which wraps it
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	case errors.Is(err, context.DeadlineExceeded): // this request's Timeout
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF): // closed before the answer
		return true
	case errors.As(err, &opErr): // dial, read or write: refused, reset, unreachable, timed out
		return true
	}
	return false
}
