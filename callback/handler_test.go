package callback_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/store"
)

type payload struct {
	Username string `json:"username"`
}

func TestEventHandler(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
		eh := callback.NewEventHandler[payload](st, callback.WithAllowPrivateNetworks(true))
		// The request's trace (otelgin's span) goes on with the callback.
		const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		ctx := tracing.Restore(context.Background(), parent, "")
		body := []byte(`{"id":"u1","event_type":"user_created","payload":{"username":"jo"},
			"callback":{"success_url":"http://127.0.0.1:9/ok","fail_url":"http://127.0.0.1:9/fail"}}`)

		msg, err := eh.UnmarshalEventMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := eh.BeforeHandle(ctx, msg); err != nil {
			t.Fatalf("BeforeHandle: %v", err)
		}
		// While the first request runs, a repeat is refused with 409.
		again, _ := eh.UnmarshalEventMessage(body)
		var dup *event.DuplicateError
		if err := eh.BeforeHandle(ctx, again); !errors.As(err, &dup) || dup.HTTPStatus() != 409 {
			t.Fatalf("repeat while running: got %v, want a 409 DuplicateError", err)
		}
		attempts := []event.Attempt{{Number: 1, StartedAt: time.Now(), Err: errors.New("flaky")}, {Number: 2, StartedAt: time.Now()}}
		if err := eh.AfterHandle(event.ContextWithAttempts(ctx, attempts), msg, nil); err != nil {
			t.Fatalf("AfterHandle: %v", err)
		}
		snap, err := st.Get(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if snap.Record.Status != event.StatusSucceeded || snap.Record.Attempts != 2 || len(snap.Record.History) != 2 {
			t.Errorf("record: got %s, %d attempts, history %d; want succeeded, 2, 2", snap.Record.Status, snap.Record.Attempts, len(snap.Record.History))
		}
		if snap.Callback == nil || snap.Callback.Status != event.CallbackPending || snap.Callback.URL != "http://127.0.0.1:9/ok" {
			t.Fatalf("callback: got %+v, want pending to the success url", snap.Callback)
		}
		if cb := snap.Callback; cb.EventID != "u1" || cb.EventStatus != event.StatusSucceeded || cb.EventAttempts != 2 || cb.EventType != "user_created" {
			t.Errorf("callback outcome: got %+v", cb)
		}
		if got := snap.Callback.TraceParent; got != parent {
			t.Errorf("callback trace parent: got %q, want the request's %q", got, parent)
		}

		tests := []struct {
			name     string
			body     string
			wantCode int
		}{
			{"same body after success", string(body), 200},
			{"other body", `{"id":"u1","event_type":"user_created","payload":{"username":"other"}}`, 409},
			{"bad event type", `{"event_type":"no spaces allowed"}`, 400},
			{"metadata address callback", `{"event_type":"a","callback":{"success_url":"http://169.254.169.254/"}}`, 400},
			// The engine's queue features: refused in the request.
			{"ordering key", `{"event_type":"a","ordering_key":"k"}`, 400},
			{"deliver_at", `{"event_type":"a","deliver_at":"2030-01-01T00:00:00Z"}`, 400},
			{"delay", `{"event_type":"a","delay":"1m"}`, 400},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				// The server's parser validates in UnmarshalEventMessage;
				// the store decides in BeforeHandle.
				m, err := eh.UnmarshalEventMessage([]byte(tc.body))
				if err == nil {
					err = eh.BeforeHandle(ctx, m)
				}
				var hs interface{ HTTPStatus() int }
				if !errors.As(err, &hs) || hs.HTTPStatus() != tc.wantCode {
					t.Errorf("got %v, want an error answering %d", err, tc.wantCode)
				}
			})
		}
	})
}

func TestEventHandlerStoreDown(t *testing.T) {
	b := redistest.Mini(t)
	st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
	eh := callback.NewEventHandler[payload](st)
	b.Mini.Close()
	msg, _ := eh.UnmarshalEventMessage([]byte(`{"event_type":"a"}`))
	err := eh.BeforeHandle(context.Background(), msg)
	var hs interface{ HTTPStatus() int }
	if !errors.As(err, &hs) || hs.HTTPStatus() != 503 {
		t.Errorf("got %v, want an error answering 503", err)
	}
}

// Redis going down between BeforeHandle and AfterHandle answers 503, and the
// lease left behind lets a repeat of the request take the event over.
func TestEventHandlerStoreDownAfterRun(t *testing.T) {
	b := redistest.Mini(t)
	st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
	eh := callback.NewEventHandler[payload](st, callback.WithLease(time.Second))
	ctx := context.Background()
	body := []byte(`{"id":"down-1","event_type":"a"}`)
	msg, _ := eh.UnmarshalEventMessage(body)
	if err := eh.BeforeHandle(ctx, msg); err != nil {
		t.Fatal(err)
	}
	b.Mini.Close()
	err := eh.AfterHandle(ctx, msg, nil)
	var hs interface{ HTTPStatus() int }
	if !errors.As(err, &hs) || hs.HTTPStatus() != 503 {
		t.Fatalf("AfterHandle with Redis down: got %v, want an error answering 503", err)
	}
	if err := b.Mini.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the 1s in-request lease
	again, _ := eh.UnmarshalEventMessage(body)
	if err := eh.BeforeHandle(ctx, again); err != nil {
		t.Fatalf("repeat after the lease expired: got %v, want it taken over", err)
	}
	if err := eh.AfterHandle(ctx, again, nil); err != nil {
		t.Fatalf("AfterHandle of the repeat: %v", err)
	}
	if snap, err := st.Get(ctx, "down-1"); err != nil || snap.Record.Status != event.StatusSucceeded || snap.Record.Attempts != 2 {
		t.Errorf("got %+v, %v; want succeeded at attempt 2", snap.Record, err)
	}
}

// AfterHandle needs the message BeforeHandle leased: another message, or
// one whose outcome was recorded already, is refused and records nothing.
func TestAfterHandleNeedsBeforeHandle(t *testing.T) {
	b := redistest.Mini(t)
	st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
	eh := callback.NewEventHandler[payload](st)
	ctx := context.Background()
	msg, err := eh.UnmarshalEventMessage([]byte(`{"id":"a1","event_type":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := eh.AfterHandle(ctx, msg, nil); err == nil {
		t.Fatal("AfterHandle before BeforeHandle: got nil, want an error")
	}
	if err := eh.BeforeHandle(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if err := eh.AfterHandle(ctx, msg, nil); err != nil {
		t.Fatalf("AfterHandle: %v", err)
	}
	if err := eh.AfterHandle(ctx, msg, errors.New("late")); err == nil {
		t.Fatal("second AfterHandle: got nil, want an error")
	}
	if snap, err := st.Get(ctx, "a1"); err != nil || snap.Record.Status != event.StatusSucceeded {
		t.Errorf("got %+v, %v; want the first outcome, succeeded", snap.Record, err)
	}
	other := &event.BaseEventMessage[payload]{EventType: "a"}
	if err := eh.BeforeHandle(ctx, other); err == nil {
		t.Error("BeforeHandle of a message not from UnmarshalEventMessage's type: got nil, want an error")
	}
}
