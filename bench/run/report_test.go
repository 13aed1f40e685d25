package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// closedRun is a phase a run at rps with no errors.
func closedRun(rps float64) loadRun {
	return loadRun{res: loadResult{AchievedRPS: rps, OK: int64(rps * 5), DurationSeconds: 5}}
}

// cbRun is an end-to-end run that called back received of accepted events
// over 5s plus tail seconds.
func cbRun(accepted, received int64, tail float64) loadRun {
	return loadRun{res: loadResult{DurationSeconds: 5, OK: accepted, AchievedRPS: float64(accepted) / 5,
		Callbacks: &callbacks{Accepted: accepted, Received: received, Lost: accepted - received, TailSeconds: tail}}}
}

// goodReport meets every target.
func goodReport() *report {
	r := &report{opts: options{conns: 128, reps: 2, phases: "abcd"}}
	r.ingest.runs = map[string][]loadRun{
		baselineName:  {closedRun(10000), closedRun(12000)},
		boomerangName: {closedRun(9500), closedRun(11000)},
	}
	r.latency = latencyResult{rate: 5000, runs: map[string]loadRun{
		baselineName:  {res: loadResult{Latency: latency{Count: 1, P99: 1}}},
		boomerangName: {res: loadResult{Latency: latency{Count: 1, P99: 4.9}}},
	}}
	r.sustained = sustainedResult{accepted: 50000, eps: 9000}
	r.e2e = e2eResult{
		rate:       8000,
		closed:     e2eRun{run: cbRun(50000, 50000, 0), delivered: 50000, work: commandDelta{calls: map[string]int64{"evalsha": 100000, "zadd": 150000}}},
		fixed:      e2eRun{run: cbRun(40000, 40000, 0), delivered: 40000, work: commandDelta{calls: map[string]int64{"evalsha": 100000, "zadd": 140000}}},
		seedRate:   cbRun(10000, 9000, 1),  // 1500/s, lost some
		seedClosed: cbRun(10000, 10000, 5), // 1000/s, lost none
	}
	return r
}

// checkNames name the checks in the order report.checks returns them.
var checkNames = []string{"ingest", "p99", "sustained", "e2e", "commands", "rss"}

func verdicts(r *report) map[string]string {
	out := map[string]string{}
	for i, c := range r.checks() {
		out[checkNames[i]] = c.verdict()
	}
	return out
}

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(r *report)
		keys   string // the checks that change, comma-separated
		want   string
	}{
		{"all met", func(*report) {}, "", "PASS"},
		{"ingest below 0.9x", func(r *report) { r.ingest.runs[boomerangName] = []loadRun{closedRun(9000), closedRun(9800)} }, "ingest", "MISS"},
		{"ingest counts only 2xx", func(r *report) {
			run := closedRun(11000)
			run.res.Non2xx = map[string]int64{"503": 30000}
			run.res.OK = 25000 // 5000/s
			r.ingest.runs[boomerangName] = []loadRun{run, run}
		}, "ingest", "MISS"},
		{"p99 at the limit", func(r *report) {
			x := r.latency.runs[boomerangName]
			x.res.Latency.P99 = 5
			r.latency.runs[boomerangName] = x
		}, "p99", "MISS"},
		{"p99 with drops", func(r *report) {
			x := r.latency.runs[boomerangName]
			x.res.Dropped = 1
			r.latency.runs[boomerangName] = x
		}, "p99", "MISS"},
		{"sustained not drained", func(r *report) { r.sustained.left = 1 }, "sustained", "MISS"},
		{"sustained below 0.8x", func(r *report) { r.sustained.eps = 8700 }, "sustained", "MISS"},
		{"e2e lost a callback", func(r *report) {
			r.e2e.closed.run = cbRun(50000, 49999, 0)
			r.e2e.fixed.run = cbRun(40000, 39999, 0)
		}, "e2e", "MISS"},
		{"e2e below 5x", func(r *report) { r.e2e.seedClosed = cbRun(10500, 10500, 0) }, "e2e", "MISS"}, // seed 2100/s
		{"too many commands", func(r *report) { r.e2e.fixed.work.calls["hset"] = 1 }, "commands", "MISS"},
		{"no e2e numbers", func(r *report) { r.e2e = e2eResult{} }, "e2e,commands", "not measured"},
		{"no ingest numbers", func(r *report) { r.ingest.runs = nil }, "ingest,sustained", "not measured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := goodReport()
			tc.change(r)
			got := verdicts(r)
			changed := map[string]bool{}
			for _, k := range strings.Split(tc.keys, ",") {
				changed[k] = true
			}
			for key, v := range got {
				want := "PASS"
				if changed[key] {
					want = tc.want
				}
				if v != want {
					t.Errorf("%s: got %s, want %s (all: %v)", key, v, want, got)
				}
			}
			if len(got) != 5 {
				t.Errorf("got %d checks, want 5", len(got))
			}
			if missed := tc.want == "MISS"; r.missed() != missed {
				t.Errorf("missed: got %v, want %v", r.missed(), missed)
			}
		})
	}
}

