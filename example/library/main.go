// Command library is the original event package's README, running on
// Boomerang: the same payload type, business function and
// handler.NewGinEventHandler call, with only the import paths changed. The
// callback-aware event handler records every event in Redis, makes repeats
// of an id idempotent, and hands the outcome to a Dispatcher that POSTs it
// to the event's callback URL with retries.
//
//	go run ./example/library          # embedded Redis; REDIS_URL=redis://... for a real one
//
// then POST the README's event (see example/README.md).
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
	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/gin-gonic/gin"
)

// UserCreatedPayload is the payload of a user_created event.
type UserCreatedPayload struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

// MyBusinessLogic processes a user_created event.
func MyBusinessLogic(ctx *gin.Context, msg event.EventMessage[UserCreatedPayload]) error {
	payload := msg.GetPayload()

	// Process the event
	log.Printf("User created: %s with ID %s", payload.Username, payload.UserID)

	// Return nil on success, or an error if something goes wrong
	return nil
}

// CallbackHandler receives the callbacks of this example's events.
func CallbackHandler(ctx *gin.Context) {
	log.Printf("Received callback: %s %s (webhook-id %s)", ctx.Request.Method, ctx.Request.RequestURI, ctx.GetHeader("webhook-id"))
	ctx.JSON(http.StatusOK, gin.H{"message": "Callback received successfully"})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The engine keeps the events in Redis (REDIS_URL; empty: an embedded
	// in-memory one), delivers their callbacks and reaps the events of
	// requests that died. The example's callbacks go to itself, on loopback.
	eng, err := boomerang.New(boomerang.Config{RedisURL: os.Getenv("REDIS_URL"), KeyPrefix: "example",
		Callback: boomerang.CallbackConfig{AllowPrivateNetworks: true}})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()
	done := make(chan error)
	go func() { done <- eng.Run(ctx) }()

	eventHandler := callback.NewEventHandler[UserCreatedPayload](eng.Store(), callback.WithAllowPrivateNetworks(true))

	router := gin.Default()

	// Create the Gin handler
	ginHandler := handler.NewGinEventHandler(MyBusinessLogic, eventHandler)

	// Register the route with the Gin router
	router.POST("/event", ginHandler)

	// Optionally, register a route to handle callbacks
	router.GET("/callback", CallbackHandler)
	router.POST("/callback", CallbackHandler)

	srv := &http.Server{Addr: "127.0.0.1:8081", Handler: router, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("listening on http://%s", srv.Addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	if err := <-done; err != nil { // the engine drains its deliveries in flight
		log.Fatal(err)
	}
}
