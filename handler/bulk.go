package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
)

// Bounds of a bulk dead-letter action.
const (
	// maxBulkIDs is the most ids one request may name.
	maxBulkIDs = 1000
	// maxBulkBody bounds the body of a bulk request (1000 ids of 128
	// bytes and their quotes fit).
	maxBulkBody = 256 << 10
)

// Bounds of a filter's walk; variables so that tests can make them small.
var (
	// bulkBatch is how many dead letters one store listing call reads
	// when a request names a filter.
	bulkBatch = 200
	// maxBulkWalk is the most dead letters one filter request looks at;
	// past it the answer carries next_cursor to continue from.
	maxBulkWalk = 10000
)

// bulkRequest is the body of POST /dead-letters/retry and /redeliver:
// either IDs or Filter (with the Cursor of a previous answer).
type bulkRequest struct {
	IDs    []string    `json:"ids"`
	Filter *bulkFilter `json:"filter"`
	Cursor string      `json:"cursor"`
}

// bulkFilter selects every dead letter of an event type, of a kind, or both.
type bulkFilter struct {
	EventType string `json:"event_type"`
	Kind      string `json:"kind"`
}

// bulkResult is the answer of a bulk action: how each dead letter looked
// at was counted.
type bulkResult struct {
	Queued        int            `json:"queued"`
	AlreadyQueued int            `json:"already_queued"`
	Skipped       int            `json:"skipped"`
	NotFound      int            `json:"not_found"`
	Reasons       map[string]int `json:"skipped_reasons,omitempty"`
	NextCursor    string         `json:"next_cursor,omitempty"`
}

// Why a bulk action skipped a dead letter.
var skipReasons = []struct {
	err    error
	reason string
}{
	{store.ErrSucceeded, "succeeded"},
	{store.ErrBusy, "callback_in_delivery"},
	{store.ErrNoCallback, "no_callback"},
	{store.ErrContended, "contended"},
}

// reasonNotCallback is why redeliver skips an id whose callback did not fail.
const reasonNotCallback = "callback_not_failed"

func (r *bulkResult) skip(reason string) {
	r.Skipped++
	if r.Reasons == nil {
		r.Reasons = map[string]int{}
	}
	r.Reasons[reason]++
}

// count adds the outcome of one action to r, or returns err when it is
// not an outcome of the action but a failure of the store.
func (r *bulkResult) count(queued bool, err error) error {
	switch {
	case err == nil && queued:
		r.Queued++
	case err == nil:
		r.AlreadyQueued++
	case errors.Is(err, store.ErrNotFound):
		r.NotFound++
	default:
		for _, s := range skipReasons {
			if errors.Is(err, s.err) {
				r.skip(s.reason)
				return nil
			}
		}
		return err
	}
	return nil
}

// bulkAction is one dead letter's action: Retry or Redeliver.
type bulkAction func(ctx context.Context, now time.Time, id string) (bool, error)

// retryDeadLetters runs failed events again, by ids or by filter.
func (s *Server) retryDeadLetters(c *gin.Context) {
	s.bulk(c, "retry", s.st.Retry, func(store.DeadLetter) string { return "" })
}

// redeliverDeadLetters sends failed callbacks again, by ids or by filter;
// a dead letter whose callback did not fail is skipped. A callback pending
// or retrying is left to Redeliver, which counts it as already queued.
func (s *Server) redeliverDeadLetters(c *gin.Context) {
	s.bulk(c, "redeliver", s.st.Redeliver, func(d store.DeadLetter) string {
		if d.Callback == nil {
			return reasonNotCallback
		}
		switch d.Callback.Status {
		case event.CallbackFailed, event.CallbackPending, event.CallbackRetrying:
			return ""
		}
		return reasonNotCallback
	})
}

