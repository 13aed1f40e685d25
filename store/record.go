package store

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/boomerang-events/boomerang/event"
)

// Record is the state of one event, everything but its body.
type Record struct {
	ID        string       `json:"id"`
	EventType string       `json:"event_type"`
	Status    event.Status `json:"status"`
	// Run counts the runs of the event: 1, and one more for every retry an
	// operator asked for after it failed.
	Run int `json:"run"`
	// Attempts counts the attempts of the current run started, the one
	// running included.
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// BodyHash identifies the accepted body, so that a repeat of the id
	// with another body can be refused.
	BodyHash   string `json:"body_hash"`
	SuccessURL string `json:"success_url,omitempty"`
	FailURL    string `json:"fail_url,omitempty"`
	// CallbackMethod and CallbackFormat are how the event asked for its
	// callback to be sent (its callback.method and callback.format); empty
	// when it did not ask, and its route or the server's default decides.
	CallbackMethod event.CallbackMethod `json:"callback_method,omitempty"`
	CallbackFormat event.CallbackFormat `json:"callback_format,omitempty"`
	// TraceParent and TraceState are the W3C trace context the event was
	// accepted in (the span of its POST /event, a child of the producer's
	// traceparent): whichever instance runs an attempt continues this
	// trace. Empty when the producer sent none and tracing is off. They
	// are not part of the body, so the body and its hash do not change.
	TraceParent string `json:"trace_parent,omitempty"`
	TraceState  string `json:"trace_state,omitempty"`
	// OrderingKey, when set, puts the event in its key's sequence: it
	// starts only once the event accepted before it with the same key has
	// reached a terminal status.
	OrderingKey string `json:"ordering_key,omitempty"`

	AcceptedAt     time.Time `json:"accepted_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	FirstAttemptAt time.Time `json:"first_attempt_at,omitzero"`
	NextAttemptAt  time.Time `json:"next_attempt_at,omitzero"`
	CompletedAt    time.Time `json:"completed_at,omitzero"`
	// DeliverAt is when the event was scheduled to run first (deliver_at
	// or delay); zero for at once.
	DeliverAt time.Time `json:"deliver_at,omitzero"`

	// History lists the finished attempts, oldest first, at most
	// MaxHistory of them (the newest).
	History []Attempt `json:"history,omitempty"`
}

// MaxHistory bounds the attempts kept in a Record's or a Callback's history.
const MaxHistory = 50

// Attempt is one finished run of an event's business logic.
type Attempt struct {
	Run       int           `json:"run,omitempty"`
	Number    int           `json:"attempt"`
	StartedAt time.Time     `json:"started_at"`
	Duration  time.Duration `json:"duration_ns"`
	// Outcome is StatusSucceeded, StatusRetrying (another attempt is
	// scheduled) or StatusFailed.
	Outcome event.Status `json:"outcome"`
	Error   string       `json:"error,omitempty"`
	// Note says why an entry that is not an attempt is there, such as an
	// operator's retry.
	Note string `json:"note,omitempty"`
}

// AddAttempt appends a to the record's history, dropping the oldest entry
// past MaxHistory.
func (r *Record) AddAttempt(a Attempt) {
	r.History = appendBounded(r.History, a)
}

// CallbackURL returns the URL the record's outcome is sent to: SuccessURL
// when it succeeded, FailURL when it failed, "" otherwise.
func (r *Record) CallbackURL() string {
	switch r.Status {
	case event.StatusSucceeded:
		return r.SuccessURL
	case event.StatusFailed:
		return r.FailURL
	}
	return ""
}

// Callback is the callback record of an event's terminal outcome: what is
// sent, where, and how its delivery went. There is one per outcome; its ID
// is the webhook-id of every delivery.
type Callback struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	URL     string `json:"url,omitempty"`
	// Method and Format are the event's Record.CallbackMethod and
	// CallbackFormat: empty unless the event asked. Each delivery resolves
	// them against its route's and the server's (callback.Dispatcher).
	Method event.CallbackMethod `json:"method,omitempty"`
	Format event.CallbackFormat `json:"format,omitempty"`
	Status event.CallbackStatus `json:"status"`
	// Attempts counts the deliveries started.
	Attempts           int    `json:"attempts"`
	LastResponseStatus int    `json:"last_response_status,omitempty"`
	LastError          string `json:"last_error,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	// QueuedAt is when the current delivery run was queued: at creation,
	// or when an operator asked for a redelivery. The delivery policy's
	// elapsed time counts from it.
	QueuedAt      time.Time `json:"queued_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`

	// The outcome the callback reports, sent as its JSON body.
	EventType     string       `json:"event_type"`
	EventStatus   event.Status `json:"event_status,omitzero"`
	EventAttempts int          `json:"event_attempts"`
	EventError    string       `json:"event_error,omitempty"`
	CompletedAt   time.Time    `json:"completed_at"`
	// EventAcceptedAt is when the event was accepted, so a delivery knows
	// the event's end-to-end latency. Not sent. Zero in records written
	// before it existed.
	EventAcceptedAt time.Time `json:"event_accepted_at"`
	// TraceParent and TraceState are the event's trace context (its
	// Record's), which every delivery continues and sends as its
	// traceparent header.
	TraceParent string `json:"trace_parent,omitempty"`
	TraceState  string `json:"trace_state,omitempty"`
	// History lists the finished deliveries, oldest first.
	History []Delivery `json:"history,omitempty"`
}

// Delivery is one finished attempt to deliver a callback.
type Delivery struct {
	Number         int                  `json:"attempt"`
	StartedAt      time.Time            `json:"started_at"`
	Duration       time.Duration        `json:"duration_ns"`
	ResponseStatus int                  `json:"response_status,omitempty"`
	Outcome        event.CallbackStatus `json:"outcome"`
	Error          string               `json:"error,omitempty"`
	Note           string               `json:"note,omitempty"`
}

// AddDelivery appends d to the callback's history, dropping the oldest entry
// past MaxHistory.
func (c *Callback) AddDelivery(d Delivery) {
	c.History = appendBounded(c.History, d)
}

func appendBounded[T any](s []T, v T) []T {
	s = append(s, v)
	if len(s) > MaxHistory {
		s = append(s[:0], s[len(s)-MaxHistory:]...)
	}
	return s
}

// HashBody returns the BodyHash of an event body.
func HashBody(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}
