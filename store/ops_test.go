package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// finishAs claims event id and records status for it, with a callback
// record in cbStatus (0: none written).
func finishAs(t *testing.T, s *store.Redis, now time.Time, id string, status event.Status, cbStatus event.CallbackStatus) {
	t.Helper()
	jobs := claim(t, s, now, 1)
	if len(jobs) != 1 || jobs[0].ID != id {
		t.Fatalf("claim: got %+v, want %s", jobs, id)
	}
	rec := jobs[0].Record
	rec.Status, rec.CompletedAt = status, now
	if status == event.StatusFailed {
		rec.LastError = "boom"
	}
	out := store.Outcome{Lease: jobs[0].Lease, Record: rec}
	if cbStatus != 0 {
		out.Callback = &store.Callback{ID: "cb-" + id, EventID: id, URL: "http://example.com/cb", Status: cbStatus, QueuedAt: now, EventStatus: status}
		if cbStatus == event.CallbackNone {
			out.Callback.URL = ""
		}
	}
	if errs, err := s.Events().Finish(context.Background(), now, []store.Outcome{out}); err != nil || errs[0] != nil {
		t.Fatalf("finish %s: %v %v", id, errs, err)
	}
}

// failCallback claims and fails the delivery of id's callback.
func failCallback(t *testing.T, s *store.Redis, now time.Time, id string) {
	t.Helper()
	cj, _, err := s.Callbacks().Claim(context.Background(), now, lease, 1)
	if err != nil || len(cj) != 1 || cj[0].ID != id {
		t.Fatalf("claim callback: %+v %v", cj, err)
	}
	cb := cj[0].Callback
	cb.Status, cb.LastError = event.CallbackFailed, "receiver answered 500"
	if errs, err := s.Callbacks().Finish(context.Background(), now, []store.CallbackOutcome{{Lease: cj[0].Lease, Callback: cb}}); err != nil || errs[0] != nil {
		t.Fatalf("finish callback: %v %v", errs, err)
	}
}

func deadIDs(t *testing.T, s *store.Redis, opts store.DeadOptions) map[string]string {
	t.Helper()
	dls, _, err := s.ListDead(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, d := range dls {
		out[d.Record.ID] = d.Kind
	}
	return out
}

func TestDeadLetters(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		enqueue(t, s, t0, "ok")
		finishAs(t, s, t0, "ok", event.StatusSucceeded, event.CallbackPending)
		enqueue(t, s, t0, "bad")
		finishAs(t, s, t0, "bad", event.StatusFailed, event.CallbackNone)
		failCallback(t, s, t0, "ok")

		got := deadIDs(t, s, store.DeadOptions{})
		if len(got) != 2 || got["bad"] != "event" || got["ok"] != "callback" {
			t.Fatalf("dead letters: got %v, want bad (event) and ok (callback)", got)
		}
		if got := deadIDs(t, s, store.DeadOptions{EventType: "other"}); len(got) != 0 {
			t.Errorf("filter by another event type: got %v, want none", got)
		}
		for kind, want := range map[string]string{"event": "bad", "callback": "ok"} {
			if got := deadIDs(t, s, store.DeadOptions{Kind: kind}); len(got) != 1 || got[want] != kind {
				t.Errorf("filter by kind %s: got %v, want only %s", kind, got, want)
			}
		}
	})
}

