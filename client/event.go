package client

import (
	"encoding/json"
	"time"
)

// Event is an event as POST /event takes it. Every field but EventType is
// optional, and a zero field is left out of the request, so a server that
// does not know a newer field (OrderingKey, DeliverAt, Delay, Callback's
// Method and Format) is never sent it unless it is set.
type Event struct {
	// ID is the event's id: 1 to 128 letters, digits and ._:-. Empty:
	// Send generates one (event.NewID) before its first request, so its
	// retries are recognised as repeats.
	ID string `json:"id,omitempty"`
	// EventType chooses the business logic that runs the event.
	EventType string `json:"event_type"`
	// Timestamp is when the event happened, as the producer says; sent as
	// RFC 3339 when not zero.
	Timestamp time.Time `json:"timestamp,omitzero"`
	// Payload is any value encoding/json encodes (a json.RawMessage is
	// sent as it is), passed to the business logic as sent.
	Payload any `json:"payload,omitempty"`
	// Metadata is string metadata, kept with the event.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Callback says where the outcome is sent; nil for none (the record
	// is then only polled, with Get or Wait).
	Callback *Callback `json:"callback,omitempty"`
	// OrderingKey, when set, asks the server to run the events of one key
	// one at a time, in order (ordering_key).
	OrderingKey string `json:"ordering_key,omitempty"`
	// DeliverAt, when not zero, asks the server to run the event no
	// sooner than then (deliver_at).
	DeliverAt time.Time `json:"deliver_at,omitzero"`
	// Delay, when not zero, asks the server to run the event that long
	// after it is accepted (delay, sent as a Go duration such as "30s").
	Delay time.Duration `json:"-"`
}

// Callback is where, and optionally how, an event's outcome is sent.
type Callback struct {
	// SuccessURL receives the outcome of an event that succeeded.
	SuccessURL string `json:"success_url,omitempty"`
	// FailURL receives the outcome of an event that failed.
	FailURL string `json:"fail_url,omitempty"`
	// Method is "GET" or "POST". Empty: as the server says (POST).
	Method string `json:"method,omitempty"`
	// Format is "json" or "cloudevents". Empty: as the server says (json).
	Format string `json:"format,omitempty"`
}

// MarshalJSON encodes the event as POST /event takes it, with Delay as a
// duration string.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // the fields, without this method
	var delay string
	if e.Delay != 0 {
		delay = e.Delay.String()
	}
	return json.Marshal(struct {
		plain
		Delay string `json:"delay,omitempty"`
	}{plain(e), delay})
}
