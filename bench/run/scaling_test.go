package main

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsScalingDuration(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want time.Duration
	}{
		{"default", []string{"--scaling"}, scalingDuration},
		{"given", []string{"--scaling", "--duration", "3s"}, 3 * time.Second},
		{"quick", []string{"--scaling", "--quick"}, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if !o.scaling || o.duration != tc.want {
				t.Errorf("got scaling %v, duration %v; want true, %v", o.scaling, o.duration, tc.want)
			}
		})
	}
}

// TestWorkSinceTakesOwnCommandsOut checks the arithmetic of a node's
// command count: the INFO of the first snapshot is counted by Redis in the
// second, and the benchmark's own commands in between (ZCARD, the INFO cpu
// and INFO of the second snapshot) are counted by the benchmark.
func TestWorkSinceTakesOwnCommandsOut(t *testing.T) {
	snap := func(processed int64, cpu float64, own map[string]int64, ownReads int64) nodeSnapshot {
		in := info{fields: map[string]string{}, cmds: map[string]cmdStat{}}
		in.fields["total_commands_processed"] = itoa(processed)
		return nodeSnapshot{snapshot: snapshot{info: in, own: own, ownReads: ownReads}, cpu: cpu}
	}
	// Before: 2 INFOs counted so far. Between: Boomerang ran 1000 commands,
	// the benchmark 16 ZCARD, then INFO cpu and INFO (the second not yet
	// counted by Redis when it answers). Redis's count moves by 1000 + the
	// first snapshot's INFO + 16 + the INFO cpu.
	a := snap(50, 1.0, map[string]int64{"info": 2}, 2)
	b := snap(50+1000+1+16+1, 1.25, map[string]int64{"info": 4, "zcard": 16}, 5)
	w := workSince([]nodeSnapshot{a}, []nodeSnapshot{b})
	if got, want := w[0].commands, int64(1000); got != want {
		t.Errorf("commands: got %d, want %d", got, want)
	}
	if got, want := w[0].cpu, 0.25; got != want {
		t.Errorf("cpu: got %v, want %v", got, want)
	}
}

func TestMachineBusyAddsCores(t *testing.T) {
	a := map[int]coreTimes{0: {proc: 100, total: 1000}, 1: {proc: 0, total: 1000}}
	b := map[int]coreTimes{0: {proc: 200, total: 1100}, 1: {proc: 50, total: 1100}}
	if got, want := machineBusy(a, b), 1.5; got != want {
		t.Errorf("got %v cores, want %v", got, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestScalingReportRatiosAndCosts(t *testing.T) {
	node := func(commands int64, cpu float64) nodeWork {
		return nodeWork{commands: commands, cpu: cpu, work: commandDelta{calls: map[string]int64{"evalsha": commands / 4}}}
	}
	run := func(rate float64, events int64, nodes ...nodeWork) scalingRun {
		return scalingRun{rate: rate, events: events, nodes: nodes, server: time.Duration(events) * 200 * time.Microsecond}
	}
	rep := &scalingReport{points: []scalingPoint{
		{kind: kindSingle, instances: 1, sustained: run(1000, 1000, node(4000, 0.1)), e2e: run(500, 1000, node(8000, 0.2))},
		{kind: kindSingle, instances: 2, sustained: run(1500, 1000, node(4000, 0.1)), e2e: run(1000, 1000, node(8000, 0.2))},
		{kind: kindCluster, instances: 1, sustained: run(2000, 1000, node(1000, 0.03), node(1000, 0.03), node(2000, 0.04)),
			e2e: run(750, 1000, node(3000, 0.05), node(3000, 0.05), node(2000, 0.05))},
	}}
	if err := rep.check(); err != nil {
		t.Fatal(err)
	}
	md := rep.markdown()
	for _, want := range []string{
		"| 2 instances vs 1 | 1.50× | 2.00× | n/a | n/a |",
		"| cluster vs single Redis, 1 instance(s) | 2.00× | 1.50× |",
		"| single | 1 | 1000 | 500 |",
		"| 8.00 | 200.0 | 200.0 |",                                   // single e2e: 8 commands, 200 µs Redis and server CPU per event
		"| 8.00 (3.00 / 3.00 / 2.00) | 50.0 / 50.0 / 50.0 | 200.0 |", // cluster e2e, per node
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	rep.points[0].e2e.rate = 0
	if rep.check() == nil {
		t.Error("check: got no error for a configuration without a rate")
	}
}