func TestRetryFailedEvent(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "e1")
		finishAs(t, s, t0, "e1", event.StatusFailed, event.CallbackNone)

		queued, err := s.Retry(ctx, t0.Add(time.Second), "e1")
		if err != nil || !queued {
			t.Fatalf("retry: got %v, %v; want queued", queued, err)
		}
		snap := get(t, s, "e1")
		if r := snap.Record; r.Status != event.StatusQueued || r.Run != 2 || r.Attempts != 0 || r.LastError != "" {
			t.Errorf("after retry: got %s run %d attempts %d %q, want queued run 2, 0 attempts", r.Status, r.Run, r.Attempts, r.LastError)
		}
		if h := snap.Record.History; len(h) == 0 || h[len(h)-1].Note == "" {
			t.Errorf("history: got %+v, want the retry noted", h)
		}
		if got := deadIDs(t, s, store.DeadOptions{}); len(got) != 0 {
			t.Errorf("dead letters after retry: got %v, want none", got)
		}
		// Asking again while it waits changes nothing.
		if queued, err := s.Retry(ctx, t0.Add(time.Second), "e1"); err != nil || queued {
			t.Errorf("second retry: got %v, %v; want not queued, no error", queued, err)
		}
		jobs := claim(t, s, t0.Add(time.Second), 10)
		if len(jobs) != 1 || jobs[0].Attempt != 1 || jobs[0].Record.Run != 2 {
			t.Fatalf("claim the new run: got %+v, want attempt 1 of run 2", jobs)
		}

		enqueue(t, s, t0, "fine")
		finishAs(t, s, t0, "fine", event.StatusSucceeded, event.CallbackNone)
		if _, err := s.Retry(ctx, t0, "fine"); !errors.Is(err, store.ErrSucceeded) {
			t.Errorf("retry a success: got %v, want ErrSucceeded", err)
		}
		if _, err := s.Retry(ctx, t0, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("retry unknown: got %v, want ErrNotFound", err)
		}
		enqueue(t, s, t0, "cbbusy")
		finishAs(t, s, t0, "cbbusy", event.StatusFailed, event.CallbackPending)
		if _, err := s.Retry(ctx, t0, "cbbusy"); !errors.Is(err, store.ErrBusy) {
			t.Errorf("retry while its callback is pending: got %v, want ErrBusy", err)
		}
	})
}

func TestRedeliver(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "e1")
		finishAs(t, s, t0, "e1", event.StatusSucceeded, event.CallbackPending)
		if queued, err := s.Redeliver(ctx, t0, "e1"); err != nil || queued {
			t.Fatalf("redeliver while pending: got %v, %v; want nothing done", queued, err)
		}
		failCallback(t, s, t0, "e1")

		queued, err := s.Redeliver(ctx, t0.Add(time.Minute), "e1")
		if err != nil || !queued {
			t.Fatalf("redeliver: got %v, %v; want queued", queued, err)
		}
		cb := get(t, s, "e1").Callback
		if cb.Status != event.CallbackPending || cb.Attempts != 0 || cb.ID != "cb-e1" || !cb.QueuedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after redeliver: got %+v, want pending, 0 attempts, same id, queued now", cb)
		}
		if got := deadIDs(t, s, store.DeadOptions{}); len(got) != 0 {
			t.Errorf("dead letters: got %v, want none", got)
		}
		cj, _, err := s.Callbacks().Claim(ctx, t0.Add(time.Minute), lease, 1)
		if err != nil || len(cj) != 1 || cj[0].Attempt != 1 {
			t.Fatalf("claim redelivery: got %+v %v, want attempt 1", cj, err)
		}

		enqueue(t, s, t0, "quiet")
		finishAs(t, s, t0, "quiet", event.StatusSucceeded, event.CallbackNone)
		if _, err := s.Redeliver(ctx, t0, "quiet"); !errors.Is(err, store.ErrNoCallback) {
			t.Errorf("redeliver without url: got %v, want ErrNoCallback", err)
		}
	})
}

func TestSweep(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		week := 7 * 24 * time.Hour
		enqueue(t, s, t0, "old-done")
		finishAs(t, s, t0, "old-done", event.StatusFailed, event.CallbackNone)
		enqueue(t, s, t0, "old-running") // still queued: kept however old
		enqueue(t, s, t0.Add(week), "young")

		n, err := s.Sweep(ctx, t0.Add(week+time.Hour), week)
		if err != nil || n != 1 {
			t.Fatalf("sweep: got %d, %v; want 1 deleted", n, err)
		}
		if _, err := s.Get(ctx, "old-done"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("old-done: got %v, want deleted", err)
		}
		if _, err := s.Body(ctx, "old-done"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("old-done body: got %v, want deleted", err)
		}
		if got := deadIDs(t, s, store.DeadOptions{}); len(got) != 0 {
			t.Errorf("dead letters: got %v, want the swept one gone", got)
		}
		for _, id := range []string{"old-running", "young"} {
			get(t, s, id)
		}
		// Once deleted, the id is new again.
		errs, err := s.Enqueue(ctx, t0.Add(week+time.Hour), []store.NewEvent{newEvent("old-done")})
		if err != nil || errs[0] != nil {
			t.Errorf("re-enqueue after retention: %v %v", errs, err)
		}
	})
}
