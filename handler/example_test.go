package handler_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/gin-gonic/gin"
)

type UserCreatedPayload struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

func MyBusinessLogic(ctx *gin.Context, msg event.EventMessage[UserCreatedPayload]) error {
	payload := msg.GetPayload()

	// Process the event
	fmt.Printf("User created: %s with ID %s\n", payload.Username, payload.UserID)

	// Return nil on success, or an error if something goes wrong
	return nil
}

// The original event package's README, with only the import paths
// changed: the callback-aware event handler keeps the event in Redis, and an
// engine on the same store delivers its outcome to the callback URL.
func ExampleNewGinEventHandler() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := boomerang.New(boomerang.Config{Callback: boomerang.CallbackConfig{AllowPrivateNetworks: true}, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Close()

	received := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		received <- string(body)
	}))
	defer receiver.Close()

	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- eng.Run(ctx) }()
	defer func() { stop(); <-ran }()

	// Initialize EventHandler
	eventHandler := callback.NewEventHandler[UserCreatedPayload](eng.Store(), callback.WithAllowPrivateNetworks(true))

	gin.SetMode(gin.ReleaseMode)
	router := gin.New()

	// Create the Gin handler
	ginHandler := handler.NewGinEventHandler(MyBusinessLogic, eventHandler)

	// Register the route with the Gin router
	router.POST("/event", ginHandler)

	body := `{
	  "id": "evt-42",
	  "event_type": "user_created",
	  "timestamp": "2024-08-20T05:21:19.143357839Z",
	  "payload": {"user_id": "12345", "username": "johndoe"},
	  "metadata": {"source": "user_service", "version": "1.0"},
	  "callback": {"success_url": "` + receiver.URL + `/ok", "fail_url": "` + receiver.URL + `/failed"}
	}`
	w := httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(body)))
	fmt.Println(w.Code, w.Body.String())

	select {
	case cb := <-received:
		fmt.Println(strings.Contains(cb, `"event_id":"evt-42"`), strings.Contains(cb, `"status":"succeeded"`))
	case <-time.After(5 * time.Second):
		log.Fatal("no callback")
	}

	// A repeat of the id does not run the business logic again.
	w = httptest.NewRecorder()
	router.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(body)))
	fmt.Println(w.Code, w.Body.String())

	// Output:
	// User created: johndoe with ID 12345
	// 200 {"status":"success"}
	// true true
	// 200 {"duplicate":true,"event_id":"evt-42","status":"success"}
}
