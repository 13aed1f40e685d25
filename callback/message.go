// Package callback holds what Boomerang sends back when an event's outcome is
// final: the callback-aware event message (CallbackEventMessage,
// CallbackInfo), the callback record written with the outcome (NewRecord),
// the callback-aware event handler for library users (NewEventHandler), and
// the delivery of callbacks with retries (Dispatcher).
package callback

import (
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/wire"
	"github.com/boomerang-events/boomerang/store"
)

// CallbackEventMessage is an event message that names where its outcome is
// sent, and optionally its own id:
//
//	{"id": "evt-1", "event_type": "user_created", ..., "callback":
//	 {"success_url": "http://...", "fail_url": "http://..."}}
type CallbackEventMessage[T any] struct {
	event.BaseEventMessage[T]
	// ID is the event's client-chosen id; NewEventHandler's BeforeHandle
	// sets a generated one when it is empty.
	ID       string        `json:"id,omitempty"`
	Callback *CallbackInfo `json:"callback"`

	accepted *store.NewEvent // as parsed by UnmarshalEventMessage
	job      *store.Job      // the lease BeforeHandle took, for AfterHandle
}

// CallbackInfo names the URLs an event's outcome is sent to and,
// optionally, how.
type CallbackInfo struct {
	SuccessURL string `json:"success_url"`
	FailURL    string `json:"fail_url"`
	// Method and Format are how the outcome is sent. Empty: as the event
	// type's route, or else the server's configuration, says (default
	// POST and json).
	Method event.CallbackMethod `json:"method,omitempty"`
	Format event.CallbackFormat `json:"format,omitempty"`
}

// GetCallback returns the message's callback URLs; it may be nil.
func (m *CallbackEventMessage[T]) GetCallback() *CallbackInfo { return m.Callback }

// GetID returns the message's event id.
func (m *CallbackEventMessage[T]) GetID() string { return m.ID }

// SetID sets the message's event id.
func (m *CallbackEventMessage[T]) SetID(id string) { m.ID = id }

// Check validates c as POST /event does: its URLs, allowing loopback and
// private addresses only when allowPrivate is set (link-local and metadata
// addresses never), each set URL passing the outbound policy's CheckURL;
// then its method and format (event.CheckCallback). The error is an
// *event.FieldError naming the field at fault, such as
// callback.success_url.
func (c *CallbackInfo) Check(allowPrivate bool) error {
	if err := wire.CheckCallbackURLs(outbound.Policy{AllowPrivate: allowPrivate}, c.SuccessURL, c.FailURL); err != nil {
		return err
	}
	return event.CheckCallback(c.Method, c.Format)
}
