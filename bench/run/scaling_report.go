package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/boomerang-events/boomerang/store"
)

// point returns the configuration of kind with n instances, or nil.
func (r *scalingReport) point(kind string, n int) *scalingPoint {
	for i := range r.points {
		if r.points[i].kind == kind && r.points[i].instances == n {
			return &r.points[i]
		}
	}
	return nil
}

// check fails a run that produced no numbers.
func (r *scalingReport) check() error {
	var errs []error
	for _, p := range r.points {
		if !(p.sustained.rate > 0) || !(p.e2e.rate > 0) {
			errs = append(errs, fmt.Errorf("scaling: %s, %d instances: no rate measured", p.kind, p.instances))
		}
	}
	return errors.Join(errs...)
}

// perNode formats f of each node, joined by " / ".
func perNode(nodes []nodeWork, f func(nodeWork) string) string {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = f(n)
	}
	return strings.Join(s, " / ")
}

// costs formats a run's costs per event: Redis commands (all nodes, then
// per node), Redis CPU per node, server CPU, and what the machine used.
func (run scalingRun) costs() []string {
	var cmds int64
	for _, n := range run.nodes {
		cmds += n.commands
	}
	perEv := func(v float64) float64 { return v / float64(max(run.events, 1)) }
	cmdCell := fmt.Sprintf("%.2f", perEvent(cmds, run.events))
	if len(run.nodes) > 1 {
		cmdCell += " (" + perNode(run.nodes, func(n nodeWork) string { return fmt.Sprintf("%.2f", perEvent(n.commands, run.events)) }) + ")"
	}
	return []string{
		cmdCell,
		perNode(run.nodes, func(n nodeWork) string { return fmt.Sprintf("%.1f", 1e6*perEv(n.cpu)) }),
		fmt.Sprintf("%.1f", 1e6*perEv(run.server.Seconds())),
		fmt.Sprintf("%.2f", run.busy),
		fmt.Sprintf("%.2f", run.other()),
	}
}

// delay is the highest p50 and p99 of the callback delay over the
// loadgens of an end-to-end run.
func (run scalingRun) delay() (p50, p99 float64) {
	for _, l := range run.loads {
		if l.Callbacks != nil {
			p50, p99 = max(p50, l.Callbacks.Delay.P50), max(p99, l.Callbacks.Delay.P99)
		}
	}
	return p50, p99
}

