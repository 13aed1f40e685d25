package boomerang_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/event"
)

type UserCreatedPayload struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

// An engine on the embedded Redis with typed business logic: the event is
// accepted (202), the logic runs with retries, and the outcome is POSTed to
// the event's callback URL.
func Example() {
	eng, err := boomerang.New(boomerang.Config{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Callback: boomerang.CallbackConfig{AllowPrivateNetworks: true}, // the receiver below is on loopback
	})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	boomerang.Handle(eng, "user_created", func(ctx context.Context, msg event.EventMessage[UserCreatedPayload]) error {
		p := msg.GetPayload()
		if p.Username == "" {
			return boomerang.Permanent(errors.New("username is required"))
		}
		fmt.Printf("User created: %s with ID %s\n", p.Username, p.UserID)
		return nil
	}, boomerang.WithTimeout(5*time.Second))

	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- eng.Run(ctx) }()
	defer func() { stop(); <-ran }()

	callbacks := make(chan map[string]any, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cb map[string]any
		json.NewDecoder(r.Body).Decode(&cb)
		callbacks <- cb
	}))
	defer receiver.Close()
	api := httptest.NewServer(eng.Handler())
	defer api.Close()

	resp, err := http.Post(api.URL+"/event", "application/json", strings.NewReader(`{
	  "id": "evt-1",
	  "event_type": "user_created",
	  "payload": {"user_id": "12345", "username": "johndoe"},
	  "callback": {"success_url": "`+receiver.URL+`", "fail_url": "`+receiver.URL+`"}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	select {
	case cb := <-callbacks: // the logic has run by now
		fmt.Println(resp.Status)
		fmt.Println(cb["event_id"], cb["status"], cb["attempts"])
	case <-time.After(10 * time.Second):
		log.Fatal("no callback")
	}
	// Output:
	// User created: johndoe with ID 12345
	// 202 Accepted
	// evt-1 succeeded 1
}
