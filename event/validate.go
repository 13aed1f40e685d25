package event

import (
	"errors"
	"fmt"
)

// MaxNameLen is the longest event type or event id accepted.
const MaxNameLen = 128

// FieldError is a validation failure of one field of an event.
type FieldError struct {
	Field string // the JSON name of the field, such as "event_type"
	Msg   string // what is wrong with it
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// ErrInvalid is matched by every *FieldError with errors.Is.
var ErrInvalid = errors.New("event: invalid event")

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// ValidateEventType checks an event type: 1 to 128 characters of ASCII
// letters, digits, '.', '_', ':' and '-'.
func ValidateEventType(s string) error { return validateName("event_type", s) }

// ValidateID checks an event id with the same rule as ValidateEventType.
func ValidateID(s string) error { return validateName("id", s) }

// ValidateOrderingKey checks an event's ordering_key: 1 to MaxNameLen
// letters, digits and . _ : -, as an id.
func ValidateOrderingKey(s string) error { return validateName("ordering_key", s) }

func validateName(field, s string) error {
	if s == "" {
		return &FieldError{Field: field, Msg: "is required"}
	}
	if len(s) > MaxNameLen {
		return &FieldError{Field: field, Msg: fmt.Sprintf("must be at most %d characters, got %d", MaxNameLen, len(s))}
	}
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return &FieldError{Field: field, Msg: fmt.Sprintf("has %q at byte %d; allowed are letters, digits and . _ : -", s[i], i)}
		}
	}
	return nil
}

func nameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '.', c == '_', c == ':', c == '-':
		return true
	}
	return false
}

// HTTPStatus is 400: a field error is the client's to mend.
func (e *FieldError) HTTPStatus() int { return 400 }
