package handler

import (
	"encoding/json"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/store"
)

// recordView is an event as GET /callback and GET /events/{id} show it.
type recordView struct {
	EventID       string       `json:"event_id"`
	EventType     string       `json:"event_type"`
	Status        event.Status `json:"status"`
	Attempts      int          `json:"attempts"`
	LastError     string       `json:"last_error"`
	AcceptedAt    time.Time    `json:"accepted_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
	NextAttemptAt time.Time    `json:"next_attempt_at,omitzero"`
	CompletedAt   time.Time    `json:"completed_at,omitzero"`
	// DeliverAt is when the event was scheduled to run (deliver_at, delay).
	DeliverAt time.Time `json:"deliver_at,omitzero"`
	// OrderingKey is the event's ordering key; WaitingFor, of a queued
	// event of one, the event before it that it waits for (the head of the
	// key's sequence), in GET /callback?event_id and GET /events/{id}.
	OrderingKey string `json:"ordering_key,omitempty"`
	WaitingFor  string `json:"waiting_for,omitempty"`
	// Waiting says why the due event waits for the destination of its
	// forward route (breaker open, rate limit, a target's pause).
	Waiting  *store.Waiting `json:"waiting,omitempty"`
	Callback callbackView   `json:"callback"`
	// TraceID is the trace the event belongs to (of the producer's
	// traceparent, or of the span of its POST /event); "" when it has none.
	TraceID string `json:"trace_id,omitempty"`
	// Payload is the event's payload as accepted, in GET /events/{id} only.
	Payload json.RawMessage `json:"payload,omitempty"`
	History []attemptView   `json:"history,omitempty"`
}

type callbackView struct {
	ID                 string               `json:"id,omitempty"`
	URL                string               `json:"url,omitempty"`
	Status             event.CallbackStatus `json:"status"`
	Attempts           int                  `json:"attempts"`
	LastResponseStatus int                  `json:"last_response_status,omitempty"`
	LastError          string               `json:"last_error,omitempty"`
	NextAttemptAt      time.Time            `json:"next_attempt_at,omitzero"`
	DeliveredAt        time.Time            `json:"delivered_at,omitzero"`
	// Waiting says why a due delivery waits for its destination's flow
	// control (breaker open, in-flight cap, rate limit, a receiver's pause).
	Waiting *store.Waiting `json:"waiting,omitempty"`
	History []deliveryView `json:"history,omitempty"`
}

type attemptView struct {
	Attempt    int          `json:"attempt"`
	StartedAt  time.Time    `json:"started_at"`
	DurationMS float64      `json:"duration_ms"`
	Outcome    event.Status `json:"outcome"`
	Error      string       `json:"error,omitempty"`
}

type deliveryView struct {
	Attempt        int                  `json:"attempt"`
	StartedAt      time.Time            `json:"started_at"`
	DurationMS     float64              `json:"duration_ms"`
	ResponseStatus int                  `json:"response_status,omitempty"`
	Outcome        event.CallbackStatus `json:"outcome"`
	Error          string               `json:"error,omitempty"`
}

// newView returns the view of snap, with the attempt histories when
// withHistory is set.
func newView(snap store.Snapshot, withHistory bool) recordView {
	r := snap.Record
	v := recordView{
		EventID: r.ID, EventType: r.EventType, Status: r.Status, Attempts: r.Attempts, LastError: r.LastError,
		AcceptedAt: r.AcceptedAt, UpdatedAt: r.UpdatedAt, NextAttemptAt: r.NextAttemptAt, CompletedAt: r.CompletedAt,
		DeliverAt: r.DeliverAt, OrderingKey: r.OrderingKey,
		Waiting: snap.EventWaiting, TraceID: tracing.TraceID(r.TraceParent),
	}
	switch cb := snap.Callback; {
	case cb != nil:
		v.Callback = callbackView{
			ID: cb.ID, URL: cb.URL, Status: cb.Status, Attempts: cb.Attempts, LastResponseStatus: cb.LastResponseStatus,
			LastError: cb.LastError, NextAttemptAt: cb.NextAttemptAt, DeliveredAt: cb.DeliveredAt, Waiting: snap.Waiting,
		}
	case r.SuccessURL != "" || r.FailURL != "":
		v.Callback.Status = event.CallbackPending // waiting for the outcome
	default:
		v.Callback.Status = event.CallbackNone
	}
	if !withHistory {
		return v
	}
	for _, a := range r.History {
		v.History = append(v.History, attemptView{Attempt: a.Number, StartedAt: a.StartedAt, DurationMS: ms(a.Duration), Outcome: a.Outcome, Error: a.Error})
	}
	if cb := snap.Callback; cb != nil {
		for _, d := range cb.History {
			v.Callback.History = append(v.Callback.History, deliveryView{Attempt: d.Number, StartedAt: d.StartedAt, DurationMS: ms(d.Duration),
				ResponseStatus: d.ResponseStatus, Outcome: d.Outcome, Error: d.Error})
		}
	}
	return v
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
