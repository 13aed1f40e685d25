package client

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors, matched with errors.Is by the *APIError of the status
// they name.
var (
	// ErrNotFound is a 404: no event with that id (never accepted, or
	// deleted after the server's retention).
	ErrNotFound = errors.New("client: event not found")
	// ErrConflict is a 409: for Send, the id was already accepted with a
	// different body.
	ErrConflict = errors.New("client: conflict")
	// ErrUnauthorized is a 401: a missing or unknown API key.
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrUnavailable is a 503: the server's Redis did not answer in time.
	// For Send the outcome is unknown; Send retries it.
	ErrUnavailable = errors.New("client: server unavailable")
)

// APIError is an answer of the server that is not a success: its status
// and the {"error", "field"} it carried. errors.Is matches it with the
// sentinel of its status (ErrNotFound, ErrConflict, ErrUnauthorized,
// ErrUnavailable).
type APIError struct {
	// StatusCode is the HTTP status, such as 400.
	StatusCode int
	// Message is the server's "error", or the status text when the answer
	// had none.
	Message string
	// Field is the request field at fault, for a 400, such as
	// "event_type" or "callback.success_url"; "" when none is named.
	Field string
	// EventID is the id a 503 to POST /event names, to retry with.
	EventID string
}

func (e *APIError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.StatusCode, e.Message) }

// Is reports whether target is the sentinel of e's status.
func (e *APIError) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusServiceUnavailable:
		return target == ErrUnavailable
	}
	return false
}