func TestChecksRatiosAndBest(t *testing.T) {
	r := goodReport()
	c := r.checks()
	if got, want := c[0].ratio, "0.93×"; got != want { // medians 10250 / 11000
		t.Errorf("ingest ratio: got %s, want %s", got, want)
	}
	// The seed-like closed loop lost none, so it is the comparison though
	// the same-rate run called back faster.
	if got := c[3].baseline; !strings.Contains(got, "1000/s (closed loop)") {
		t.Errorf("seed-like comparison: got %q, want its closed-loop run", got)
	}
	if got := c[3].boomerang; !strings.Contains(got, "10000 events/s (closed loop), 0 lost") {
		t.Errorf("boomerang e2e: got %q", got)
	}
	if got := r.commandsPerEvent(); got != 6 {
		t.Errorf("commands per event: got %v, want 6", got)
	}
}

func TestChecksOnlyOfThePhasesRun(t *testing.T) {
	r := goodReport()
	r.opts.phases = "bd"
	var got []string
	for _, c := range r.checks() {
		got = append(got, c.target)
	}
	if len(got) != 3 || !strings.HasPrefix(got[0], "< 5 ms") || !strings.HasPrefix(got[1], "≥ 5×") || !strings.HasPrefix(got[2], "≤ 6") {
		t.Errorf("got targets %q, want those of phases b and d", got)
	}
}

func TestMemoryCheck(t *testing.T) {
	r := goodReport()
	r.memory = &memoryResult{target: 1000, queued: 1000, rss: 100 << 20, peak: 149 << 20}
	if got := r.checks()[5].verdict(); got != "PASS" {
		t.Errorf("peak 149 MiB: got %s, want PASS", got)
	}
	r.memory.peak = 150 << 20
	if got := r.checks()[5].verdict(); got != "MISS" {
		t.Errorf("peak 150 MiB: got %s, want MISS", got)
	}
}

func TestSmokeCheck(t *testing.T) {
	if err := goodReport().smokeCheck(); err != nil {
		t.Errorf("good report: got %v, want nil", err)
	}
	r := goodReport()
	r.sustained.eps = math.NaN()
	r.e2e.fixed = e2eRun{}
	err := r.smokeCheck()
	if err == nil || !strings.Contains(err.Error(), "phase c") || !strings.Contains(err.Error(), "boomerang fixed rate") {
		t.Errorf("got %v, want errors naming phase c and the fixed-rate run", err)
	}
}

func TestMarkdownNamesEveryTargetAndTheSeedLikeLabel(t *testing.T) {
	r := goodReport()
	r.date = time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)
	md := r.markdown()
	for _, want := range []string{"| **PASS** |", "≥ 0.9× baseline", "< 5 ms", "≥ 0.8× baseline ingest", "≥ 5× seed-like, 0 lost", "≤ 6",
		"re-implementation of the original handler's documented callback behaviour, because the original module is not reachable from this machine",
		"`go run ./bench/run`", "2026-11-25 21:00 UTC"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v): got %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil): got %v, want NaN", got)
	}
}

func TestSmokeCheckOnlyChecksThePhasesRun(t *testing.T) {
	r := &report{opts: options{phases: "b"}}
	r.latency = goodReport().latency
	if err := r.smokeCheck(); err != nil {
		t.Errorf("phase b only: got %v, want nil", err)
	}
	r.opts.phases = "bc"
	if err := r.smokeCheck(); err == nil || !strings.Contains(err.Error(), "phase c") {
		t.Errorf("phases bc without c's numbers: got %v, want an error naming phase c", err)
	}
}
