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
		Callbacks: &callbacks{Accepted: accepted, Received: received, Arrived: received, Lost: accepted - received, TailSeconds: tail}},
		use: usage{wall: 5 * time.Second, server: time.Duration(received) * 100 * time.Microsecond}}
}

// flat is a backlog that stays near 100 over a 1s warmup and 5s load.
var flat = []backlogSample{{time.Second, 90, 10}, {2 * time.Second, 95, 10}, {3 * time.Second, 80, 5}, {4 * time.Second, 100, 10}, {5 * time.Second, 85, 5}, {6 * time.Second, 92, 8}}

// goodReport meets every target.
func goodReport() *report {
	r := &report{opts: options{conns: 128, reps: 2, phases: "abcd", warmup: time.Second}}
	r.ingest.runs = map[string][]loadRun{
		baselineName:  {closedRun(10000), closedRun(12000)},
		boomerangName: {closedRun(11000), closedRun(12000)},
	}
	r.latency = latencyResult{rate: 5000, runs: map[string]loadRun{
		baselineName:  {res: loadResult{Latency: latency{Count: 1, P99: 1}}},
		boomerangName: {res: loadResult{Latency: latency{Count: 1, P99: 4.9}}},
	}}
	r.sustained = sustainedResult{accepted: 50000, eps: 10000}
	closed := e2eRun{run: cbRun(50000, 50000, 0), delivered: 50000, work: commandDelta{calls: map[string]int64{"evalsha": 100000, "zadd": 150000}}}
	r.e2e = e2eResult{
		rate:       8000,
		limit:      []loadRun{cbRun(55000, 55000, 0), cbRun(60000, 60000, 0)}, // 11000/s and 12000/s
		closedRuns: []e2eRun{closed, closed},                                  // 10000/s: 0.87x
		closed:     closed,
		fixed:      e2eRun{run: cbRun(40000, 40000, 0), delivered: 40000, backlog: flat, work: commandDelta{calls: map[string]int64{"evalsha": 100000, "zadd": 140000}}},
		seedRate:   cbRun(10000, 9000, 1),  // 1500/s, lost some
		seedClosed: cbRun(10000, 10000, 5), // 1000/s, lost none
	}
	return r
}

