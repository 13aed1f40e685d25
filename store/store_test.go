package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const lease = 30 * time.Second

func newStore(t *testing.T, b redistest.Backend) *store.Redis {
	t.Helper()
	s, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newEvent(id string) store.NewEvent {
	return store.NewEvent{
		Record: store.Record{ID: id, EventType: "user_created", BodyHash: "h-" + id, SuccessURL: "http://example.com/ok"},
		Body:   []byte(`{"id":"` + id + `"}`),
	}
}

func enqueue(t *testing.T, s *store.Redis, now time.Time, ids ...string) {
	t.Helper()
	evs := make([]store.NewEvent, len(ids))
	for i, id := range ids {
		evs[i] = newEvent(id)
	}
	errs, err := s.Enqueue(context.Background(), now, evs)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Enqueue %s: %v", ids[i], err)
		}
	}
}

func claim(t *testing.T, s *store.Redis, now time.Time, n int) []store.Job {
	t.Helper()
	jobs, _, err := s.Events().Claim(context.Background(), now, lease, n)
	if err != nil {
		t.Fatalf("ClaimEvents: %v", err)
	}
	return jobs
}

func get(t *testing.T, s *store.Redis, id string) store.Snapshot {
	t.Helper()
	snap, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return snap
}

func TestEnqueue(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		errs, err := s.Enqueue(ctx, t0, []store.NewEvent{newEvent("a"), newEvent("b"), newEvent("a")})
		if err != nil {
			t.Fatal(err)
		}
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("new events: got %v, want nil errors", errs[:2])
		}
		var dup *store.DuplicateError
		if !errors.As(errs[2], &dup) || dup.Record.BodyHash != "h-a" {
			t.Fatalf("same id twice in a batch: got %v, want DuplicateError with the first record", errs[2])
		}

		errs, err = s.Enqueue(ctx, t0.Add(time.Second), []store.NewEvent{newEvent("a")})
		if err != nil {
			t.Fatal(err)
		}
		if !errors.As(errs[0], &dup) || dup.Record.Status != event.StatusQueued || !dup.Record.AcceptedAt.Equal(t0) {
			t.Fatalf("repeat: got %v, want DuplicateError with the queued record accepted at t0", errs[0])
		}

		snap := get(t, s, "a")
		if snap.Record.Status != event.StatusQueued || snap.Record.Attempts != 0 || snap.Callback != nil {
			t.Errorf("got %+v, want queued, 0 attempts, no callback", snap)
		}
		body, err := s.Body(ctx, "a")
		if err != nil || string(body) != `{"id":"a"}` {
			t.Errorf("Body: got %q, %v", body, err)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get unknown: got %v, want ErrNotFound", err)
		}
		if jobs := claim(t, s, t0, 10); len(jobs) != 2 {
			t.Errorf("claim: got %d jobs, want 2 (the duplicate is not queued twice)", len(jobs))
		}
	})
}

func TestClaimLeasesAndFences(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "e1")

		jobs := claim(t, s, t0, 10)
		if len(jobs) != 1 || jobs[0].ID != "e1" || jobs[0].Attempt != 1 || string(jobs[0].Body) != `{"id":"e1"}` {
			t.Fatalf("first claim: got %+v, want e1 attempt 1 with its body", jobs)
		}
		first := jobs[0]
		if got := get(t, s, "e1").Record; got.Status != event.StatusProcessing || got.Attempts != 1 {
			t.Errorf("while leased: got %s attempts %d, want processing 1", got.Status, got.Attempts)
		}
		if jobs, next, _ := s.Events().Claim(ctx, t0.Add(time.Second), lease, 10); len(jobs) != 0 || !next.Equal(t0.Add(lease)) {
			t.Fatalf("claim while leased: got %d jobs, next %v; want none, next at the lease deadline", len(jobs), next)
		}

		// The lease expires: another worker takes the event over.
		later := t0.Add(lease + time.Millisecond)
		jobs = claim(t, s, later, 10)
		if len(jobs) != 1 || jobs[0].Attempt != 2 || jobs[0].Token == first.Token {
			t.Fatalf("claim after expiry: got %+v, want attempt 2 with a new token", jobs)
		}
		second := jobs[0]

		done := func(j store.Job, status event.Status) error {
			rec := j.Record
			rec.Status = status
			errs, err := s.Events().Finish(ctx, later, []store.Outcome{{Lease: j.Lease, Record: rec}})
			if err != nil {
				t.Fatal(err)
			}
			return errs[0]
		}
		if err := done(first, event.StatusSucceeded); !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("finish with the expired lease: got %v, want ErrLeaseLost", err)
		}
		if got := get(t, s, "e1").Record.Status; got != event.StatusProcessing {
			t.Fatalf("after a fenced-off finish: got %s, want processing", got)
		}
		if lost, err := s.Events().Renew(ctx, later, lease, []store.Lease{first.Lease, second.Lease}); err != nil || len(lost) != 1 || lost[0] != "e1" {
			t.Fatalf("renew: got lost %v, %v; want the first lease lost", lost, err)
		}
		if err := done(second, event.StatusFailed); err != nil {
			t.Fatalf("finish with the current lease: %v", err)
		}
		if got := get(t, s, "e1").Record; got.Status != event.StatusFailed || got.Attempts != 2 {
			t.Errorf("after finish: got %s attempts %d, want failed 2", got.Status, got.Attempts)
		}
		if jobs := claim(t, s, later.Add(time.Hour), 10); len(jobs) != 0 {
			t.Errorf("claim after finish: got %d jobs, want 0", len(jobs))
		}
	})
}

