// Package event holds the event message model and the lifecycle interface of
// an event handler, compatible with the original event package: a message
// with a typed payload (EventMessage, BaseEventMessage), its JSON decoding
// (BaseEventMessageUnmarshaller) and the BeforeHandle/AfterHandle hooks around
// the business logic (EventHandler). It also names the statuses an event and
// its callback go through, the ways a callback can be sent (CallbackMethod,
// CallbackFormat), and the validation rules of event fields.
//
// It depends on the standard library only.
package event

import (
	"encoding/json"
	"time"
)

// Well-known metadata keys.
const (
	// MetadataKeyVersion names the version of the event's schema.
	MetadataKeyVersion = "version"
	// MetadataKeySource names the service that produced the event.
	MetadataKeySource = "source"
)

// EventMessage is an event whose payload has type T.
type EventMessage[T any] interface {
	// GetVersion returns the metadata's version, or "".
	GetVersion() string
	// GetEventType returns the event's type, such as "user_created".
	GetEventType() string
	// GetTimestamp returns when the producer says the event happened.
	GetTimestamp() time.Time
	// GetPayload returns the event's data.
	GetPayload() T
	// GetMetadata returns the event's metadata; it may be nil.
	GetMetadata() map[string]string
}

// BaseEventMessage is the JSON form of an event:
//
//	{"event_type": "user_created", "timestamp": "2024-08-20T05:21:19Z",
//	 "payload": {...}, "metadata": {"source": "user_service", "version": "1.0"}}
type BaseEventMessage[T any] struct {
	EventType string            `json:"event_type"`
	Timestamp time.Time         `json:"timestamp"`
	Payload   T                 `json:"payload"`
	Metadata  map[string]string `json:"metadata"`
}

// GetVersion returns the metadata's version, or "".
func (m *BaseEventMessage[T]) GetVersion() string { return m.Metadata[MetadataKeyVersion] }

// GetEventType returns the event's type.
func (m *BaseEventMessage[T]) GetEventType() string { return m.EventType }

// GetTimestamp returns when the producer says the event happened.
func (m *BaseEventMessage[T]) GetTimestamp() time.Time { return m.Timestamp }

// GetPayload returns the event's data.
func (m *BaseEventMessage[T]) GetPayload() T { return m.Payload }

// GetMetadata returns the event's metadata; it may be nil.
func (m *BaseEventMessage[T]) GetMetadata() map[string]string { return m.Metadata }

// BaseEventMessageUnmarshaller decodes data into a *BaseEventMessage[T]. It is
// the UnmarshalEventMessage of a handler that needs nothing but the base
// fields.
func BaseEventMessageUnmarshaller[T any](data []byte) (EventMessage[T], error) {
	var msg BaseEventMessage[T]
	if err := json.Unmarshal(data, &msg); err != nil {
		return nil, err
	}
	return &msg, nil
}
