package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// report is everything one benchmark run measured.
type report struct {
	opts      options
	date      time.Time
	elapsed   time.Duration
	machine   machine
	pinNote   string
	calib     calibration
	ingest    ingestResult
	latency   latencyResult
	sustained sustainedResult
	// sustainedForward is phase c through the workers: the route forwards
	// every event to a keep-nothing target. No target; reported.
	sustainedForward sustainedResult
	e2e              e2eResult
	memory           *memoryResult  // nil without --memory
	compare          *compareResult // nil without --compare
	refRevision      string         // --compare's ref and commit
	loadEnd          string         // load average at the end
}

// Targets of the benchmark issues (the first benchmark issue, raised by
// issue 12).
const (
	targetLimitRatio     = 0.8  // end to end >= 0.8 x the keep-nothing limit server, 0 lost, 0 duplicates
	targetGrowth         = 0.05 // at 0.8 x capacity the backlog grows by at most 5% of the rate
	targetIngestRatio    = 1.0  // Boomerang ingest >= 1.0 x baseline, closed loop
	targetP99Ms          = 5.0  // ingest p99 at half of the sustained capacity < 5 ms
	targetSustainedRatio = 0.9  // sustained ingest + processing >= 0.9 x baseline ingest
	targetE2ERatio       = 5.0  // end to end >= 5 x the seed-like server, 0 lost
	targetCommands       = 6.0  // Redis commands per event <= 6
	targetRSSMiB         = 150. // server RSS with the memory backlog < 150 MiB
)

// check is one target: the figures it compares and whether it is met.
type check struct {
	metric, baseline, boomerang, ratio, target string
	measured, ok                               bool
}

func (c check) verdict() string {
	switch {
	case !c.measured:
		return "not measured"
	case c.ok:
		return "PASS"
	default:
		return "MISS"
	}
}

// ingestRate is the rate of 2xx answers of a run: loadgen's achieved rate
// when every answer was a 2xx, else the 2xx per second of the window.
func ingestRate(r loadResult) float64 {
	if r.errors() == 0 {
		return r.AchievedRPS
	}
	if r.DurationSeconds <= 0 {
		return 0
	}
	return float64(r.OK) / r.DurationSeconds
}

// medianIngest is the median 2xx rate of the named server's phase a runs.
func (r *report) medianIngest(name string) float64 {
	var v []float64
	for _, run := range r.ingest.runs[name] {
		v = append(v, ingestRate(run.res))
	}
	return median(v)
}

// latencyRate is phase b's fixed rate: --rate when given, else half of
// Boomerang's capacity, its sustained rate of phase c (ingest plus
// processing, what it can carry for good), or half of its ingest of phase
// a when c did not run, or defaultLatencyRate when neither did. It is
// rounded down to a multiple of 100.
func (r *report) latencyRate() float64 {
	if r.opts.rate > 0 {
		return r.opts.rate
	}
	capacity := r.sustained.eps
	if !(capacity > 0) {
		capacity = r.medianIngest(boomerangName)
	}
	if !(capacity > 0) {
		return defaultLatencyRate
	}
	return max(100, math.Floor(capacity/2/100)*100)
}

// latencyRateHow says where phase b's rate came from.
func (r *report) latencyRateHow() string {
	switch {
	case r.opts.rate > 0:
		return "--rate"
	case r.sustained.eps > 0:
		return "half the sustained capacity"
	case r.medianIngest(boomerangName) > 0:
		return "half the ingest capacity"
	}
	return "default"
}

// defaultLatencyRate is phase b's rate when no capacity was measured.
const defaultLatencyRate = 5000

// commandsPerEvent is the Redis commands per delivered callback of the
// fixed-rate end-to-end run: Boomerang under load, in a steady state.
func (r *report) commandsPerEvent() float64 {
	return perEvent(r.e2e.fixed.work.total(), r.e2e.fixed.delivered)
}

