package event

import "fmt"

// Status is where an event is in its life:
//
//	queued → processing → succeeded
//	processing → retrying → processing
//	processing → failed
//	queued → canceled (by DELETE /events/{id}, before it started)
type Status uint8

// The statuses of an event. The zero Status is not valid.
const (
	StatusQueued     Status = iota + 1 // accepted, waiting for a worker
	StatusProcessing                   // a worker holds its lease and runs it
	StatusRetrying                     // an attempt failed; the next one is scheduled
	StatusSucceeded                    // the business logic succeeded (terminal)
	StatusFailed                       // a permanent error or retries exhausted (terminal)
	StatusCanceled                     // canceled before it started (terminal)
)

var statusNames = [...]string{
	StatusQueued:     "queued",
	StatusProcessing: "processing",
	StatusRetrying:   "retrying",
	StatusSucceeded:  "succeeded",
	StatusFailed:     "failed",
	StatusCanceled:   "canceled",
}

// String returns the status as it appears in the API, such as "queued".
func (s Status) String() string {
	if s == 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("Status(%d)", s)
	}
	return statusNames[s]
}

// Terminal reports whether the status is final (succeeded, failed or
// canceled).
func (s Status) Terminal() bool {
	return s == StatusSucceeded || s == StatusFailed || s == StatusCanceled
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) {
	if s == 0 || int(s) >= len(statusNames) {
		return nil, fmt.Errorf("event: invalid status %d", s)
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Status) UnmarshalText(text []byte) error {
	v, err := ParseStatus(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseStatus returns the Status named name, such as "failed".
func ParseStatus(name string) (Status, error) {
	for i, n := range statusNames {
		if i > 0 && n == name {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("event: unknown status %q", name)
}

// CallbackStatus is where an event's callback is in its delivery.
type CallbackStatus uint8

// The statuses of a callback. The zero CallbackStatus is not valid.
const (
	CallbackNone      CallbackStatus = iota + 1 // no callback URL: poll only
	CallbackPending                             // queued for its first delivery
	CallbackRetrying                            // a delivery failed; the next one is scheduled
	CallbackDelivered                           // the receiver answered 2xx (terminal)
	CallbackFailed                              // the delivery policy is exhausted (terminal)
)

var callbackStatusNames = [...]string{
	CallbackNone:      "none",
	CallbackPending:   "pending",
	CallbackRetrying:  "retrying",
	CallbackDelivered: "delivered",
	CallbackFailed:    "failed",
}

// String returns the status as it appears in the API, such as "delivered".
func (s CallbackStatus) String() string {
	if s == 0 || int(s) >= len(callbackStatusNames) {
		return fmt.Sprintf("CallbackStatus(%d)", s)
	}
	return callbackStatusNames[s]
}

// MarshalText implements encoding.TextMarshaler.
func (s CallbackStatus) MarshalText() ([]byte, error) {
	if s == 0 || int(s) >= len(callbackStatusNames) {
		return nil, fmt.Errorf("event: invalid callback status %d", s)
	}
	return []byte(callbackStatusNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *CallbackStatus) UnmarshalText(text []byte) error {
	for i, n := range callbackStatusNames {
		if i > 0 && n == string(text) {
			*s = CallbackStatus(i)
			return nil
		}
	}
	return fmt.Errorf("event: unknown callback status %q", text)
}
