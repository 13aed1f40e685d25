package boomerang_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// An event of an accept route is settled at ingest: its record is
// succeeded and its callback queued as soon as POST /event answers, before
// any worker runs, and the callback goes out once the engine runs. An
// event of another route waits for the workers.
func TestAcceptSettlesAtIngest(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		eng := newEngine(t, testConfig(b))
		recv := fakes.NewReceiver(t)
		if err := eng.Accept("signup"); err != nil {
			t.Fatal(err)
		}
		if err := eng.Forward("order", recv.URL+"/forward"); err != nil {
			t.Fatal(err)
		}
		cb := `"callback":{"success_url":"` + recv.URL + `/ok","fail_url":"` + recv.URL + `/fail"}`
		if code, _ := post(t, eng.Handler(), `{"id":"a1","event_type":"signup",`+cb+`}`); code != http.StatusAccepted {
			t.Fatalf("POST signup: got %d, want 202", code)
		}
		if code, _ := post(t, eng.Handler(), `{"id":"o1","event_type":"order",`+cb+`}`); code != http.StatusAccepted {
			t.Fatalf("POST order: got %d, want 202", code)
		}
		ctx := context.Background()
		snap, err := eng.Store().Get(ctx, "a1")
		if err != nil || snap.Record.Status != event.StatusSucceeded || snap.Record.Attempts != 1 || len(snap.Record.History) != 1 ||
			snap.Callback == nil || snap.Callback.Status != event.CallbackPending {
			t.Fatalf("a1 before Run: got %+v / %+v (%v), want succeeded in 1 attempt with its callback pending", snap.Record, snap.Callback, err)
		}
		if snap, err := eng.Store().Get(ctx, "o1"); err != nil || snap.Record.Status != event.StatusQueued {
			t.Fatalf("o1 before Run: got %+v (%v), want queued for the workers", snap.Record, err)
		}
		// Only o1 is due for the workers; a1's callback is due for delivery.
		if n, err := eng.Store().Due(ctx, time.Now()); err != nil || n != 2 {
			t.Fatalf("due before Run: got %d (%v), want 2 (o1, and a1's callback)", n, err)
		}

		// A repeat of a1 is answered as a repeat, and is not settled again.
		if code, body := post(t, eng.Handler(), `{"id":"a1","event_type":"signup",`+cb+`}`); code != http.StatusOK {
			t.Fatalf("repeat of a1: got %d %v, want 200", code, body)
		}

		start(t, eng)
		got := map[string]bool{}
		for _, c := range recv.WaitFor(t, 3, 10*time.Second) { // o1's forward, then the two callbacks
			if c.Path == "/ok" {
				got[c.Body.EventID] = true
			}
		}
		if !got["a1"] || !got["o1"] {
			t.Fatalf("callbacks at /ok: got %v, want a1 and o1", got)
		}
		snap = waitFor(t, eng.Store(), "a1", func(s store.Snapshot) bool { return s.Callback != nil && s.Callback.Status == event.CallbackDelivered })
		if snap.Callback.Attempts != 1 {
			t.Errorf("a1's callback: got %d deliveries, want 1", snap.Callback.Attempts)
		}
	})
}