// checks evaluates the target of every phase run. A figure that could not
// be measured (NaN) is "not measured", never a pass.
func (r *report) checks() []check {
	base, boom := r.medianIngest(baselineName), r.medianIngest(boomerangName)
	ingest := check{
		metric:   fmt.Sprintf("ingest, closed loop %d conns (median of %d)", r.opts.conns, len(r.ingest.runs[boomerangName])),
		baseline: rate(base) + " req/s", boomerang: rate(boom) + " req/s", ratio: ratio(boom, base),
		target:   fmt.Sprintf("≥ %.1f× baseline", targetIngestRatio),
		measured: finite(base) && finite(boom) && base > 0,
		ok:       boom >= targetIngestRatio*base,
	}

	bl, bm := r.latency.runs[baselineName].res, r.latency.runs[boomerangName].res
	lag := max(sendLagP99(r.latency.runs[baselineName]), sendLagP99(r.latency.runs[boomerangName]))
	how := r.latencyRateHow()
	if len(r.latency.tooFast) > 0 {
		how = fmt.Sprintf("%s was %.0f, beyond the load generator here", how, r.latency.asked)
	}
	p99 := check{
		metric:   fmt.Sprintf("ingest p99 at a fixed %.0f req/s (%s)", r.latency.rate, how),
		baseline: ms(bl.Latency.P99), boomerang: ms(bm.Latency.P99), ratio: ratio(bm.Latency.P99, bl.Latency.P99),
		target: fmt.Sprintf("< %.0f ms, none dropped", targetP99Ms),
		ok:     bm.Latency.P99 < targetP99Ms && bm.Dropped == 0 && bm.errors() == 0,
	}
	// Latency runs from each request's scheduled time, so a generator that
	// falls behind only adds to it (and sends in bursts): a pass despite
	// the lag stands, a miss with it measured the generator.
	p99.measured = bm.Latency.Count > 0 && (lag <= maxSendLagMs || p99.ok)
	if bm.Latency.Count > 0 && lag > maxSendLagMs {
		p99.boomerang += fmt.Sprintf(" (load generator behind: send lag p99 %.1f ms, counted in the latency)", lag)
	}

	s := r.sustained
	sustained := check{
		metric:   "sustained ingest + processing, accept, no callbacks",
		baseline: rate(base) + " req/s (ingest only)", boomerang: rate(s.eps) + " events/s", ratio: ratio(s.eps, base),
		target:   fmt.Sprintf("≥ %.1f× baseline ingest, drained", targetSustainedRatio),
		measured: finite(base) && base > 0 && s.accepted > 0,
		ok:       s.eps >= targetSustainedRatio*base && s.left == 0,
	}

	e := r.e2e
	limit, capacity := e.limitCapacity(), e.boomerangCapacity()
	limitCPU, boomCPU := medianOf(e.limit, cpuPerCallback), medianOf(e.boomerangRuns(), cpuPerCallback)
	var lost, dups int64
	for _, x := range e.closedRuns {
		if cb := x.run.res.Callbacks; cb != nil {
			lost, dups = lost+cb.Lost, dups+cb.Duplicates
		}
	}
	e2eLimit := check{
		metric:    fmt.Sprintf("end to end, closed loop %d conns: callbacks/s (median of %d), server CPU per callback", r.opts.conns, len(e.closedRuns)),
		baseline:  fmt.Sprintf("limit (keeps nothing) %s/s, %s", rate(limit), us(limitCPU)),
		boomerang: fmt.Sprintf("%s/s, %s, %d lost, %d duplicates", rate(capacity), us(boomCPU), lost, dups),
		ratio:     ratio(capacity, limit),
		target:    fmt.Sprintf("≥ %.1f× limit, 0 lost, 0 duplicates", targetLimitRatio),
		measured:  finite(limit) && limit > 0 && finite(capacity) && len(e.closedRuns) > 0,
		ok:        capacity >= targetLimitRatio*limit && lost == 0 && dups == 0,
	}
	growth := backlogGrowth(e.fixed.backlog, r.opts.warmup)
	fixed := check{
		metric:    fmt.Sprintf("end to end at a fixed %.0f events/s (0.8× capacity): backlog growth", e.rate),
		baseline:  "",
		boomerang: fmt.Sprintf("%s events/s per s, %s", signed(growth), cbCount(e.fixed.run.res, "lost")+" lost, "+cbCount(e.fixed.run.res, "dup")+" duplicates"),
		target:    fmt.Sprintf("≤ %.0f%% of the rate, 0 lost, 0 duplicates", 100*targetGrowth),
		measured:  finite(growth) && e.fixed.run.res.Callbacks != nil,
	}
	if cb := e.fixed.run.res.Callbacks; cb != nil {
		fixed.ok = growth <= targetGrowth*e.rate && cb.Lost == 0 && cb.Duplicates == 0 && cb.Accepted > 0
	}

	seedRun, seedHow := e.seedBest()
	seed := delivered(seedRun)
	e2e := check{
		metric:   "end to end against the seed-like server (the original package's behaviour)",
		baseline: fmt.Sprintf("seed-like %s/s (%s), %s lost", rate(seed), seedHow, cbCount(seedRun.res, "lost")), boomerang: fmt.Sprintf("%s events/s (closed loop)", rate(capacity)),
		ratio:    ratio(capacity, seed),
		target:   fmt.Sprintf("≥ %.0f× seed-like, 0 lost", targetE2ERatio),
		measured: finite(capacity) && finite(seed) && seed > 0,
		ok:       capacity >= targetE2ERatio*seed && lost == 0,
	}

	cpe := r.commandsPerEvent()
	commands := check{
		metric:   "Redis commands per event, ingest to delivered callback",
		baseline: "2 (SET + ZADD, no processing)", boomerang: fmt.Sprintf("%.2f", cpe), ratio: "",
		target:   fmt.Sprintf("≤ %.0f", targetCommands),
		measured: finite(cpe),
		ok:       cpe <= targetCommands,
	}
	var out []check
	for _, c := range []struct {
		phase string
		check check
	}{{"d", e2eLimit}, {"d", fixed}, {"a", ingest}, {"c", sustained}, {"b", p99}, {"d", e2e}, {"d", commands}} {
		if r.opts.runs(c.phase) {
			out = append(out, c.check)
		}
	}
	if m := r.memory; m != nil {
		out = append(out, check{
			metric:   fmt.Sprintf("server RSS with %d events queued", m.queued),
			baseline: "", boomerang: fmt.Sprintf("%.1f MiB (peak %.1f)", mib(m.rss), mib(m.peak)),
			target:   fmt.Sprintf("< %.0f MiB", targetRSSMiB),
			measured: m.queued > 0 && m.rss > 0,
			ok:       mib(m.peak) < targetRSSMiB && m.queued >= m.target,
		})
	}
	return out
}

