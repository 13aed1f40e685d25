package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Get returns the record of event id (GET /callback?event_id=ID). An
// unknown id is ErrNotFound. It makes one request.
func (c *Client) Get(ctx context.Context, id string) (*Record, error) {
	rec, err := c.get(ctx, id, 0)
	if err != nil {
		return nil, fmt.Errorf("client: get %s: %w", id, err)
	}
	return rec, nil
}

// Cancel cancels event id if it has not started (DELETE /events/{id}):
// scheduled for later, waiting for its ordering key, or queued and not yet
// claimed. It returns the canceled record (status canceled: it never runs
// and no callback is sent). An event that started or ended is ErrConflict,
// an unknown id ErrNotFound. It makes one request: a cancel lost on the
// way may be asked again, and answers ErrConflict once it was done.
func (c *Client) Cancel(ctx context.Context, id string) (*Record, error) {
	a, err := c.do(ctx, http.MethodDelete, "/events/"+url.PathEscape(id), nil, c.cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("client: cancel %s: %w", id, err)
	}
	var rec Record
	if err := a.decode(&rec, http.StatusOK); err != nil {
		return nil, fmt.Errorf("client: cancel %s: %w", id, err)
	}
	return &rec, nil
}

// get reads the record of event id, asking the server to hold the request
// up to wait seconds until the event is finished (none when 0).
func (c *Client) get(ctx context.Context, id string, wait int) (*Record, error) {
	path, timeout := "/callback?event_id="+url.QueryEscape(id), c.cfg.Timeout
	if wait > 0 {
		path += "&wait=" + strconv.Itoa(wait)
		timeout += time.Duration(wait) * time.Second
	}
	a, err := c.do(ctx, http.MethodGet, path, nil, timeout)
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := a.decode(&rec, http.StatusOK); err != nil {
		return nil, err
	}
	return &rec, nil
}

// The polling of Wait when the server answers at once.
const (
	pollInitial = 50 * time.Millisecond
	pollMax     = time.Second
)

// Wait returns the record of event id once its status is terminal
// (succeeded, failed or canceled; Status.Terminal).
//
// Each request asks the server to hold it until the event is finished,
// for at most Config.LongPoll (GET /callback?event_id=ID&wait=25, cut to
// what is left of ctx's deadline), so a waiting Wait costs one request per
// LongPoll. A server that answers a non-terminal record sooner (one that
// does not long-poll) is polled again after a backoff from 50ms doubling
// to 1s, never in a hot loop. 502, 503, 504 and transport errors that may
// pass are polled again in the same way; other errors end Wait (an unknown
// id is ErrNotFound). When ctx ends first, Wait returns the last record it
// read (nil if none) with ctx's error.
func (c *Client) Wait(ctx context.Context, id string) (*Record, error) {
	poll := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(pollInitial),
		backoff.WithMaxInterval(pollMax),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.2),
		backoff.WithMaxElapsedTime(0), // ctx bounds Wait
	)
	var last *Record
	for {
		wait := c.longPoll(ctx)
		start := time.Now()
		rec, err := c.get(ctx, id, wait)
		if ctx.Err() != nil {
			return last, fmt.Errorf("client: wait %s: %w", id, ctx.Err())
		}
		switch {
		case err == nil && rec.Status.Terminal():
			return rec, nil
		case err == nil:
			last = rec
			if wait > 0 && time.Since(start) >= time.Duration(wait)*time.Second/2 {
				poll.Reset() // the server held the request: ask again at once
				continue
			}
		case !pollAgain(ctx, err):
			return last, fmt.Errorf("client: wait %s: %w", id, err)
		}
		if err := sleep(ctx, poll.NextBackOff()); err != nil {
			return last, fmt.Errorf("client: wait %s: %w", id, err)
		}
	}
}

// longPoll is the wait parameter of Wait's next request, in whole seconds:
// Config.LongPoll, cut to what is left of ctx's deadline; 0 for none.
func (c *Client) longPoll(ctx context.Context) int {
	d := c.cfg.LongPoll
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	return max(int(d/time.Second), 0)
}

// pollAgain reports whether Wait polls again after err.
func pollAgain(ctx context.Context, err error) bool {
	if apiErr, ok := errors.AsType[*APIError](err); ok {
		return retryStatus(apiErr.StatusCode)
	}
	return transient(ctx, err)
}