// markdown is the report.
func (r *scalingReport) markdown() string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	m := r.machine
	p("## Boomerang scaling, %s\n\n", r.date.Format("2006-01-02 15:04 MST"))
	p("- Command: `%s` (took %.0f s)\n", r.opts.command(), r.elapsed.Seconds())
	p("- Code: %s\n", m.revision)
	p("- Machine: %d cores (nproc), %s, Linux %s; %s; Redis %s (private redis-servers, no persistence)\n", m.cpus, m.cpuModel, m.kernel, m.goVersion, m.redis)
	p("- Placement: not pinned; every instance runs with GOMAXPROCS=1, and the instances, the loadgens and every Redis node share the %d cores\n", m.cpus)
	p("- Load average (1/5/15 min) at start: %s; at end: %s\n", m.loadStart, r.loadEnd)
	p("- Each run: %v warmup + %v measured, closed loop of %d connections in all, split evenly over one loadgen per instance; workers: %d per instance; route `\"*\"` accept; %d partitions\n\n",
		r.opts.warmup, r.opts.duration, r.opts.conns, r.opts.workers, store.DefaultPartitions)

	p("### Ratios\n\n")
	p("| | single Redis, sustained | single Redis, end to end | cluster, sustained | cluster, end to end |\n|---|---|---|---|---|\n")
	for _, n := range scalingInstances[1:] {
		row := fmt.Sprintf("| %d instances vs 1", n)
		for _, kind := range []string{kindSingle, kindCluster} {
			a, one := r.point(kind, n), r.point(kind, 1)
			if a == nil || one == nil {
				row += " | n/a | n/a"
				continue
			}
			row += " | " + ratio(a.sustained.rate, one.sustained.rate) + " | " + ratio(a.e2e.rate, one.e2e.rate)
		}
		p("%s |\n", row)
	}
	p("\n| | sustained | end to end |\n|---|---|---|\n")
	for _, n := range scalingInstances {
		c, s := r.point(kindCluster, n), r.point(kindSingle, n)
		if c == nil || s == nil {
			continue
		}
		p("| cluster vs single Redis, %d instance(s) | %s | %s |\n", n, ratio(c.sustained.rate, s.sustained.rate), ratio(c.e2e.rate, s.e2e.rate))
	}

	p("\n### Throughput, and the costs per event end to end\n\n")
	p("Sustained = events processed / (load time + time to drain the queues), route accept, no callbacks. End to end = callbacks received / (measured time + time from the end of the load to the last callback); the delay, from loadgen reading the 202 to the callback's arrival, is the highest of the loadgens'. Costs per event are from the end-to-end run: each node's delta over the run (warmup, load and callback tail) divided by the events called back meanwhile; Redis commands are `total_commands_processed` (commands run by scripts and inside MULTI/EXEC included), the benchmark's own INFO and ZCARD taken out; Redis CPU is `used_cpu_user + used_cpu_sys`; server CPU is every instance's together, from /proc. Per node: the cluster's masters in the order of their ports.\n\n")
	p("| Redis | instances | events/s sustained | callbacks/s end to end | callback delay p50 / p99 | lost / duplicates | Redis commands / event (per node) | Redis CPU µs / event, per node | server CPU µs / event | machine busy, cores | other processes, cores |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pt := range r.points {
		c := pt.e2e.costs()
		p50, p99 := pt.e2e.delay()
		p("| %s | %d | %s | %s | %.0f / %.0f ms | %d / %d | %s | %s | %s | %s | %s |\n", pt.kind, pt.instances, rate(pt.sustained.rate), rate(pt.e2e.rate),
			p50, p99, pt.e2e.lost, pt.e2e.dups, c[0], c[1], c[2], c[3], c[4])
	}

	p("\n### The sustained runs in detail\n\n")
	p("| Redis | instances | processed | load time | backlog at end of load | drain time | left | Redis commands / event (per node) | Redis CPU µs / event, per node | server CPU µs / event | machine busy, cores | other processes, cores |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, pt := range r.points {
		s := pt.sustained
		c := s.costs()
		p("| %s | %d | %d | %.1f s | %d | %.1f s | %d | %s | %s | %s | %s | %s |\n", pt.kind, pt.instances, s.events,
			s.wall.Seconds()-s.drainSeconds, s.backlogEnd, s.drainSeconds, s.left, c[0], c[1], c[2], c[3], c[4])
	}

	p("\n### Round trips and script calls end to end, per node\n\n")
	p("Round trips are `total_reads_processed` (a request or a whole pipeline is one). Work is grouped by partition, one script per partition touched, and by destination for flow control, so a claim of many events is several script calls; fewer calls per event means fuller batches.\n\n")
	p("| Redis | instances | events called back | round trips / event | script calls (EVALSHA) / event |\n|---|---|---|---|---|\n")
	for _, pt := range r.points {
		e := pt.e2e
		p("| %s | %d | %d | %s | %s |\n", pt.kind, pt.instances, e.events,
			perNode(e.nodes, func(n nodeWork) string { return fmt.Sprintf("%.3f", perEvent(n.work.reads, e.events)) }),
			perNode(e.nodes, func(n nodeWork) string { return fmt.Sprintf("%.3f", perEvent(n.work.requests(), e.events)) }))
	}

	p("\n### Commands per event by name, end to end, all nodes\n\n")
	p("From INFO commandstats (scripts' commands counted under their own names), the benchmark's own taken out; the 12 most called.\n\n")
	total := map[string]int64{}
	for _, pt := range r.points {
		for _, n := range pt.e2e.nodes {
			for name, c := range n.work.calls {
				total[name] += c
			}
		}
	}
	names := commandDelta{calls: total}.sorted()
	names = names[:min(12, len(names))]
	head, rule := "| command", "|---"
	for _, pt := range r.points {
		head += fmt.Sprintf(" | %s, %d", pt.kind, pt.instances)
		rule += "|---"
	}
	p("%s |\n%s|\n", head, rule)
	for _, name := range names {
		row := "| `" + name + "`"
		for _, pt := range r.points {
			var c int64
			for _, n := range pt.e2e.nodes {
				c += n.work.calls[name]
			}
			row += fmt.Sprintf(" | %.3f", perEvent(c, pt.e2e.events))
		}
		p("%s |\n", row)
	}
	return w.String()
}