// missed reports whether a measured target was missed.
func (r *report) missed() bool {
	for _, c := range r.checks() {
		if c.measured && !c.ok {
			return true
		}
	}
	return false
}

// smokeCheck reports an error when a phase produced no numbers: what
// --quick checks.
func (r *report) smokeCheck() error {
	var errs []error
	for _, name := range []string{baselineName, boomerangName} {
		if r.opts.runs("a") && !(r.medianIngest(name) > 0) {
			errs = append(errs, fmt.Errorf("phase a: no ingest rate for %s", name))
		}
		if r.opts.runs("b") && r.latency.runs[name].res.Latency.Count == 0 {
			errs = append(errs, fmt.Errorf("phase b: no latency for %s", name))
		}
	}
	if r.opts.runs("c") && !(r.sustained.eps > 0) {
		errs = append(errs, errors.New("phase c: no sustained rate"))
	}
	if r.opts.runs("d") {
		for _, x := range []struct {
			name string
			run  loadRun
		}{{"boomerang closed loop", r.e2e.closed.run}, {"boomerang fixed rate", r.e2e.fixed.run}, {"limit closed loop", lastRun(r.e2e.limit)}} {
			if !(delivered(x.run) > 0) {
				errs = append(errs, fmt.Errorf("phase d: no callbacks from %s", x.name))
			}
		}
		if seed, _ := r.e2e.seedBest(); seed.res.Callbacks == nil {
			errs = append(errs, errors.New("phase d: no result from seedlike"))
		}
		if !finite(r.commandsPerEvent()) {
			errs = append(errs, errors.New("phase d: no Redis commands per event"))
		}
	}
	if r.opts.runs("e") && (r.memory == nil || r.memory.queued == 0) {
		errs = append(errs, errors.New("phase e: nothing queued"))
	}
	return errors.Join(errs...)
}