// bulk reads a bulk request and runs act on each id it names, or on each
// dead letter its filter matches, unless skip gives a reason not to.
func (s *Server) bulk(c *gin.Context, name string, act bulkAction, skip func(store.DeadLetter) string) {
	req, ok := readBulk(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	var (
		res bulkResult
		err error
	)
	if req.Filter != nil {
		err = s.bulkFilter(ctx, req, act, skip, &res)
	} else {
		err = s.bulkIDs(ctx, req.IDs, act, skip, &res)
	}
	if err != nil {
		s.storeError(c, "", err)
		return
	}
	s.log.Info("bulk dead-letter action", "action", name, "queued", res.Queued, "already_queued", res.AlreadyQueued,
		"skipped", res.Skipped, "not_found", res.NotFound)
	c.JSON(http.StatusOK, res)
}

// bulkIDs runs act on each id. An id that redeliver would skip is looked
// up first, so that it is counted as skipped, not as an action.
func (s *Server) bulkIDs(ctx context.Context, ids []string, act bulkAction, skip func(store.DeadLetter) string, res *bulkResult) error {
	for _, id := range ids {
		snap, err := s.st.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			res.NotFound++
			continue
		}
		if err != nil {
			return err
		}
		if reason := skip(store.DeadLetter{Snapshot: snap}); reason != "" {
			res.skip(reason)
			continue
		}
		if err := res.count(act(ctx, s.cfg.Now(), id)); err != nil {
			return err
		}
	}
	return nil
}

// bulkFilter walks the dead letters the filter matches, bulkBatch per
// store call, and runs act on each; it stops after maxBulkWalk, or when
// half the request's time is spent, leaving res.NextCursor to continue.
func (s *Server) bulkFilter(ctx context.Context, req bulkRequest, act bulkAction, skip func(store.DeadLetter) string, res *bulkResult) error {
	stopBy := time.Now().Add(s.cfg.RequestTimeout / 2)
	opts := store.DeadOptions{Limit: bulkBatch, EventType: req.Filter.EventType, Kind: req.Filter.Kind, Cursor: req.Cursor}
	for walked := 0; ; {
		dls, next, err := s.st.ListDead(ctx, opts)
		if err != nil {
			return err
		}
		for _, d := range dls {
			if reason := skip(d); reason != "" {
				res.skip(reason)
				continue
			}
			if err := res.count(act(ctx, s.cfg.Now(), d.Record.ID)); err != nil {
				return err
			}
		}
		walked += len(dls)
		if next == "" {
			return nil
		}
		if walked >= maxBulkWalk || time.Now().After(stopBy) {
			res.NextCursor = next
			return nil
		}
		opts.Cursor = next
	}
}

// readBulk reads and checks a bulk request, or answers 400 (413 past
// maxBulkBody) naming the field at fault.
func readBulk(c *gin.Context) (bulkRequest, bool) {
	var req bulkRequest
	body, berr := readBody(c.Writer, c.Request, maxBulkBody)
	if berr != nil {
		berr.respond(c)
		return req, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "body: not a JSON object of ids or filter: " + truncate(err.Error(), 200), "field": "body"})
		return req, false
	}
	bad := func(field, msg string) (bulkRequest, bool) {
		c.JSON(http.StatusBadRequest, gin.H{"error": field + ": " + msg, "field": field})
		return req, false
	}
	switch {
	case req.IDs != nil && req.Filter != nil:
		return bad("body", "give either ids or filter, not both")
	case req.IDs == nil && req.Filter == nil:
		return bad("body", "give ids or filter")
	case req.IDs != nil:
		if req.Cursor != "" {
			return bad("cursor", "only continues a filter")
		}
		if len(req.IDs) == 0 || len(req.IDs) > maxBulkIDs {
			return bad("ids", fmt.Sprintf("must name 1 to %d ids", maxBulkIDs))
		}
		for i, id := range req.IDs {
			if err := event.ValidateID(id); err != nil {
				return bad(fmt.Sprintf("ids[%d]", i), "not an event id")
			}
		}
	default:
		f := req.Filter
		if f.EventType != "" {
			if err := event.ValidateEventType(f.EventType); err != nil {
				return bad("filter.event_type", "not an event type")
			}
		}
		if f.Kind != "" && f.Kind != "event" && f.Kind != "callback" {
			return bad("filter.kind", `must be "event" or "callback"`)
		}
	}
	return req, true
}
