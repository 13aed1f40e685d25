package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
)

// compareResult is phase f: this tree's Boomerang and the one built from
// --compare's ref, under the same loads, alternated, --reps times each.
type compareResult struct {
	ingest    map[string][]float64 // closed-loop 2xx/s
	sustained map[string][]float64 // events/s accepted and processed, drain included
	e2e       map[string][]float64 // callbacks delivered/s, closed loop
	cpu       map[string][]float64 // server CPU per delivered callback, µs
	commands  map[string][]float64 // Redis commands per delivered callback
	redisCPU  map[string][]float64 // Redis CPU per delivered callback, µs
	lost      map[string]int64     // callbacks lost in the end-to-end runs
	// The same per event at a fixed compareRate, where batches are small.
	fixedCPU, fixedRedisCPU, fixedCommands map[string][]float64
}

// compareRate is the fixed rate of phase f's second end-to-end run: under
// the capacity of any recent build here, so both keep up, and low enough
// that batches are small.
const compareRate = 5000

// phaseCompare measures boomerangName and refName alternately: closed-loop
// ingest (as phase a), sustained ingest plus processing (as phase c), end
// to end in a closed loop (as phase d) and at a fixed compareRate, so that a change is judged
// against the code before it in one run, on one machine, under one load.
func (b *bench) phaseCompare(ctx context.Context) (compareResult, error) {
	res := compareResult{
		ingest: map[string][]float64{}, sustained: map[string][]float64{}, e2e: map[string][]float64{},
		cpu: map[string][]float64{}, commands: map[string][]float64{}, redisCPU: map[string][]float64{}, lost: map[string]int64{},
		fixedCPU: map[string][]float64{}, fixedRedisCPU: map[string][]float64{}, fixedCommands: map[string][]float64{},
	}
	closed := loadSpec{conns: b.opts.conns, duration: b.opts.duration, warmup: b.opts.warmup}
	withCallbacks := closed
	withCallbacks.callbacks, withCallbacks.drain = true, b.opts.drainMax
	for i := range b.opts.reps {
		for _, name := range []string{boomerangName, refName} {
			b.logf("[f] %s (%d/%d): ingest, sustained, end to end", name, i+1, b.opts.reps)
			err := b.withServer(ctx, name, route{}, func(srv *server) error {
				run, err := b.loadgen(ctx, srv, closed, nil)
				if err != nil {
					return err
				}
				res.ingest[name] = append(res.ingest[name], ingestRate(run.res))
				return nil
			})
			if err != nil {
				return res, err
			}
			sus, err := b.sustained(ctx, name, route{})
			if err != nil {
				return res, err
			}
			res.sustained[name] = append(res.sustained[name], sus.eps)
			e2e, err := b.boomerangE2E(ctx, name, withCallbacks, "")
			if err != nil {
				return res, err
			}
			res.e2e[name] = append(res.e2e[name], delivered(e2e.run))
			res.cpu[name] = append(res.cpu[name], perEvent(e2e.run.use.server.Microseconds(), e2e.delivered))
			res.commands[name] = append(res.commands[name], perEvent(e2e.work.total(), e2e.delivered))
			res.redisCPU[name] = append(res.redisCPU[name], perEvent(e2e.run.use.redis.Microseconds(), e2e.delivered))
			if cb := e2e.run.res.Callbacks; cb != nil {
				res.lost[name] += cb.Lost
			}
			fixed := withCallbacks
			fixed.rate = compareRate
			if e2e, err = b.boomerangE2E(ctx, name, fixed, ""); err != nil {
				return res, err
			}
			res.fixedCPU[name] = append(res.fixedCPU[name], perEvent(e2e.run.use.server.Microseconds(), e2e.delivered))
			res.fixedRedisCPU[name] = append(res.fixedRedisCPU[name], perEvent(e2e.run.use.redis.Microseconds(), e2e.delivered))
			res.fixedCommands[name] = append(res.fixedCommands[name], perEvent(e2e.work.total(), e2e.delivered))
			if cb := e2e.run.res.Callbacks; cb != nil {
				res.lost[name] += cb.Lost
			}
		}
	}
	return res, nil
}

// compareMarkdown writes phase f's table: medians and the ratio of this
// tree to the ref.
func (r *report) compareMarkdown(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	c := r.compare
	other := r.opts.compare
	if r.opts.against != "" {
		other = "with `" + r.opts.against + "`"
		p("\n### f. This tree against itself %s\n\n", other)
	} else {
		p("\n### f. This tree against %s\n\n", r.refRevision)
	}
	p("Alternated, %d run(s) each, medians; a ratio above 1 is better for this tree, except CPU and commands per event.\n\n", r.opts.reps)
	p("| metric | this tree | %s | ratio |\n| --- | --- | --- | --- |\n", other)
	row := func(metric, unit string, v map[string][]float64) {
		now, ref := median(v[boomerangName]), median(v[refName])
		p("| %s | %s | %s | %s |\n", metric, num(now, unit), num(ref, unit), ratio(now, ref))
	}
	row(fmt.Sprintf("ingest, closed loop %d conns", r.opts.conns), "req/s", c.ingest)
	row("sustained ingest + processing", "events/s", c.sustained)
	row("end to end, callbacks delivered", "/s", c.e2e)
	row("server CPU per event, end to end", "µs", c.cpu)
	row("Redis CPU per event, end to end", "µs", c.redisCPU)
	commands := func(metric string, v map[string][]float64) {
		p("| %s | %.2f | %.2f | %s |\n", metric, median(v[boomerangName]), median(v[refName]), ratio(median(v[boomerangName]), median(v[refName])))
	}
	commands("Redis commands per event, end to end", c.commands)
	row(fmt.Sprintf("at a fixed %d/s: server CPU per event", compareRate), "µs", c.fixedCPU)
	row(fmt.Sprintf("at a fixed %d/s: Redis CPU per event", compareRate), "µs", c.fixedRedisCPU)
	commands(fmt.Sprintf("at a fixed %d/s: Redis commands per event", compareRate), c.fixedCommands)
	p("| callbacks lost | %d | %d | |\n", c.lost[boomerangName], c.lost[refName])
}

func num(v float64, unit string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	return strings.TrimSpace(fmt.Sprintf("%.0f %s", v, unit))
}