// lastRun is the last of runs, or an empty run.
func lastRun(runs []loadRun) loadRun {
	if len(runs) == 0 {
		return loadRun{}
	}
	return runs[len(runs)-1]
}

// runs returns every load run of the report.
func (r *report) runs() []loadRun {
	var out []loadRun
	for _, name := range []string{baselineName, boomerangName} {
		out = append(out, r.ingest.runs[name]...)
		if x, ok := r.latency.runs[name]; ok {
			out = append(out, x)
		}
	}
	out = append(out, r.e2e.limit...)
	out = append(out, r.e2e.boomerangRuns()...)
	return append(out, r.sustained.run, r.e2e.fixed.run, r.e2e.seedRate, r.e2e.seedClosed)
}

// otherLoad is the average CPU other processes used on core 0 and core 1
// during the load runs, weighted by their duration; NaN when not pinned.
func (r *report) otherLoad() (float64, float64) {
	var w, s0, s1 float64
	for _, x := range r.runs() {
		if !finite(x.use.other0) || !finite(x.use.other1) || x.use.wall <= 0 {
			continue
		}
		d := x.use.wall.Seconds()
		w += d
		s0 += max(x.use.other0, 0) * d
		s1 += max(x.use.other1, 0) * d
	}
	if w == 0 {
		return math.NaN(), math.NaN()
	}
	return s0 / w, s1 / w
}

// markdown renders the report.
func (r *report) markdown() string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	m := r.machine
	p("## Boomerang benchmark, %s\n\n", r.date.Format("2006-01-02 15:04 MST"))
	if r.opts.quick {
		p("**--quick smoke run**: short runs that check that everything works and produces numbers; the verdicts below are not enforced and not meaningful at these durations.\n\n")
	}
	p("- Command: `%s` (took %.0f s)\n", r.opts.command(), r.elapsed.Seconds())
	p("- Code: %s\n", m.revision)
	p("- Machine: %d cores (nproc), %s, Linux %s; %s; Redis %s (a private redis-server, no persistence)\n", m.cpus, m.cpuModel, m.kernel, m.goVersion, m.redis)
	if r.pinNote == "" {
		p("- Placement: the server under test on core 0 with GOMAXPROCS=1; loadgen and Redis on core 1 (taskset)\n")
	} else {
		p("- Placement: servers run with GOMAXPROCS=1; %s\n", r.pinNote)
	}
	p("- Load average (1/5/15 min) at start: %s; at end: %s\n", m.loadStart, r.loadEnd)
	if o0, o1 := r.otherLoad(); finite(o0) {
		p("- Other processes of the machine (not the benchmark's) used on average %.0f%% of core 0 and %.0f%% of core 1 during the load runs (per run in the tables below)\n", o0, o1)
	}
	pacing := "the server's default"
	if r.opts.backlogTarget != 0 {
		pacing = fmt.Sprint(r.opts.backlogTarget)
	}
	p("- Each load run: %v warmup + %v measured; closed loop = %d connections; Boomerang with workers: %d, backlog_target (ingest pacing): %s, route `\"*\"` accept\n\n",
		r.opts.warmup, r.opts.duration, r.opts.conns, r.opts.workers, pacing)

	p("### Targets\n\n")
	p("| metric | baseline | Boomerang | Boomerang / baseline | target | result |\n|---|---|---|---|---|---|\n")
	for _, c := range r.checks() {
		p("| %s | %s | %s | %s | %s | **%s** |\n", c.metric, c.baseline, c.boomerang, c.ratio, c.target, c.verdict())
	}

	if r.opts.runs("a") {
		r.ingestMarkdown(&w)
	}
	if r.opts.runs("b") {
		r.latencyMarkdown(&w)
	}
	if r.opts.runs("c") {
		r.sustainedMarkdown(&w)
	}
	if r.opts.runs("d") {
		r.e2eMarkdown(&w)
		p("\n### Redis work per event (phase d, Boomerang)\n\n")
		w.WriteString(r.workMarkdown())
	}
	if r.memory != nil {
		r.memoryMarkdown(&w)
	}
	if r.compare != nil {
		r.compareMarkdown(&w)
	}
	return w.String()
}

