package handler

import (
	"context"
	"testing"
	"time"
)

func TestPacerDelay(t *testing.T) {
	tests := []struct {
		target  int
		backlog int64
		want    time.Duration
	}{
		{2000, 0, 0},
		{2000, 2000, 0},
		{2000, 2100, 100 * pacingPerEvent},
		{2000, 10_000_000, pacingMaxDelay},
		{-1, 10_000_000, 0},
	}
	for _, tc := range tests {
		p := &pacer{target: tc.target, perEvent: pacingPerEvent, maxDelay: pacingMaxDelay}
		p.backlog.Store(tc.backlog)
		if got := p.delay(); got != tc.want {
			t.Errorf("target %d, backlog %d: got %s, want %s", tc.target, tc.backlog, got, tc.want)
		}
	}
}

func TestPacerReadsBacklog(t *testing.T) {
	calls := make(chan struct{}, 100)
	p := newPacer(10, func(context.Context, time.Time) (int, error) {
		select {
		case calls <- struct{}{}:
		default:
		}
		return 110, nil
	})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("the backlog was never read")
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.delay() != 100*pacingPerEvent {
		if time.Now().After(deadline) {
			t.Fatalf("delay: got %s, want %s", p.delay(), 100*pacingPerEvent)
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	p.wait(ctx) // an ended context does not wait
	if time.Since(start) > 50*time.Millisecond {
		t.Errorf("wait with an ended context took %s", time.Since(start))
	}
}
