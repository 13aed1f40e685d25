package main

import (
	"io"
	"testing"
	"time"
)

func TestParseFlagsQuickKeepsExplicitValues(t *testing.T) {
	o, err := parseFlags([]string{"--quick", "--duration", "3s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != 3*time.Second || o.warmup != 500*time.Millisecond || o.reps != 1 || o.drainMax != 10*time.Second {
		t.Errorf("got duration %v warmup %v reps %d drain %v, want 3s 500ms 1 10s", o.duration, o.warmup, o.reps, o.drainMax)
	}
	if got, want := o.command(), "go run ./bench/run --quick --duration 3s"; got != want {
		t.Errorf("command: got %q, want %q", got, want)
	}
}

func TestParseFlagsRefusesUnboundedRuns(t *testing.T) {
	for _, args := range [][]string{
		{"--duration", "0s"},
		{"--duration", "1h"},
		{"--reps", "0"},
		{"--rate", "-1"},
		{"--drain-max", "100ms"},
		{"--memory-events", "10"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: got no error", args)
		}
	}
}