func (r *report) ingestMarkdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n### a. Ingest, closed loop, %d connections\n\n", r.opts.conns)
	p("Runs alternate baseline and Boomerang, each on a flushed Redis.\n\n")
	p("| run | server | req/s (2xx) | errors | latency p50 / p99 | server CPU | server CPU per request | Redis CPU | loadgen CPU | other processes, core 0 / 1 |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for i := range r.opts.reps {
		for _, name := range []string{baselineName, boomerangName} {
			runs := r.ingest.runs[name]
			if i >= len(runs) {
				continue
			}
			x := runs[i]
			p("| %d | %s | %s | %d | %s / %s | %s | %s | %s | %s | %s |\n", i+1, name, rate(ingestRate(x.res)), x.res.errors(),
				ms(x.res.Latency.P50), ms(x.res.Latency.P99), pct(x.use, x.use.server), cpuPer(x.use, ingestRate(x.res)),
				pct(x.use, x.use.redis), pct(x.use, x.use.loadgen), x.use.others())
		}
	}

}

func (r *report) latencyMarkdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n### b. Ingest latency at a fixed %.0f req/s\n\n", r.latency.rate)
	for _, t := range r.latency.tooFast {
		p("At %.0f req/s the load generator itself fell behind (send lag p99 %.1f ms, over the %.0f ms that makes a run a measure of the server rather than of the generator, which shares its core with Redis), so the phase went down to 0.7× that rate.\n\n", t.rate, t.lagP99, maxSendLagMs)
	}
	p("Latency runs from each request's scheduled send time, so a server that falls behind is charged for the queue it causes (no coordinated omission).\n\n")
	p("| server | p50 | p90 | p99 | p99.9 | max | dropped | errors | loadgen send lag p99 | server CPU | other processes, core 0 / 1 |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, name := range []string{baselineName, boomerangName} {
		x := r.latency.runs[name]
		l := x.res.Latency
		lag := "n/a"
		if x.res.SendLag != nil {
			lag = ms(x.res.SendLag.P99)
		}
		p("| %s | %s | %s | %s | %s | %s | %d | %d | %s | %s | %s |\n", name, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max),
			x.res.Dropped, x.res.errors(), lag, pct(x.use, x.use.server), x.use.others())
	}

}

