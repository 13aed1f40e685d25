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
