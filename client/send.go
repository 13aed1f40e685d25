package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/boomerang-events/boomerang/event"
)

// Result is what Send learnt of an event it sent.
type Result struct {
	// EventID is the event's id: the one it had, or the one Send gave it.
	// Set with an error too: sending the event again with it is safe.
	EventID string
	// Repeat reports a 200: the id was already accepted, with the same
	// body, and Record is its record; nothing runs again. False for a 202:
	// the event was accepted now. An event this Send recorded can still
	// be a Repeat when an earlier attempt's answer was lost (Attempts > 1).
	Repeat bool
	// Record is the stored record, for a Repeat; nil otherwise.
	Record *Record
	// StatusURL is the absolute URL of the event's record
	// (GET /callback?event_id=ID).
	StatusURL string
	// Attempts is the number of requests made.
	Attempts int
}

// Send sends ev to POST /event and returns once the server has recorded it
// (202), or recognised it as a repeat (200).
//
// An event without an ID gets one before the first request, so every retry
// (see RetryPolicy) carries the same id and the server records it at most
// once. The errors are an *APIError for an answer of the server: 400 names
// the field at fault (APIError.Field), 409 (ErrConflict) means the id was
// accepted with another body; with the call's ctx ended, its error; after
// MaxAttempts, the last attempt's.
func (c *Client) Send(ctx context.Context, ev Event) (Result, error) {
	if ev.ID == "" {
		ev.ID = event.NewID()
	}
	res := Result{EventID: ev.ID}
	body, err := json.Marshal(ev) // once: every attempt sends the same bytes
	if err != nil {
		return res, fmt.Errorf("client: send %s: %w", ev.ID, err)
	}
	res.Attempts, err = c.retry(ctx, func(ctx context.Context) (bool, time.Duration, error) {
		a, err := c.do(ctx, http.MethodPost, "/event", body, c.cfg.Timeout)
		if err != nil {
			return !transient(ctx, err), 0, err
		}
		switch a.status {
		case http.StatusAccepted:
			var acc struct {
				EventID   string `json:"event_id"`
				StatusURL string `json:"status_url"`
			}
			if err := a.decode(&acc, http.StatusAccepted); err != nil {
				return true, 0, err
			}
			res.EventID, res.Repeat, res.Record, res.StatusURL = acc.EventID, false, nil, c.base+acc.StatusURL
			return true, 0, nil
		case http.StatusOK:
			var rec Record
			if err := a.decode(&rec, http.StatusOK); err != nil {
				return true, 0, err
			}
			res.Repeat, res.Record, res.StatusURL = true, &rec, c.statusURL(ev.ID)
			return true, 0, nil
		}
		return !retryStatus(a.status), a.retryAfter, a.apiError()
	})
	if err != nil {
		return res, fmt.Errorf("client: send %s: %w", ev.ID, err)
	}
	return res, nil
}

// statusURL is the absolute URL of the record of event id.
func (c *Client) statusURL(id string) string {
	return c.base + "/callback?event_id=" + url.QueryEscape(id)
}

// ItemResult is the outcome of one event of a batch.
type ItemResult struct {
	// EventID is the event's id: the one it had, or the one SendBatch
	// gave it. Always set.
	EventID string
	// Status is what POST /event would have answered for the event
	// alone: 202 (accepted now), 200 (a repeat, see Record), 400, 409 or
	// 413. A 503, or 0 when no answer named the event, means its outcome
	// is still unknown when SendBatch gave up: send it again (safe).
	Status int
	// Record is the stored record, for a 200.
	Record *Record
	// StatusURL is the absolute URL of the event's record, for a 202 or a
	// 200.
	StatusURL string
	// Err is nil for a 202 or a 200. Otherwise it is the item's *APIError
	// (its Field names the field at fault for a 400), or for an event
	// never answered, the error of SendBatch.
	Err error
}