func (r *report) sustainedMarkdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n### c. Sustained ingest + processing (no callbacks)\n\n")
	p("Boomerang in a closed loop for the warmup and measured time, then the benchmark waits until the event queue (`ZCARD` of `events` in every partition) is empty (at most %v). Sustained rate = events accepted / (load time + drain time).\n\n", r.opts.drainMax)
	p("| route | accepted | load time | backlog at end of load | drain time | left | sustained | ingest during load | server CPU load / drain | other processes, core 0 / 1 |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range []struct {
		route string
		s     sustainedResult
	}{{"accept (settled at ingest)", r.sustained}, {"forward to a keep-nothing target (through the workers)", r.sustainedForward}} {
		s := x.s
		if s.accepted == 0 && s.run.use.wall == 0 {
			continue
		}
		p("| %s | %d | %.1f s | %d | %.1f s | %d | %s events/s | %s req/s | %s / %.0f%% | %s |\n", x.route, s.accepted, s.loadSeconds, s.backlogEnd, s.drainSeconds, s.left,
			rate(s.eps), rate(ingestRate(s.run.res)), pct(s.run.use, s.run.use.server), s.drainCPU, s.run.use.others())
	}
	p("\nThe target is judged on the accept route. The forward route is the path through the workers (claim, the forward's POST to `bench/limit` on core 1, finish): no target, reported so that a change to it shows. The target's own CPU shows under other processes on core 1.\n")

}

func (r *report) e2eMarkdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	e := r.e2e
	p("\n### d. End to end with callbacks\n\n")
	p("Every event carries callback URLs on loadgen's receiver; delay is from loadgen reading the 202 to the callback's arrival. Callbacks/s = callbacks received / (measured time + time from the end of the load to the last callback): with none lost, events accepted / (load time + drain time). ")
	p("The limit server (bench/limit) does Boomerang's HTTP work and keeps nothing: Gin, encoding/json, a 202, one callback POST from a pool of %d senders over keep-alive; it is the ceiling. It and Boomerang run alternated in a closed loop (%d connections), %d times each; Boomerang's median is its capacity. ", r.opts.workers, r.opts.conns, r.opts.reps)
	p("Boomerang then runs at a fixed %.0f events/s (0.8× that capacity unless `--e2e-rate` is given), its backlog sampled every second. ", e.rate)
	p("The seed-like server (a re-implementation of the original package's documented callback behaviour: one callback per event on a new connection, never retried, because the original module is not reachable from this machine) runs at the same fixed rate and in a closed loop. Server CPU per callback is the server's CPU over the whole run (warmup and drain included) divided by every callback it caused.\n\n")
	p("| server | load | accepted req/s | callbacks/s | server CPU per callback | last callback after load | delay p50 | delay p99 | backlog at end of load (events / callbacks) | lost | duplicates | server CPU | Redis CPU | loadgen CPU | other processes, core 0 / 1 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	closedLoad := fmt.Sprintf("closed, %d conns", r.opts.conns)
	for i := range max(len(e.limit), len(e.closedRuns)) {
		if i < len(e.limit) {
			x := e.limit[i]
			p("| limit (keeps nothing) | %s | %s | %s | %s | %s | %s | %s | n/a (in memory) | %s | %s | %s | %s | %s | %s |\n", closedLoad, rate(ingestRate(x.res)), rate(delivered(x)), us(cpuPerCallback(x)), cbTail(x.res),
				cbMs(x.res, 50), cbMs(x.res, 99), cbCount(x.res, "lost"), cbCount(x.res, "dup"), pct(x.use, x.use.server), pct(x.use, x.use.redis), pct(x.use, x.use.loadgen), x.use.others())
		}
		if i < len(e.closedRuns) {
			r.e2eRow(w, closedLoad, e.closedRuns[i])
		}
	}
	r.e2eRow(w, fmt.Sprintf("%.0f/s", e.rate), e.fixed)
	for _, x := range []struct {
		load string
		run  loadRun
	}{{fmt.Sprintf("%.0f/s", e.rate), e.seedRate}, {closedLoad, e.seedClosed}} {
		p("| seed-like | %s | %s | %s | %s | %s | %s | %s | n/a (no queue) | %s | %s | %s | %s | %s | %s |\n", x.load, rate(ingestRate(x.run.res)), rate(delivered(x.run)), us(cpuPerCallback(x.run)), cbTail(x.run.res),
			cbMs(x.run.res, 50), cbMs(x.run.res, 99), cbCount(x.run.res, "lost"), cbCount(x.run.res, "dup"), pct(x.run.use, x.run.use.server), pct(x.run.use, x.run.use.redis), pct(x.run.use, x.run.use.loadgen), x.run.use.others())
	}
	for _, x := range []struct {
		load string
		run  e2eRun
	}{{"closed loop (the median run)", e.closed}, {fmt.Sprintf("%.0f/s", e.rate), e.fixed}} {
		if len(x.run.backlog) == 0 {
			continue
		}
		var parts []string
		for _, b := range x.run.backlog {
			parts = append(parts, fmt.Sprintf("%.1fs: %d", b.at.Seconds(), b.events+b.callbacks))
		}
		p("\nBoomerang's backlog (events + callbacks queued or in flight), %s: %s.", x.load, strings.Join(parts, ", "))
	}
	p(" At the fixed rate it grew by %s events/s per second over the measured part (least squares); sustained means it does not grow.\n", signed(backlogGrowth(e.fixed.backlog, r.opts.warmup)))
}