func TestRenewKeepsLease(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		enqueue(t, s, t0, "e1")
		j := claim(t, s, t0, 1)[0]
		at := t0.Add(lease - time.Second)
		if lost, err := s.Events().Renew(context.Background(), at, lease, []store.Lease{j.Lease}); err != nil || len(lost) != 0 {
			t.Fatalf("renew: got lost %v, %v", lost, err)
		}
		if jobs := claim(t, s, t0.Add(lease+time.Second), 1); len(jobs) != 0 {
			t.Errorf("claim past the first deadline of a renewed lease: got %d jobs, want 0", len(jobs))
		}
		if jobs := claim(t, s, at.Add(lease+time.Millisecond), 1); len(jobs) != 1 {
			t.Errorf("claim past the renewed deadline: got %d jobs, want 1", len(jobs))
		}
	})
}

func TestRetryIsScheduled(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "e1")
		j := claim(t, s, t0, 1)[0]
		rec := j.Record
		rec.Status = event.StatusRetrying
		rec.NextAttemptAt = t0.Add(10 * time.Second)
		if errs, err := s.Events().Finish(ctx, t0, []store.Outcome{{Lease: j.Lease, Record: rec}}); err != nil || errs[0] != nil {
			t.Fatalf("finish retry: %v %v", errs, err)
		}
		if got := get(t, s, "e1").Record; got.Status != event.StatusRetrying || got.Attempts != 1 {
			t.Errorf("got %s attempts %d, want retrying 1", got.Status, got.Attempts)
		}
		if jobs, next, _ := s.Events().Claim(ctx, t0.Add(9*time.Second), lease, 1); len(jobs) != 0 || !next.Equal(rec.NextAttemptAt) {
			t.Fatalf("before due: got %d jobs next %v, want none, next at %v", len(jobs), next, rec.NextAttemptAt)
		}
		if jobs := claim(t, s, t0.Add(10*time.Second), 1); len(jobs) != 1 || jobs[0].Attempt != 2 {
			t.Fatalf("when due: got %+v, want attempt 2", jobs)
		}
	})
}

func TestReleaseDoesNotCountAttempt(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		enqueue(t, s, t0, "e1")
		j := claim(t, s, t0, 1)[0]
		if n, err := s.Events().Release(context.Background(), t0, []store.Lease{j.Lease, {ID: "e1", Token: 999}}); err != nil || n != 1 {
			t.Fatalf("release: got %d, %v; want 1", n, err)
		}
		if jobs := claim(t, s, t0, 1); len(jobs) != 1 || jobs[0].Attempt != 1 {
			t.Fatalf("claim after release: got %+v, want attempt 1 again", jobs)
		}
	})
}

