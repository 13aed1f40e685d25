package callback

import (
	"encoding/json"
	"strconv"
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

// NewRecord returns the callback record of rec's terminal outcome: pending
// delivery to the URL the outcome calls for, or with status none when the
// event has no such URL. Its ID, the webhook-id of every delivery, is unique
// to this outcome: the event's id and its run.
func NewRecord(rec store.Record) *store.Callback {
	body, _ := json.Marshal(Payload{ // cannot fail: plain fields, valid status
		EventID:     rec.ID,
		EventType:   rec.EventType,
		Status:      rec.Status,
		Attempts:    rec.Attempts,
		Error:       rec.LastError,
		CompletedAt: rec.CompletedAt,
	})
	cb := &store.Callback{
		ID:        "cb_" + rec.ID + "_" + strconv.Itoa(max(rec.Run, 1)),
		EventID:   rec.ID,
		URL:       rec.CallbackURL(),
		Status:    event.CallbackPending,
		CreatedAt: rec.CompletedAt,
		QueuedAt:  rec.CompletedAt,
		UpdatedAt: rec.CompletedAt,
		Body:      body,
	}
	if cb.URL == "" {
		cb.Status = event.CallbackNone
	}
	return cb
}
