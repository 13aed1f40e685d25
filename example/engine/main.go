// Command engine runs Boomerang's queued engine inside your own Gin
// service: the server's API (POST /event answers 202 once the event is in
// Redis), workers that run a typed Go function with retries scheduled in
// Redis, and callback delivery. Several copies can share one Redis.
//
//	go run ./example/engine           # embedded Redis; REDIS_URL=redis://... for a real one
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/store"
	"github.com/cenkalti/backoff/v4"
	"github.com/gin-gonic/gin"
)

// UserCreatedPayload is the payload of a user_created event.
type UserCreatedPayload struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

// createUser is the business logic. An error is retried with backoff; one
// marked backoff.Permanent fails the event at once.
func createUser(ctx context.Context, msg event.EventMessage[UserCreatedPayload]) error {
	p := msg.GetPayload()
	if p.Username == "" {
		return backoff.Permanent(errors.New("username is required"))
	}
	log.Printf("User created: %s with ID %s", p.Username, p.UserID)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	conn, err := store.Open(os.Getenv("REDIS_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	st, err := store.New(conn, store.Config{Prefix: "engine-example"})
	if err != nil {
		log.Fatal(err)
	}
	dispatcher, err := callback.NewDispatcher(st, callback.Config{AllowPrivateNetworks: true})
	if err != nil {
		log.Fatal(err)
	}
	proc, err := handler.NewProcessor(st, []handler.Route{
		{EventType: "user_created", Logic: handler.Typed(createUser), Timeout: 5 * time.Second},
		{EventType: "*", Logic: handler.Accept()},
	}, handler.ProcessorConfig{OnCallback: dispatcher.Notify})
	if err != nil {
		log.Fatal(err)
	}
	api := handler.NewServer(st, handler.ServerConfig{AllowPrivateCallbacks: true, OnEnqueue: proc.Notify})
	defer api.Close()

	router := gin.Default()
	api.Register(router) // POST /event, GET /callback, POST /callback, GET /events/:id, /healthz, /readyz
	router.GET("/hello", func(c *gin.Context) { c.String(http.StatusOK, "your own routes live here too\n") })

	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { proc.Run(work) })
	wg.Go(func() { dispatcher.Run(work) })

	srv := &http.Server{Addr: "127.0.0.1:8082", Handler: router, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	fmt.Printf("listening on http://%s\n", srv.Addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	stopWork() // workers finish what they run, and give the rest back to Redis
	wg.Wait()
}