// batchItem is one result of POST /events.
type batchItem struct {
	Status    int     `json:"status"`
	EventID   string  `json:"event_id"`
	StatusURL string  `json:"status_url"`
	Event     *Record `json:"event"`
	Error     string  `json:"error"`
	Field     string  `json:"field"`
}

// SendBatch sends evs to POST /events in one request and returns one
// result per event, in order. The server records the valid ones together;
// the events are independent, so an invalid one refuses only itself (its
// result's Err). The server takes at most its max_batch_events (default
// 500) in one batch; SendBatch does not split a larger one (the request is
// then refused with a 413).
//
// As with Send, events without an ID get one first, so retries are safe.
// What is retried follows the RetryPolicy: after a 503 whose results mark
// some events 503, only those events are sent again (the others are
// decided); after a transport error, a 502, a 504 or a 503 without
// results, every undecided event is. The error is nil when every event is
// decided (accepted, a repeat, or refused on its own); otherwise it says
// why the rest is not, and their results carry it.
func (c *Client) SendBatch(ctx context.Context, evs []Event) ([]ItemResult, error) {
	results := make([]ItemResult, len(evs))
	items := make([][]byte, len(evs)) // each event's JSON, the same on every attempt
	pending := make([]int, len(evs))  // the undecided events, by index
	for i, ev := range evs {
		if ev.ID == "" {
			ev.ID = event.NewID()
		}
		results[i].EventID = ev.ID
		b, err := json.Marshal(ev)
		if err != nil {
			return results, fmt.Errorf("client: send batch: event %d (%s): %w", i, ev.ID, err)
		}
		items[i], pending[i] = b, i
	}
	if len(evs) == 0 {
		return results, nil
	}
	_, err := c.retry(ctx, func(ctx context.Context) (bool, time.Duration, error) {
		a, err := c.do(ctx, http.MethodPost, "/events", jsonArray(items, pending), c.cfg.Timeout)
		if err != nil {
			return !transient(ctx, err), 0, err
		}
		var out struct {
			Results []batchItem `json:"results"`
		}
		if a.status == http.StatusOK || a.status == http.StatusServiceUnavailable {
			if json.Unmarshal(a.body, &out) == nil && len(out.Results) == len(pending) {
				var still []int
				for j, i := range pending {
					results[i] = c.itemResult(results[i].EventID, out.Results[j])
					if out.Results[j].Status == http.StatusServiceUnavailable {
						still = append(still, i)
					}
				}
				pending = still
				if len(pending) == 0 {
					return true, 0, nil
				}
				return false, a.retryAfter, fmt.Errorf("%d of %d events undecided: %w", len(pending), len(evs), a.apiError())
			}
			if a.status == http.StatusOK {
				return true, 0, fmt.Errorf("HTTP 200: %d results for %d events", len(out.Results), len(pending))
			}
		}
		return !retryStatus(a.status), a.retryAfter, a.apiError()
	})
	if err != nil {
		err = fmt.Errorf("client: send batch: %w", err)
		for _, i := range pending {
			if results[i].Err == nil {
				results[i].Err = err
			}
		}
		return results, err
	}
	return results, nil
}

// itemResult is the result of event id from its item of a batch's answer.
func (c *Client) itemResult(id string, it batchItem) ItemResult {
	if it.EventID != "" {
		id = it.EventID
	}
	r := ItemResult{EventID: id, Status: it.Status}
	switch it.Status {
	case http.StatusAccepted:
		r.StatusURL = c.base + it.StatusURL
	case http.StatusOK:
		r.Record, r.StatusURL = it.Event, c.statusURL(id)
	default:
		msg := it.Error
		if msg == "" {
			msg = http.StatusText(it.Status)
		}
		r.Err = &APIError{StatusCode: it.Status, Message: msg, Field: it.Field, EventID: it.EventID}
	}
	return r
}

// jsonArray is the JSON array of the items at the indexes of at.
func jsonArray(items [][]byte, at []int) []byte {
	n := 2
	for _, i := range at {
		n += len(items[i]) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for j, i := range at {
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, items[i]...)
	}
	return append(b, ']')
}
