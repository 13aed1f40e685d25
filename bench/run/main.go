// Command run is Boomerang's benchmark, what `make bench` runs:
//
//	go run ./bench/run [--duration 5s] [--quick] [--memory] [--out docs/bench-result.md]
//
// It builds cmd/server, bench/baseline, bench/limit, cmd/loadgen and
// bench/seedlike into a temporary directory, starts a private redis-server
// on a free loopback port (no persistence), and measures, in one run and
// under the same conditions:
//
//	a. ingest, closed loop, 128 connections: requests/s of the one-round-trip
//	   baseline and Boomerang, alternated and repeated, median of each
//	c. sustained ingest plus processing, route accept, no callbacks:
//	   events accepted / (load time + time to drain the backlog)
//	b. ingest latency at a fixed rate, half of c's rate, stepped down while
//	   the load generator itself falls behind (no coordinated omission)
//	d. end to end with callbacks: the keep-nothing limit server (bench/limit)
//	   and Boomerang alternated in a closed loop (the headline ratio, with
//	   server CPU per callback), then Boomerang at 0.8 x its rate: delay,
//	   backlog growth, lost and duplicate callbacks, and the Redis commands
//	   and round trips per event from INFO commandstats; and the seed-like
//	   server (bench/seedlike) at that rate and in a closed loop
//	e. with --memory: server RSS and Redis memory per event with a backlog
//	   of --memory-events queued events
//	f. with --compare REF or --against YAML: this tree's server beside
//	   another build or configuration, alternated, with ratios
//
// With --scaling it runs the scaling mode instead (scaling.go): 1, 2 and 4
// instances on one private redis-server and on a private 3-master Redis
// Cluster, with Redis commands and CPU per event per node.
//
// Servers run with GOMAXPROCS=1 pinned to core 0 (taskset -c 0); the load
// generator and Redis share core 1. It prints a Markdown table of every
// figure against the targets of the benchmark issues, PASS or MISS, and
// writes it to --out when given. Every child process runs in its own
// process group and is killed on every exit path; all traffic stays on
// 127.0.0.1. docs/benchmarks.md explains each phase.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errMissed):
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(3)
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// errMissed is returned with --strict when a target was missed.
var errMissed = errors.New("a target was missed (--strict)")

// run parses args, runs the benchmark and prints the report to stdout;
// progress goes to progress.
func run(ctx context.Context, args []string, stdout, progress io.Writer) error {
	opts, err := parseFlags(args, progress)
	if err != nil {
		return err
	}
	b, err := newBench(opts, progress)
	if err != nil {
		return err
	}
	defer b.close()
	if opts.scaling {
		return b.scaling(ctx, stdout)
	}
	rep, err := b.run(ctx)
	if err != nil {
		return err
	}
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if opts.out != "" {
		if err := os.WriteFile(opts.out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		b.logf("wrote %s", opts.out)
	}
	if err := rep.smokeCheck(); err != nil {
		return err
	}
	if opts.strict && !opts.quick && rep.missed() {
		return errMissed
	}
	return nil
}
