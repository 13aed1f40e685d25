package callback

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/store"
)

// Payload is the JSON body of a callback: the event's terminal outcome.
type Payload struct {
	EventID     string       `json:"event_id"`
	EventType   string       `json:"event_type"`
	Status      event.Status `json:"status"`
	Attempts    int          `json:"attempts"`
	Error       string       `json:"error,omitempty"`
	CompletedAt time.Time    `json:"completed_at"`
}

// NewRecord returns the callback record of rec's terminal outcome, pending
// delivery to the URL the outcome calls for, or nil when the event has no
// such URL (it is then only polled). Its ID, the webhook-id of every
// delivery, is unique to this outcome: the event's id and its run.
func NewRecord(rec store.Record) *store.Callback {
	url := rec.CallbackURL()
	if url == "" {
		return nil
	}
	return &store.Callback{
		ID:            "cb_" + rec.ID + "_" + strconv.Itoa(max(rec.Run, 1)),
		EventID:       rec.ID,
		URL:           url,
		Method:        rec.CallbackMethod,
		Format:        rec.CallbackFormat,
		Status:        event.CallbackPending,
		CreatedAt:     rec.CompletedAt,
		QueuedAt:      rec.CompletedAt,
		UpdatedAt:     rec.CompletedAt,
		EventType:     rec.EventType,
		EventStatus:   rec.Status,
		EventAttempts: rec.Attempts,
		EventError:    rec.LastError,
		CompletedAt:   rec.CompletedAt,

		EventAcceptedAt: rec.AcceptedAt,
		TraceParent:     rec.TraceParent,
		TraceState:      rec.TraceState,
	}
}

// body returns the JSON a delivery of cb sends: the same bytes for every
// delivery of one callback.
func body(cb *store.Callback) ([]byte, error) {
	return json.Marshal(Payload{
		EventID:     cb.EventID,
		EventType:   cb.EventType,
		Status:      cb.EventStatus,
		Attempts:    cb.EventAttempts,
		Error:       cb.EventError,
		CompletedAt: cb.CompletedAt,
	})
}

// outcomeQuery returns raw, the query of a callback URL, with the outcome
// of cb added for a GET delivery: event_id, status (succeeded or failed)
// and attempts. The URL's own parameters are kept as written, in their
// order, but for any of those three names: the receiver reads one value of
// each, Boomerang's.
func outcomeQuery(raw string, cb *store.Callback) string {
	var kept []string
	for _, p := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(p, "=")
		if name, err := url.QueryUnescape(k); p == "" || err == nil && (name == "event_id" || name == "status" || name == "attempts") {
			continue
		}
		kept = append(kept, p)
	}
	outcome := url.Values{"event_id": {cb.EventID}, "status": {cb.EventStatus.String()}, "attempts": {strconv.Itoa(cb.EventAttempts)}}
	return strings.Join(append(kept, outcome.Encode()), "&")
}
