package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/retry"
	"github.com/cenkalti/backoff/v4"
)

// Event is an event as the workers run it.
type Event struct {
	ID      string
	Type    string
	Attempt int // 1 for the first
	// Body is the event's JSON as it was accepted: id, event_type,
	// timestamp, payload, metadata and callback.
	Body []byte
}

// LogicFunc is the business logic of an event. It returns nil on success.
// An error marked with backoff.Permanent fails the event at once; any other
// error is retried under the route's policy, no sooner than a
// *RetryAfterError asks.
type LogicFunc func(ctx context.Context, ev Event) error

// RetryAfterError is an error that asks for the next attempt to wait at
// least After (within the policy's MaxInterval).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// Accept is the logic that succeeds without doing anything.
func Accept() LogicFunc {
	return func(context.Context, Event) error { return nil }
}

// Typed adapts a function of a typed event message to a LogicFunc: the body
// is decoded into an event.BaseEventMessage[T] first. A body that does not
// decode fails the event for good.
func Typed[T any](fn func(ctx context.Context, msg event.EventMessage[T]) error) LogicFunc {
	return func(ctx context.Context, ev Event) error {
		msg, err := event.BaseEventMessageUnmarshaller[T](ev.Body)
		if err != nil {
			return backoff.Permanent(fmt.Errorf("decode event %s: %w", ev.ID, err))
		}
		return fn(ctx, msg)
	}
}

// maxForwardResponse bounds what is read of a forward target's answer.
const maxForwardResponse = 64 << 10

// Forward is the logic that POSTs the event's body to url with client. A 2xx
// answer is success; 5xx, 408, 429 and network errors are retried (honouring
// Retry-After); any other answer fails the event for good.
func Forward(url string, client *http.Client) LogicFunc {
	return func(ctx context.Context, ev Event) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.Body))
		if err != nil {
			return backoff.Permanent(fmt.Errorf("forward: %w", err))
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Boomerang-Forward/1")
		req.Header.Set("Idempotency-Key", ev.ID)
		req.Header.Set("Boomerang-Event-Id", ev.ID)
		req.Header.Set("Boomerang-Attempt", fmt.Sprint(ev.Attempt))
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("forward: %w", err)
		}
		defer resp.Body.Close()
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxForwardResponse))
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxForwardResponse))
		code := resp.StatusCode
		if code >= 200 && code < 300 {
			return nil
		}
		err = fmt.Errorf("forward: target answered %d%s", code, errorDetail(snippet))
		if !retry.RetryableStatus(code) {
			return backoff.Permanent(err)
		}
		if after := retry.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); after > 0 {
			return &RetryAfterError{Err: err, After: after}
		}
		return err
	}
}

// errorDetail returns ": <message>" from a JSON {"error": "..."} answer,
// cut short, or "".
func errorDetail(body []byte) string {
	var v struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == "" {
		return ""
	}
	if len(v.Error) > 200 {
		v.Error = v.Error[:200]
	}
	return ": " + v.Error
}

// retryAfter returns the delay err asks for, or 0.
func retryAfter(err error) time.Duration {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After
	}
	return 0
}

// isPermanent reports whether err was marked with backoff.Permanent.
func isPermanent(err error) bool {
	var p *backoff.PermanentError
	return errors.As(err, &p)
}
