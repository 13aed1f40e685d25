package client

import "time"

// Status is where an event is in its life, as the API spells it. It is a
// string, not an event.Status, so that a client keeps reading the records
// of a newer server whose statuses it does not know.
type Status string

// The statuses of an event.
const (
	StatusQueued     Status = "queued"     // accepted, waiting for a worker
	StatusProcessing Status = "processing" // a worker runs it
	StatusRetrying   Status = "retrying"   // an attempt failed; the next one is scheduled
	StatusSucceeded  Status = "succeeded"  // the business logic succeeded (terminal)
	StatusFailed     Status = "failed"     // a permanent error, or retries spent (terminal)
	StatusCanceled   Status = "canceled"   // canceled before it finished (terminal)
)

// Terminal reports whether s is final: succeeded, failed or canceled.
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// CallbackStatus is where an event's callback is in its delivery.
type CallbackStatus string

// The statuses of a callback.
const (
	CallbackNone      CallbackStatus = "none"      // no callback URL: the record is polled
	CallbackPending   CallbackStatus = "pending"   // waiting for the outcome, or for its first delivery
	CallbackRetrying  CallbackStatus = "retrying"  // a delivery failed; the next one is scheduled
	CallbackDelivered CallbackStatus = "delivered" // the receiver answered 2xx (terminal)
	CallbackFailed    CallbackStatus = "failed"    // the delivery policy is spent (terminal)
)

// Record is an event's record, as GET /callback?event_id=ID answers it.
type Record struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Status    Status `json:"status"`
	// Attempts is the number of attempts started.
	Attempts int `json:"attempts"`
	// LastError is the last attempt's error; "" when none failed.
	LastError  string    `json:"last_error"`
	AcceptedAt time.Time `json:"accepted_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// NextAttemptAt is when a retrying event runs again; zero otherwise.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	// CompletedAt is when the event reached a terminal status; zero before.
	CompletedAt time.Time     `json:"completed_at,omitzero"`
	Callback    CallbackState `json:"callback"`
	// TraceID is the W3C trace id of the event's trace; "" for none.
	TraceID string `json:"trace_id,omitempty"`
}

// CallbackState is the delivery state of an event's callback.
type CallbackState struct {
	// ID is the webhook-id of its deliveries; "" before the outcome.
	ID     string         `json:"id,omitempty"`
	URL    string         `json:"url,omitempty"`
	Status CallbackStatus `json:"status"`
	// Attempts is the number of deliveries tried.
	Attempts           int       `json:"attempts"`
	LastResponseStatus int       `json:"last_response_status,omitempty"`
	LastError          string    `json:"last_error,omitempty"`
	NextAttemptAt      time.Time `json:"next_attempt_at,omitzero"`
	DeliveredAt        time.Time `json:"delivered_at,omitzero"`
}