// checkNames name the checks in the order report.checks returns them.
var checkNames = []string{"limit", "growth", "ingest", "sustained", "p99", "seed", "commands", "rss"}

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
		{"ingest below 1.0x", func(r *report) { r.ingest.runs[boomerangName] = []loadRun{closedRun(10000), closedRun(11800)} }, "ingest", "MISS"},
		{"ingest counts only 2xx", func(r *report) {
			run := closedRun(12000)
			run.res.Non2xx = map[string]int64{"503": 30000}
			run.res.OK = 25000 // 5000/s
			r.ingest.runs[boomerangName] = []loadRun{run, run}
		}, "ingest", "MISS"},
		{"p99 at the limit", func(r *report) {
			x := r.latency.runs[boomerangName]
			x.res.Latency.P99 = 5
			r.latency.runs[boomerangName] = x
		}, "p99", "MISS"},
		{"p99 missed with the load generator behind", func(r *report) {
			x := r.latency.runs[baselineName]
			x.res.SendLag = &latency{P99: 1.5}
			r.latency.runs[baselineName] = x
			x = r.latency.runs[boomerangName]
			x.res.Latency.P99 = 6
			r.latency.runs[boomerangName] = x
		}, "p99", "not measured"},
		{"p99 met with the load generator behind still counts", func(r *report) {
			x := r.latency.runs[boomerangName]
			x.res.SendLag = &latency{P99: 1.5}
			r.latency.runs[boomerangName] = x
		}, "", "PASS"},
		{"p99 with drops", func(r *report) {
			x := r.latency.runs[boomerangName]
			x.res.Dropped = 1
			r.latency.runs[boomerangName] = x
		}, "p99", "MISS"},
		{"sustained not drained", func(r *report) { r.sustained.left = 1 }, "sustained", "MISS"},
		{"sustained below 0.9x", func(r *report) { r.sustained.eps = 9800 }, "sustained", "MISS"},
		{"e2e below 0.8x the limit", func(r *report) { r.e2e.limit = []loadRun{cbRun(65000, 65000, 0)} }, "limit", "MISS"}, // 13000/s
		{"e2e lost a callback in one closed run", func(r *report) {
			r.e2e.closedRuns[1].run = cbRun(50000, 49999, 0)
		}, "limit,seed", "MISS"},
		{"e2e duplicate", func(r *report) {
			run := cbRun(50000, 50000, 0)
			run.res.Callbacks.Duplicates = 1
			r.e2e.closedRuns[0].run = run
		}, "limit", "MISS"},
		{"fixed rate backlog grows", func(r *report) {
			var grow []backlogSample
			for i := range 6 {
				grow = append(grow, backlogSample{at: time.Duration(i+1) * time.Second, events: int64(i) * 500}) // 500/s > 5% of 8000
			}
			r.e2e.fixed.backlog = grow
		}, "growth", "MISS"},
		{"fixed rate lost a callback", func(r *report) {
			r.e2e.fixed.run = cbRun(40000, 39999, 0)
		}, "growth", "MISS"},
		{"e2e below 5x seed-like", func(r *report) { r.e2e.seedClosed = cbRun(10500, 10500, 0) }, "seed", "MISS"}, // seed 2100/s
		{"too many commands", func(r *report) { r.e2e.fixed.work.calls["hset"] = 1 }, "commands", "MISS"},
		{"no e2e numbers", func(r *report) { r.e2e = e2eResult{} }, "limit,growth,seed,commands", "not measured"},
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
			if len(got) != 7 {
				t.Errorf("got %d checks, want 7", len(got))
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
	if got, want := c[0].ratio, "0.87×"; got != want { // 10000 / median(11000, 12000)
		t.Errorf("limit ratio: got %s, want %s", got, want)
	}
	if got := c[0].baseline; !strings.Contains(got, "11500/s, 100 µs CPU") {
		t.Errorf("limit figures: got %q", got)
	}
	if got, want := c[2].ratio, "1.05×"; got != want { // medians 11500 / 11000
		t.Errorf("ingest ratio: got %s, want %s", got, want)
	}
	// The seed-like closed loop lost none, so it is the comparison though
	// the same-rate run called back faster.
	if got := c[5].baseline; !strings.Contains(got, "1000/s (closed loop)") {
		t.Errorf("seed-like comparison: got %q, want its closed-loop run", got)
	}
	if got := r.commandsPerEvent(); got != 6 {
		t.Errorf("commands per event: got %v, want 6", got)
	}
}

func TestBacklogGrowth(t *testing.T) {
	var s []backlogSample
	for i := range 7 {
		s = append(s, backlogSample{at: time.Duration(i) * time.Second, events: 1000 + int64(i)*300, callbacks: 7})
	}
	if got := backlogGrowth(s, time.Second); math.Abs(got-300) > 1e-9 {
		t.Errorf("growth: got %v, want 300", got)
	}
	if got := backlogGrowth(s[:1], 0); !math.IsNaN(got) {
		t.Errorf("one sample: got %v, want NaN", got)
	}
}

func TestLatencyRate(t *testing.T) {
	r := goodReport()
	if got := r.latencyRate(); got != 5000 { // half of the sustained 10000
		t.Errorf("from phase c: got %v, want 5000", got)
	}
	r.sustained = sustainedResult{}
	if got := r.latencyRate(); got != 5700 { // half of the ingest median 11500, rounded down to 100
		t.Errorf("from phase a: got %v, want 5700", got)
	}
	r.opts.rate = 1234
	if got := r.latencyRate(); got != 1234 {
		t.Errorf("--rate: got %v, want 1234", got)
	}
}

func TestMemoryCheck(t *testing.T) {
	r := goodReport()
	r.memory = &memoryResult{target: 1000, queued: 1000, rss: 100 << 20, peak: 149 << 20}
	if got := r.checks()[7].verdict(); got != "PASS" {
		t.Errorf("peak 149 MiB: got %s, want PASS", got)
	}
	r.memory.peak = 150 << 20
	if got := r.checks()[7].verdict(); got != "MISS" {
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
	for _, want := range []string{"| **PASS** |", "≥ 1.0× baseline", "< 5 ms", "≥ 0.9× baseline ingest", "≥ 5× seed-like, 0 lost", "≤ 6", "≥ 0.8× limit, 0 lost, 0 duplicates",
		"re-implementation of the original package's documented callback behaviour", "because the original module is not reachable from this machine", "keeps nothing",
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
