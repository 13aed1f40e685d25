package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// options is the command line.
type options struct {
	duration      time.Duration // measured part of every load run; default 5s (--quick 2s)
	warmup        time.Duration // unmeasured load before it; default 1s (--quick 500ms)
	reps          int           // closed-loop runs per server in phase a; default 2 (--quick 1)
	conns         int           // closed-loop connections; default 128
	rate          float64       // fixed rate of phase b; 0: half of Boomerang's sustained capacity (report.latencyRate)
	e2eRate       float64       // fixed rate of phase d; 0: 0.8 x Boomerang's closed-loop end-to-end rate
	workers       int           // Boomerang's workers; default 64, the server's default
	backlogTarget int           // Boomerang's backlog_target; 0 leaves the server's default
	drainMax      time.Duration // bound of every wait for a backlog or callbacks to drain; default 30s (--quick 10s)
	quick         bool          // smoke run: short, targets reported but not enforced
	memory        bool          // run phase e
	memoryEvents  int           // backlog of phase e; default 1,000,000
	out           string        // also write the report here
	strict        bool          // exit 3 when a target is missed
	noPin         bool          // do not use taskset
	compare       string        // git ref whose cmd/server phase f measures beside this tree's; "" skips f
	against       string        // YAML: phase f measures this tree's server with it beside this tree's without
	phases        string        // letters of the phases to run; default "abcd", plus "e" with --memory
	profile       string        // directory for CPU profiles of Boomerang's measured windows; "" = none
	scaling       bool          // the scaling mode (scaling.go) instead of the phases
	args          []string      // as given, for the report
}