// e2eRow is one row of Boomerang in the end-to-end table.
func (r *report) e2eRow(w io.Writer, load string, x e2eRun) {
	be := x.backlogEnd()
	res, use := x.run.res, x.run.use
	fmt.Fprintf(w, "| boomerang | %s | %s | %s | %s | %s | %s | %s | %d / %d | %s | %s | %s | %s | %s | %s |\n", load, rate(ingestRate(res)), rate(delivered(x.run)), us(cpuPerCallback(x.run)), cbTail(res),
		cbMs(res, 50), cbMs(res, 99), be.events, be.callbacks, cbCount(res, "lost"), cbCount(res, "dup"), pct(use, use.server), pct(use, use.redis), pct(use, use.loadgen), use.others())
}

func (r *report) memoryMarkdown(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	mm := r.memory
	p("\n### e. Memory with a backlog\n\n")
	p("Boomerang's route forwards to a local target that never answers, so only `workers` events are in flight and the rest stay queued in Redis; ingest pacing is off (backlog_target: -1) so the backlog fills at full speed. Payload ~200 bytes.\n\n")
	p("| events queued | fill time | server RSS | server peak RSS | Redis used_memory growth | per event |\n|---|---|---|---|---|---|\n")
	p("| %d | %.0f s | %.1f MiB | %.1f MiB | %.1f MiB | %.0f bytes |\n", mm.queued, mm.fillSeconds, mib(mm.rss), mib(mm.peak), mib(mm.redisBytes),
		float64(mm.redisBytes)/float64(max(mm.queued, 1)))
}

