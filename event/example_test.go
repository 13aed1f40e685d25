package event_test

import (
	"encoding/json"
	"fmt"

	"github.com/boomerang-events/boomerang/event"
)

// UserCreatedPayload is the payload type of the original package's README.
type UserCreatedPayload struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

// An EventHandler's UnmarshalEventMessage can decode the base fields with a
// typed payload, exactly as the original event package documents.
func Example() {
	data := []byte(`{
  "event_type": "user_created",
  "timestamp": "2024-08-20T05:21:19.143357839Z",
  "payload": {
    "user_id": "12345",
    "username": "johndoe"
  },
  "metadata": {
    "source": "user_service",
    "version": "1.0"
  }
}`)
	msg, err := event.BaseEventMessageUnmarshaller[UserCreatedPayload](data)
	if err != nil {
		fmt.Println("decode:", err)
		return
	}
	fmt.Println("event type:", msg.GetEventType())
	fmt.Println("version:", msg.GetVersion())
	fmt.Println("username:", msg.GetPayload().Username)
	fmt.Println("user id:", msg.GetPayload().UserID)
	// Output:
	// event type: user_created
	// version: 1.0
	// username: johndoe
	// user id: 12345
}

func ExampleValidateEventType() {
	for _, s := range []string{"user_created", "billing.invoice:paid-v2", "user created", ""} {
		fmt.Printf("%q: %v\n", s, event.ValidateEventType(s))
	}
	// Output:
	// "user_created": <nil>
	// "billing.invoice:paid-v2": <nil>
	// "user created": event_type: has ' ' at byte 4; allowed are letters, digits and . _ : -
	// "": event_type: is required
}

func ExampleStatus() {
	data, _ := json.Marshal(map[string]event.Status{"status": event.StatusRetrying})
	fmt.Println(string(data))

	var s event.Status
	if err := json.Unmarshal([]byte(`"succeeded"`), &s); err != nil {
		fmt.Println("decode:", err)
		return
	}
	fmt.Println(s, s.Terminal())
	// Output:
	// {"status":"retrying"}
	// succeeded true
}

func ExampleDuplicateError() {
	err := &event.DuplicateError{ID: "evt-1", Status: event.StatusFailed, LastError: "upstream answered 500"}
	fmt.Println(err.HTTPStatus(), err)
	// Output:
	// 500 event evt-1 already failed: upstream answered 500
}
