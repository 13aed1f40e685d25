package event

import "fmt"

// CallbackMethod is the HTTP method of a callback's deliveries.
type CallbackMethod string

// The methods of a callback. The empty CallbackMethod leaves the choice to
// a less specific level (the event's route, then the server's default,
// CallbackPOST).
const (
	// CallbackPOST sends the outcome as the request's body.
	CallbackPOST CallbackMethod = "POST"
	// CallbackGET sends the outcome as the query parameters event_id,
	// status and attempts, with no body, as the original package's
	// receivers expect.
	CallbackGET CallbackMethod = "GET"
)

// CallbackFormat is the body of a callback's POST deliveries.
type CallbackFormat string

// The formats of a callback. The empty CallbackFormat leaves the choice to
// a less specific level, as for CallbackMethod; the default is
// CallbackJSON.
const (
	// CallbackJSON is the outcome as a JSON object (application/json).
	CallbackJSON CallbackFormat = "json"
	// CallbackCloudEvents is the same object as the data of a CloudEvents
	// 1.0 event in structured mode (application/cloudevents+json).
	CallbackCloudEvents CallbackFormat = "cloudevents"
)

// CheckCallback validates how a callback is asked to be delivered: method
// "", GET or POST; format "", json or cloudevents; and not GET with
// cloudevents, since a GET carries no body. The error is a *FieldError
// naming callback.method or callback.format.
func CheckCallback(method CallbackMethod, format CallbackFormat) error {
	switch method {
	case "", CallbackPOST, CallbackGET:
	default:
		return &FieldError{Field: "callback.method", Msg: fmt.Sprintf("must be GET or POST, got %q", truncate(string(method), 32))}
	}
	switch format {
	case "", CallbackJSON, CallbackCloudEvents:
	default:
		return &FieldError{Field: "callback.format", Msg: fmt.Sprintf("must be json or cloudevents, got %q", truncate(string(format), 32))}
	}
	if method == CallbackGET && format == CallbackCloudEvents {
		return &FieldError{Field: "callback.format", Msg: "cloudevents needs method POST: a GET callback has no body"}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