func TestCallbackOutbox(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "e1", "e2")
		jobs := claim(t, s, t0, 2)
		var outs []store.Outcome
		for _, j := range jobs {
			rec := j.Record
			rec.Status = event.StatusSucceeded
			cb := &store.Callback{ID: "cb-" + j.ID, EventID: j.ID, Status: event.CallbackPending, URL: rec.SuccessURL, EventStatus: rec.Status}
			if j.ID == "e2" {
				cb = &store.Callback{ID: "cb-e2", EventID: "e2", Status: event.CallbackNone, EventStatus: rec.Status}
			}
			outs = append(outs, store.Outcome{Lease: j.Lease, Record: rec, Callback: cb})
		}
		if errs, err := s.Events().Finish(ctx, t0, outs); err != nil || errs[0] != nil || errs[1] != nil {
			t.Fatalf("finish: %v %v", errs, err)
		}
		if cb := get(t, s, "e2").Callback; cb == nil || cb.Status != event.CallbackNone {
			t.Fatalf("e2 callback: got %+v, want a record with status none", cb)
		}

		cjobs, _, err := s.Callbacks().Claim(ctx, t0, lease, 10)
		if err != nil || len(cjobs) != 1 || cjobs[0].ID != "e1" || cjobs[0].Attempt != 1 || cjobs[0].Callback.ID != "cb-e1" {
			t.Fatalf("claim callbacks: got %+v, %v; want e1's pending callback only", cjobs, err)
		}
		cb := cjobs[0].Callback
		cb.Status = event.CallbackRetrying
		cb.NextAttemptAt = t0.Add(time.Second)
		if errs, err := s.Callbacks().Finish(ctx, t0, []store.CallbackOutcome{{Lease: cjobs[0].Lease, Callback: cb}}); err != nil || errs[0] != nil {
			t.Fatalf("finish callback retry: %v %v", errs, err)
		}
		cjobs, _, _ = s.Callbacks().Claim(ctx, t0.Add(time.Second), lease, 10)
		if len(cjobs) != 1 || cjobs[0].Attempt != 2 {
			t.Fatalf("claim callback retry: got %+v, want attempt 2", cjobs)
		}
		cb = cjobs[0].Callback
		cb.Status, cb.Attempts = event.CallbackDelivered, 2
		if errs, err := s.Callbacks().Finish(ctx, t0, []store.CallbackOutcome{{Lease: cjobs[0].Lease, Callback: cb}}); err != nil || errs[0] != nil {
			t.Fatalf("finish callback: %v %v", errs, err)
		}
		snap := get(t, s, "e1")
		if snap.Record.Status != event.StatusSucceeded || snap.Callback == nil || snap.Callback.Status != event.CallbackDelivered || snap.Callback.Attempts != 2 {
			t.Errorf("got %+v / %+v, want succeeded with a callback delivered in 2 attempts", snap.Record, snap.Callback)
		}
		if cjobs, _, _ := s.Callbacks().Claim(ctx, t0.Add(time.Hour), lease, 10); len(cjobs) != 0 {
			t.Errorf("claim after delivery: got %d, want 0", len(cjobs))
		}
	})
}

func TestList(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		// Seven events over three batches; a batch shares one timestamp.
		enqueue(t, s, t0, "a1", "a2", "a3")
		enqueue(t, s, t0.Add(time.Millisecond), "b1", "b2")
		enqueue(t, s, t0.Add(2*time.Millisecond), "c1", "c2")
		want := []string{"c2", "c1", "b2", "b1", "a3", "a2", "a1"}

		var got []string
		cursor := ""
		for page := 0; page < 10; page++ {
			snaps, next, err := s.List(ctx, store.ListOptions{Limit: 2, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, sn := range snaps {
				got = append(got, sn.Record.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pages: got %v, want %v", got, want)
		}

		j := claim(t, s, t0.Add(time.Second), 1)[0] // a1, the oldest
		snaps, _, err := s.List(ctx, store.ListOptions{Status: event.StatusProcessing})
		if err != nil || len(snaps) != 1 || snaps[0].Record.ID != j.ID {
			t.Errorf("status filter: got %v, %v; want only %s", snaps, err, j.ID)
		}
		if _, _, err := s.List(ctx, store.ListOptions{Cursor: "garbage"}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("bad cursor: got %v, want ErrBadCursor", err)
		}
	})
}

func TestListWindow(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "a1", "a2")
		enqueue(t, s, t0.Add(time.Minute), "b1", "b2")
		enqueue(t, s, t0.Add(2*time.Minute), "c1")
		tests := []struct {
			name         string
			since, until time.Time
			limit        int
			want         []string
		}{
			{"unbounded", time.Time{}, time.Time{}, 2, []string{"c1", "b2", "b1", "a2", "a1"}},
			{"since is inclusive", t0.Add(time.Minute), time.Time{}, 2, []string{"c1", "b2", "b1"}},
			{"until is exclusive", time.Time{}, t0.Add(2 * time.Minute), 2, []string{"b2", "b1", "a2", "a1"}},
			{"both", t0.Add(time.Minute), t0.Add(2 * time.Minute), 1, []string{"b2", "b1"}},
			{"between batches", t0.Add(time.Second), t0.Add(time.Minute), 10, nil},
			{"since after until", t0.Add(2 * time.Minute), t0, 10, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got []string
				cursor := ""
				for range 10 {
					snaps, next, err := s.List(ctx, store.ListOptions{Since: tt.since, Until: tt.until, Limit: tt.limit, Cursor: cursor})
					if err != nil {
						t.Fatal(err)
					}
					for _, sn := range snaps {
						got = append(got, sn.Record.ID)
					}
					if next == "" {
						break
					}
					cursor = next
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			})
		}
		// A cursor from an unbounded listing, continued with an until
		// before it: the until bounds the page.
		_, next, err := s.List(ctx, store.ListOptions{Limit: 1})
		if err != nil || next == "" {
			t.Fatalf("first page: next %q, err %v", next, err)
		}
		snaps, _, err := s.List(ctx, store.ListOptions{Until: t0.Add(time.Minute), Cursor: next})
		if err != nil || len(snaps) != 2 || snaps[0].Record.ID != "a2" {
			t.Errorf("cursor past until: got %d events (%v), want a2 and a1", len(snaps), err)
		}
	})
}

