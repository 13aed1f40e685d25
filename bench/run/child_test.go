package main

import (
	"math"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0\n"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want { // (250 + 50) ticks at 100 Hz
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1")); err == nil {
		t.Error("got no error for a short line")
	}
}

func TestParseStatusMemory(t *testing.T) {
	status := "Name:\tserver\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n"
	rss, peak, err := parseStatusMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if rss != 10<<20 || peak != 20<<20 {
		t.Errorf("got rss %d peak %d, want %d and %d", rss, peak, 10<<20, 20<<20)
	}
	if _, _, err := parseStatusMemory("Name:\tx\n"); err == nil {
		t.Error("got no error without VmRSS")
	}
}

func TestBusyPct(t *testing.T) {
	a := parseCoreTimes("cpu  1 1 1 1 1 1 1 1 0 0\ncpu0 100 0 50 800 0 0 50 0 0 0\ncpu1 0 0 0 1000 0 0 0 0 0 0\n")
	b := parseCoreTimes("cpu  1 1 1 1 1 1 1 1 0 0\ncpu0 160 0 70 860 0 0 60 0 0 0\ncpu1 0 0 0 1100 0 0 0 0 0 0\n")
	// core 0: 80 ticks in processes out of 150; softirq is not a process.
	if got, want := busyPct(a, b, 0), 100*80.0/150; math.Abs(got-want) > 1e-9 {
		t.Errorf("core 0: got %v, want %v", got, want)
	}
	if got := busyPct(a, b, 1); got != 0 {
		t.Errorf("core 1: got %v, want 0", got)
	}
	if got := busyPct(a, b, 2); !math.IsNaN(got) {
		t.Errorf("missing core: got %v, want NaN", got)
	}
}
