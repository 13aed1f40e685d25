package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/client"
	"github.com/boomerang-events/boomerang/event"
)

type UserCreated struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

// exampleServer starts a Boomerang server in the process (embedded Redis)
// that runs "user_created" events: they succeed, unless the username is
// empty. In production the client talks to the server's URL instead.
func exampleServer() (url string, stop func()) {
	srv, stopServer, err := startBoomerang(testConfig(), func(eng *boomerang.Engine) error {
		return boomerang.Handle(eng, "user_created", func(ctx context.Context, msg event.EventMessage[UserCreated]) error {
			if msg.GetPayload().Username == "" {
				return boomerang.Permanent(errors.New("username is required"))
			}
			return nil
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	return srv.URL, func() {
		if err := stopServer(); err != nil {
			log.Fatal(err)
		}
	}
}

// Send an event, then the same event again: the repeat is recognised, and
// nothing runs twice. Wait for its outcome.
func Example_send() {
	baseURL, stop := exampleServer()
	defer stop()

	c, err := client.New(baseURL, client.Config{}) // APIKey: "...", when the server asks for one
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ev := client.Event{
		ID:        "user-12345-created", // optional: Send makes one when it is empty
		EventType: "user_created",
		Payload:   UserCreated{UserID: "12345", Username: "johndoe"},
		Metadata:  map[string]string{"source": "user_service"},
	}
	res, err := c.Send(ctx, ev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.EventID, "repeat:", res.Repeat)

	res, err = c.Send(ctx, ev)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.EventID, "repeat:", res.Repeat)

	rec, err := c.Wait(ctx, res.EventID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Status, "after", rec.Attempts, "attempt")
	// Output:
	// user-12345-created repeat: false
	// user-12345-created repeat: true
	// succeeded after 1 attempt
}

// The errors of Send say what the server refused.
func ExampleClient_Send_errors() {
	baseURL, stop := exampleServer()
	defer stop()
	c, err := client.New(baseURL, client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	_, err = c.Send(ctx, client.Event{EventType: "user created"})
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Field)
	}

	c.Send(ctx, client.Event{ID: "user-1", EventType: "user_created", Payload: UserCreated{Username: "ann"}})
	_, err = c.Send(ctx, client.Event{ID: "user-1", EventType: "user_created", Payload: UserCreated{Username: "bob"}})
	fmt.Println(errors.Is(err, client.ErrConflict))
	// Output:
	// 400 event_type
	// true
}

// Wait returns once the event has succeeded or failed.
func ExampleClient_Wait() {
	baseURL, stop := exampleServer()
	defer stop()
	c, err := client.New(baseURL, client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	res, err := c.Send(ctx, client.Event{EventType: "user_created", Payload: UserCreated{UserID: "1"}})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := c.Wait(ctx, res.EventID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Status, rec.LastError)
	// Output:
	// failed username is required
}

// A batch gets one result per event, in order; an invalid event refuses
// only itself.
func ExampleClient_SendBatch() {
	baseURL, stop := exampleServer()
	defer stop()
	c, err := client.New(baseURL, client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	results, err := c.SendBatch(context.Background(), []client.Event{
		{EventType: "user_created", Payload: UserCreated{Username: "ann"}},
		{EventType: "user created"},
		{EventType: "user_created", Payload: UserCreated{Username: "bob"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Println(r.Status, r.Err)
	}
	// Output:
	// 202 <nil>
	// 400 HTTP 400: event_type: has ' ' at byte 4; allowed are letters, digits and . _ : -
	// 202 <nil>
}

// A callback receiver verifies the signature of each callback with the
// server's signing secret, then reads the outcome.
func ExampleVerifyCallback() {
	baseURL, stop := exampleServer() // its callback.signing_secrets: [secret]
	defer stop()

	outcomes := make(chan *client.CallbackPayload, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := client.VerifyCallback(r, secret)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized) // Boomerang does not retry a 401
			return
		}
		outcomes <- p // drop redeliveries by p.WebhookID
	}))
	defer receiver.Close()

	c, err := client.New(baseURL, client.Config{})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Send(context.Background(), client.Event{
		ID:        "user-7-created",
		EventType: "user_created",
		Payload:   UserCreated{UserID: "7", Username: "jane"},
		Callback:  &client.Callback{SuccessURL: receiver.URL, FailURL: receiver.URL},
	})
	if err != nil {
		log.Fatal(err)
	}
	select {
	case p := <-outcomes:
		fmt.Println(p.EventID, p.EventType, p.Status, p.Attempts, p.WebhookID)
	case <-time.After(10 * time.Second):
		log.Fatal("no callback")
	}
	// Output:
	// user-7-created user_created succeeded 1 cb_user-7-created_1
}