func TestBeginInline(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		j, err := s.Inline().Begin(ctx, t0, lease, newEvent("i1"))
		if err != nil || j.Attempt != 1 {
			t.Fatalf("begin: got %+v, %v; want attempt 1", j, err)
		}
		var dup *store.DuplicateError
		if _, err := s.Inline().Begin(ctx, t0.Add(time.Second), lease, newEvent("i1")); !errors.As(err, &dup) {
			t.Fatalf("begin while held: got %v, want DuplicateError", err)
		}
		// The caller died; a retry of the request takes the event over.
		j2, err := s.Inline().Begin(ctx, t0.Add(lease+time.Millisecond), lease, newEvent("i1"))
		if err != nil || j2.Attempt != 2 || j2.Record.BodyHash != "h-i1" {
			t.Fatalf("begin after expiry: got %+v, %v; want attempt 2 with the stored record", j2, err)
		}
		rec := j2.Record
		rec.Status = event.StatusSucceeded
		if errs, err := s.Inline().Finish(ctx, t0, []store.Outcome{{Lease: j.Lease, Record: rec}}); err != nil || !errors.Is(errs[0], store.ErrLeaseLost) {
			t.Fatalf("finish with the old lease: got %v %v, want ErrLeaseLost", errs, err)
		}
		if errs, err := s.Inline().Finish(ctx, t0, []store.Outcome{{Lease: j2.Lease, Record: rec}}); err != nil || errs[0] != nil {
			t.Fatalf("finish: %v %v", errs, err)
		}
		if _, err := s.Inline().Begin(ctx, t0.Add(time.Hour), lease, newEvent("i1")); !errors.As(err, &dup) || dup.Record.Status != event.StatusSucceeded {
			t.Fatalf("begin when done: got %v, want DuplicateError with the succeeded record", err)
		}
		// Events run in-request never reach the workers' queue.
		if jobs := claim(t, s, t0.Add(time.Hour), 10); len(jobs) != 0 {
			t.Errorf("claim: got %d jobs, want 0", len(jobs))
		}
	})
}

func TestRedisDown(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	b.Mini.Close()
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, t0, []store.NewEvent{newEvent("x")}); err == nil {
		t.Error("Enqueue with Redis down: got nil error")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis down: got nil error")
	}
}

// A queued event whose record was corrupted in Redis is dropped from the
// queue with a warning, and the others are claimed as usual.
func TestClaimDropsUnreadableRecord(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		ctx := context.Background()
		enqueue(t, s, t0, "good", "bad")
		if err := b.Client.Set(ctx, store.RecordKey(s, "bad"), `{"id":"bad","status":`, 0).Err(); err != nil {
			t.Fatal(err)
		}
		jobs := claim(t, s, t0, 10)
		if len(jobs) != 1 || jobs[0].ID != "good" {
			t.Fatalf("claim: got %+v, want only the readable event", jobs)
		}
		if jobs := claim(t, s, t0, 10); len(jobs) != 0 {
			t.Errorf("claim again while good is leased: got %+v, want the unreadable one gone from the queue", jobs)
		}
		if n, err := b.Client.ZCard(ctx, store.EventQueueKey(s, "bad")).Result(); err != nil || n != 0 && store.EventQueueKey(s, "bad") != store.EventQueueKey(s, "good") || n > 1 {
			t.Errorf("queue of the unreadable event: got %d entries (%v), want it gone (the good event, leased, may share it)", n, err)
		}
	})
}
