package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// logBuffer collects a logger's output; safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The record's last_error and the callback's error of a forward that
// failed are the failure's class; the log has the detail, without the
// URL's query.
func TestForwardFailureIsLoggedRedacted(t *testing.T) {
	var logs logBuffer
	url := closedURL(t) + "/in?token=s3cret"
	p := &Processor{
		routes: Routes{"t": {EventType: "t", Logic: Forward(url, outbound.Policy{AllowPrivate: true}.Client(5*time.Second)),
			Retry: retry.Policy{MaxAttempts: 2}.WithDefaults()}},
		now: time.Now, log: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	rec := store.Record{ID: "e1", EventType: "t", BodyHash: "h", Run: 1, Status: event.StatusQueued, FailURL: "http://127.0.0.1:9/cb"}
	for attempt, want := range []event.Status{event.StatusRetrying, event.StatusFailed} {
		out := p.process(context.Background(), store.Job{Lease: store.Lease{ID: "e1", Token: 1}, Attempt: attempt + 1, Record: rec, Body: []byte(`{}`)})
		rec = out.Record
		if rec.Status != want || rec.LastError != "connection refused" {
			t.Fatalf("attempt %d: got %s with %q, want %s with %q", attempt+1, rec.Status, rec.LastError, want, "connection refused")
		}
		if want == event.StatusFailed && (out.Callback == nil || out.Callback.EventError != "connection refused") {
			t.Errorf("callback: got %+v, want the error %q", out.Callback, "connection refused")
		}
	}
	got := logs.String()
	if strings.Contains(got, "s3cret") {
		t.Errorf("the log holds the URL's query:\n%s", got)
	}
	for _, want := range []string{"event attempt failed; will retry", "event failed for good", "connect: connection refused", "/in"} {
		if !strings.Contains(got, want) {
			t.Errorf("the log: got\n%s\nwant it to contain %q", got, want)
		}
	}
}

// A job given back at shutdown (its logic still running when the drain
// timed out) is not an attempt that failed: nothing says it will retry.
func TestGivenBackJobIsNotLoggedAsFailed(t *testing.T) {
	st, err := store.New(redistest.Mini(t).Client, store.Config{Prefix: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	slow := func(ctx context.Context, _ Event) error {
		started <- struct{}{}
		<-ctx.Done() // runs until the processor gives up on it
		return fmt.Errorf("slow: %w", ctx.Err())
	}
	var logs logBuffer
	p, err := New(st, Routes{"slow": {EventType: "slow", Logic: slow}}, Config{
		Workers: 1, DrainTimeout: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := store.NewEvent{Record: store.Record{ID: "s1", EventType: "slow", BodyHash: "h"}, Body: []byte(`{}`)}
	if errs, err := st.Enqueue(context.Background(), time.Now(), []store.NewEvent{ev}); err != nil || errs[0] != nil {
		t.Fatalf("enqueue: %v %v", errs, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the event never started")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	got := logs.String()
	if !strings.Contains(got, "gave unfinished jobs back to the queue") {
		t.Fatalf("the log: got\n%s\nwant the job given back", got)
	}
	if strings.Contains(got, "will retry") || strings.Contains(got, "failed for good") {
		t.Errorf("the log: got\n%s\nwant no failed attempt for the given-back job", got)
	}
	snap, err := st.Get(context.Background(), "s1")
	if err != nil || snap.Record.Status != event.StatusQueued || snap.Record.LastError != "" {
		t.Errorf("after shutdown: got %s with %q (%v), want queued with no error", snap.Record.Status, snap.Record.LastError, err)
	}
}