func parseFlags(args []string, out io.Writer) (options, error) {
	o := options{args: args}
	fs := flag.NewFlagSet("bench/run", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: go run ./bench/run [flags]   (Boomerang vs the one-round-trip baseline; see docs/benchmarks.md)")
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "measured duration of every load run (--quick: 2s)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each run (--quick: 500ms)")
	fs.IntVar(&o.reps, "reps", 2, "closed-loop runs per server in phase a, alternated; the median counts (--quick: 1)")
	fs.IntVar(&o.conns, "conns", 128, "connections of the closed-loop phases")
	fs.Float64Var(&o.rate, "rate", 0, "fixed arrival rate of the latency phase, requests/s; 0: half of Boomerang's sustained capacity measured in phase c (or of its ingest in phase a)")
	fs.Float64Var(&o.e2eRate, "e2e-rate", 0, "fixed rate of the end-to-end phase, events/s; 0: 0.8 x Boomerang's closed-loop end-to-end rate, measured just before")
	fs.IntVar(&o.workers, "workers", 64, "Boomerang's workers setting (the server's default is 64)")
	fs.IntVar(&o.backlogTarget, "backlog-target", 0, "Boomerang's backlog_target (ingest pacing; -1 turns it off); 0 keeps the server's default")
	fs.DurationVar(&o.drainMax, "drain-max", 30*time.Second, "longest wait for a backlog or for callbacks to drain (--quick: 10s)")
	fs.BoolVar(&o.quick, "quick", false, "smoke run for CI (~30s): checks that everything runs and produces numbers; targets are not enforced")
	fs.BoolVar(&o.memory, "memory", false, "also run the memory phase: a backlog of --memory-events queued events")
	fs.IntVar(&o.memoryEvents, "memory-events", 1_000_000, "events queued in the memory phase")
	fs.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	fs.BoolVar(&o.strict, "strict", false, "exit with status 3 when a target is missed (never with --quick)")
	fs.BoolVar(&o.noPin, "no-pin", false, "do not pin processes to cores with taskset")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of Boomerang's measured windows (phases a and d) to this directory, via its debug_addr")
	fs.StringVar(&o.phases, "phases", "abcd", "phases to run: a ingest, b latency, c sustained, d end to end, e memory (--memory adds e), f compare (--compare adds f)")
	fs.StringVar(&o.compare, "compare", "", "git ref (commit, branch, tag) whose cmd/server is measured beside this tree's in phase f, alternated, with ratios")
	fs.StringVar(&o.against, "against", "", "YAML added to the configuration of a second run of this tree's server, measured beside the first in phase f (instead of --compare), such as 'metrics_disabled: true'")
	fs.BoolVar(&o.scaling, "scaling", false, "the scaling mode instead of the phases: 1, 2 and 4 Boomerang instances on one Redis and on a 3-master cluster (--duration defaults to 8s)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.memory && !strings.Contains(o.phases, "e") {
		o.phases += "e"
	}
	if (o.compare != "" || o.against != "") && !strings.Contains(o.phases, "f") {
		o.phases += "f"
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if o.scaling && !o.quick && !given["duration"] {
		o.duration = scalingDuration
	}
	if o.quick {
		if !given["duration"] {
			o.duration = 2 * time.Second
		}
		if !given["warmup"] {
			o.warmup = 500 * time.Millisecond
		}
		if !given["reps"] {
			o.reps = 1
		}
		if !given["drain-max"] {
			o.drainMax = 10 * time.Second
		}
	}
	return o, o.validate()
}

// validate keeps every run and wait bounded.
func (o options) validate() error {
	var errs []error
	if o.duration < 500*time.Millisecond || o.duration > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--duration must be 500ms..10m, got %v", o.duration))
	}
	if o.warmup < 0 || o.warmup > time.Minute {
		errs = append(errs, fmt.Errorf("--warmup must be 0..1m, got %v", o.warmup))
	}
	if o.reps < 1 || o.reps > 10 {
		errs = append(errs, fmt.Errorf("--reps must be 1..10, got %d", o.reps))
	}
	if o.conns < 1 || o.conns > 4096 {
		errs = append(errs, fmt.Errorf("--conns must be 1..4096, got %d", o.conns))
	}
	if !(o.rate >= 0 && o.rate <= 200_000) {
		errs = append(errs, fmt.Errorf("--rate must be 0..200000, got %v", o.rate))
	}
	if o.e2eRate < 0 || o.e2eRate > 200_000 {
		errs = append(errs, fmt.Errorf("--e2e-rate must be 0..200000, got %v", o.e2eRate))
	}
	if o.workers < 1 || o.workers > 4096 {
		errs = append(errs, fmt.Errorf("--workers must be 1..4096, got %d", o.workers))
	}
	if o.backlogTarget < -1 {
		errs = append(errs, fmt.Errorf("--backlog-target must be -1 (off), 0 (the server's default) or positive, got %d", o.backlogTarget))
	}
	if o.drainMax < time.Second || o.drainMax > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--drain-max must be 1s..10m, got %v", o.drainMax))
	}
	if o.memoryEvents < 1000 || o.memoryEvents > 20_000_000 {
		errs = append(errs, fmt.Errorf("--memory-events must be 1000..20000000, got %d", o.memoryEvents))
	}
	if o.phases == "" || strings.Trim(o.phases, "abcdef") != "" {
		errs = append(errs, fmt.Errorf("--phases must be letters among a, b, c, d, e, f, got %q", o.phases))
	}
	if o.runs("f") && (o.compare == "") == (o.against == "") {
		errs = append(errs, errors.New("phase f needs one of --compare REF and --against YAML"))
	}
	if strings.HasPrefix(o.compare, "-") {
		errs = append(errs, fmt.Errorf("--compare must be a git ref, got %q", o.compare))
	}
	return errors.Join(errs...)
}

// runs reports whether phase p (a letter) is to run.
func (o options) runs(p string) bool { return strings.Contains(o.phases, p) }

// command is the command line that reproduces this run.
func (o options) command() string {
	if len(o.args) == 0 {
		return "go run ./bench/run"
	}
	return "go run ./bench/run " + strings.Join(o.args, " ")
}
