// Command engine runs Boomerang's queued engine inside your own service: the
// API (POST /event answers 202 once the event is in Redis), workers that run
// a typed Go function with retries scheduled in Redis, callback delivery,
// reaping and retention, and a graceful shutdown. Several copies can share
// one Redis.
//
//	go run ./example/engine           # embedded Redis; REDIS_URL=redis://... for a real one
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/event"
)

// UserCreatedPayload is the payload of a user_created event.
type UserCreatedPayload struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

// createUser is the business logic: an error is retried with backoff, one
// marked boomerang.Permanent fails the event at once.
func createUser(ctx context.Context, msg event.EventMessage[UserCreatedPayload]) error {
	p := msg.GetPayload()
	if p.Username == "" {
		return boomerang.Permanent(errors.New("username is required"))
	}
	log.Printf("User created: %s with ID %s", p.Username, p.UserID)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	eng, err := boomerang.New(boomerang.Config{RedisURL: os.Getenv("REDIS_URL"), Callback: boomerang.CallbackConfig{AllowPrivateNetworks: true}})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	if err := boomerang.Handle(eng, "user_created", createUser, boomerang.WithTimeout(5*time.Second)); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: "127.0.0.1:8082", Handler: eng.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	if err := eng.Run(ctx); err != nil { // until SIGINT or SIGTERM; then drains
		log.Fatal(err)
	}
	srv.Shutdown(context.Background()) // requests in flight finish
}
