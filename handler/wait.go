package handler

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
)

// Waiting for an outcome.
const (
	// MaxWait is the longest a request waits for an event's outcome
	// (Prefer: wait=N on POST /event, ?wait=N on GET /callback); a longer
	// wait asked for is cut to it. It stays below the server's 30s write
	// timeout.
	MaxWait = 25 * time.Second
	// DefaultMaxWaiters is how many requests of one process may wait at
	// once when ServerConfig.MaxWaiters names no number.
	DefaultMaxWaiters = 1000
)

// waitParam reads GET /callback's wait: whole seconds, 0 to MaxWait's;
// more is cut to MaxWait. It answers 400 naming wait and returns false for
// anything else.
func waitParam(c *gin.Context) (time.Duration, bool) {
	v := c.Query("wait")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		c.JSON(http.StatusBadRequest, gin.H{"error": "wait: must be a whole number of seconds, such as 10 (at most 25 are waited)", "field": "wait"})
		return 0, false
	}
	return min(time.Duration(n)*time.Second, MaxWait), true
}

// preferWait reads the wait preference of RFC 7240's Prefer headers
// ("Prefer: wait=10", possibly among other preferences), cut to MaxWait;
// 0 when there is none or it is not a number (a preference the server
// does not understand is ignored, as RFC 7240 asks).
func preferWait(h http.Header) time.Duration {
	for _, line := range h.Values("Prefer") {
		for pref := range strings.SplitSeq(line, ",") {
			name, val, ok := strings.Cut(strings.TrimSpace(pref), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			val, _, _ = strings.Cut(val, ";")
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if err != nil || n <= 0 {
				return 0
			}
			return min(time.Duration(n)*time.Second, MaxWait)
		}
	}
	return 0
}

// unlessWaiting runs bound on the requests that do not ask to wait: a
// waiting GET /callback is bounded by its wait instead, and each of its
// reads by RequestTimeout.
func unlessWaiting(bound gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Query("wait") == "" || c.Query("event_id") == "" {
			bound(c)
		}
	}
}

// waitFor waits up to d for event id to reach a terminal status, and
// returns its snapshot then (whatever its status when d passed). ok is
// false, with nothing answered, when the process has too many waiters or
// waiting is off: the caller answers as if no wait had been asked.
func (s *Server) waitFor(ctx context.Context, id string, d time.Duration) (snap store.Snapshot, ok bool, err error) {
	if s.waiters == nil {
		return snap, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	snap, err = s.waiters.Wait(ctx, id)
	if errors.Is(err, store.ErrTooManyWaiters) {
		s.log.Warn("a request asked to wait, but max_waiters requests already wait", "event_id", id)
		return snap, false, nil
	}
	return snap, err == nil, err
}

// waitRecord answers GET /callback?event_id=ID&wait=N: the record once the
// event is terminal, or after N seconds, whichever comes first.
func (s *Server) waitRecord(c *gin.Context, id string, d time.Duration) {
	if event.ValidateID(id) != nil {
		s.notFound(c, id)
		return
	}
	snap, ok, err := s.waitFor(c.Request.Context(), id, d)
	if !ok && err == nil { // too many waiters: answer at once
		ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.RequestTimeout)
		defer cancel()
		snap, err = s.st.Get(ctx, id)
	}
	if err != nil {
		s.storeError(c, id, err)
		return
	}
	c.JSON(http.StatusOK, newView(snap, false))
}

// deleteEvent cancels an event that has not started: 200 with its
// canceled record; 409 when it has started or ended; 404 when unknown.
func (s *Server) deleteEvent(c *gin.Context) {
	id := c.Param("id")
	if event.ValidateID(id) != nil {
		s.notFound(c, id)
		return
	}
	rec, err := s.st.Cancel(c.Request.Context(), s.cfg.Now(), id)
	if errors.Is(err, store.ErrStarted) {
		c.JSON(http.StatusConflict, gin.H{"error": "event " + id + " is " + rec.Status.String() + ": only an event that has not started can be canceled"})
		return
	}
	if err != nil {
		s.storeError(c, id, err)
		return
	}
	c.JSON(http.StatusOK, newView(store.Snapshot{Record: rec}, false))
}