// workMarkdown renders the Redis work of phase d.
func (r *report) workMarkdown() string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	e, c := r.e2e, r.calib
	p("From `INFO commandstats` and `INFO stats` before and after each Boomerang run (the benchmark's own INFO and ZCARD taken out), divided by the callbacks delivered meanwhile (warmup included). The target is judged on the fixed-rate run.\n\n")
	if c.scriptCommandsCounted && c.txCommandsCounted {
		p("Commands include those run by Lua scripts and inside MULTI/EXEC: verified on this Redis by a tiny experiment (an EVAL running one SET counted eval 1 + set 1; a MULTI/SET/INCR/EXEC counted 4). ")
	} else {
		p("**Not verified** that this Redis counts the commands run by scripts and inside MULTI/EXEC: an EVAL running one SET, or a MULTI/SET/INCR/EXEC, did not count as expected (script %v, transaction %v). ",
			c.scriptCommandsCounted, c.txCommandsCounted)
	}
	p("Round trips are `total_reads_processed`, the read events on client sockets: a request, or a whole pipeline, is one (verified: one EVAL counted %d, one MULTI..EXEC pipeline %d).\n\n", c.evalReads, c.pipelineReads)
	runs := []struct {
		name string
		run  e2eRun
	}{{"closed loop", e.closed}, {fmt.Sprintf("%.0f/s", e.rate), e.fixed}}
	p("| | closed loop | %.0f/s |\n|---|---|---|\n", e.rate)
	row := func(label string, f func(e2eRun) string) {
		p("| %s | %s | %s |\n", label, f(runs[0].run), f(runs[1].run))
	}
	row("callbacks delivered", func(x e2eRun) string { return fmt.Sprint(x.delivered) })
	row("**commands per event**", func(x e2eRun) string { return fmt.Sprintf("**%.2f**", perEvent(x.work.total(), x.delivered)) })
	row("round trips per event", func(x e2eRun) string { return fmt.Sprintf("%.2f", perEvent(x.work.reads, x.delivered)) })
	row("script calls + transactions per event (EVALSHA + EVAL + EXEC)", func(x e2eRun) string { return fmt.Sprintf("%.2f", perEvent(x.work.requests(), x.delivered)) })
	row("Redis CPU per event (redis-server's user + system time over the run)", func(x e2eRun) string {
		return fmt.Sprintf("%.1f µs", perEvent(x.run.use.redis.Microseconds(), x.delivered))
	})
	row("server CPU per event", func(x e2eRun) string {
		return fmt.Sprintf("%.1f µs", perEvent(x.run.use.server.Microseconds(), x.delivered))
	})
	names := map[string]bool{}
	for _, x := range runs {
		for n := range x.run.work.calls {
			names[n] = true
		}
	}
	for _, n := range e.fixed.work.sorted() {
		row("`"+n+"` per event", func(x e2eRun) string { return fmt.Sprintf("%.3f", perEvent(x.work.calls[n], x.delivered)) })
		delete(names, n)
	}
	for _, n := range e.closed.work.sorted() {
		if names[n] {
			row("`"+n+"` per event", func(x e2eRun) string { return fmt.Sprintf("%.3f", perEvent(x.work.calls[n], x.delivered)) })
		}
	}
	return w.String()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// rate formats a rate, "n/a" when it was not measured.
func rate(v float64) string {
	if !finite(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", v)
}

// ratio formats a/b, "n/a" when it has no meaning.
func ratio(a, b float64) string {
	if !finite(a) || !finite(b) || b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// us formats microseconds of CPU per event.
func us(v float64) string {
	if !finite(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f µs CPU", v)
}

// signed formats a rate that may be negative.
func signed(v float64) string {
	if !finite(v) {
		return "n/a"
	}
	return fmt.Sprintf("%+.0f", v)
}

func ms(v float64) string {
	if !finite(v) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f ms", v)
}

func pct(u usage, cpu time.Duration) string {
	if u.wall <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", u.pct(cpu))
}

// cpuPer is the server's CPU time per request at rps requests/s.
func cpuPer(u usage, rps float64) string {
	if u.wall <= 0 || !(rps > 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f µs", u.pct(u.server)/100/rps*1e6)
}

func cbRate(r loadResult) string {
	if r.Callbacks == nil {
		return "n/a"
	}
	return rate(r.Callbacks.deliveredEPS(r.DurationSeconds))
}

func cbTail(r loadResult) string {
	if r.Callbacks == nil || r.Callbacks.Received == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f s", r.Callbacks.TailSeconds)
}

func cbMs(r loadResult, q int) string {
	if r.Callbacks == nil || r.Callbacks.Received == 0 {
		return "n/a"
	}
	if q == 50 {
		return ms(r.Callbacks.Delay.P50)
	}
	return ms(r.Callbacks.Delay.P99)
}

func cbCount(r loadResult, what string) string {
	cb := r.Callbacks
	if cb == nil {
		return "n/a"
	}
	if what == "lost" {
		return fmt.Sprintf("%d of %d", cb.Lost, cb.Accepted)
	}
	return fmt.Sprint(cb.Duplicates)
}
