package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// The scaling mode (--scaling, `make bench-scaling`): Boomerang with 1, 2
// and 4 instances on one private redis-server and on a private 3-master
// Redis Cluster. For each of the six configurations it runs two closed
// loops spread over the instances, one loadgen per instance with an equal
// share of --conns:
//
//   - sustained: route accept, no callbacks, then the backlog drained, as
//     phase c: events processed / (load time + drain time);
//   - end to end: every event with callbacks on its loadgen's receiver, as
//     phase d's closed loop: callbacks received / (measured time + tail).
//
// Around each run it reads every Redis node's INFO (total_commands_processed,
// commandstats, total_reads_processed, used_cpu_user + used_cpu_sys) and
// the CPU of every process from /proc, so that the costs per event, which
// do not depend on how the two cores are shared, can be read per node.

// scalingDuration is the measured part of each load run of the scaling
// mode, unless --duration is given.
const scalingDuration = 8 * time.Second

// scalingInstances are the numbers of Boomerang instances measured.
var scalingInstances = []int{1, 2, 4}

// clusterMasters is the number of masters of the scaling mode's cluster.
const clusterMasters = 3

// scalingRun is one load run of one configuration.
type scalingRun struct {
	loads        []loadResult // one per instance
	wall         time.Duration
	backlogEnd   int64   // sustained: the event queues when the load ended
	drainSeconds float64 // sustained: time to drain them
	left         int64   // still queued when the wait ended
	accepted     int64   // every event accepted, the warmup's included
	events       int64   // processed (sustained) or called back (end to end), warmup included
	rate         float64 // events/s sustained, or callbacks/s end to end
	lost, dups   int64   // end to end
	nodes        []nodeWork
	server       time.Duration // CPU of every instance together
	loadgen      time.Duration // CPU of every loadgen together
	busy         float64       // CPU the whole machine used, in cores
}

// nodeCPU is the CPU of every Redis node together, from /proc.
func (r scalingRun) nodeCPU() time.Duration {
	var d time.Duration
	for _, n := range r.nodes {
		d += n.procCPU
	}
	return d
}

// other is the CPU, in cores, that processes other than the benchmark's
// used during the run.
func (r scalingRun) other() float64 {
	if r.wall <= 0 {
		return 0
	}
	ours := (r.server + r.loadgen + r.nodeCPU()).Seconds() / r.wall.Seconds()
	return max(0, r.busy-ours)
}

// scalingPoint is one configuration: a kind of Redis and a number of
// instances.
type scalingPoint struct {
	kind      string
	instances int
	sustained scalingRun
	e2e       scalingRun
}

// scalingReport is the scaling mode's result.
type scalingReport struct {
	opts    options
	date    time.Time
	machine machine
	points  []scalingPoint
	elapsed time.Duration
	loadEnd string
}

// scaling runs the scaling mode and prints its report.
func (b *bench) scaling(ctx context.Context, stdout io.Writer) error {
	// Every process floats over every core: pinning the instances to one
	// core would only show that they share it.
	b.pin, b.pinNote = false, "not pinned: the instances, loadgen and every Redis node share all cores"
	rep := &scalingReport{opts: b.opts, date: time.Now().UTC()}
	b.logf("building cmd/server and cmd/loadgen")
	if err := b.build(ctx); err != nil {
		return err
	}
	for _, kind := range []string{kindSingle, kindCluster} {
		d, err := b.startDeployment(ctx, kind)
		if err != nil {
			return err
		}
		if rep.machine.redis == "" {
			rep.machine = b.machine(d.nodes[0].version)
		}
		for _, n := range scalingInstances {
			p, err := b.scalingPoint(ctx, d, n)
			if err != nil {
				b.stopDeployment(d)
				return fmt.Errorf("scaling, %s, %d instances: %w", kind, n, err)
			}
			rep.points = append(rep.points, p)
		}
		b.stopDeployment(d)
	}
	rep.elapsed = time.Since(b.started)
	rep.loadEnd = loadAverage()
	b.logf("done in %.0fs", rep.elapsed.Seconds())
	md := rep.markdown()
	fmt.Fprint(stdout, md)
	if b.opts.out != "" {
		if err := os.WriteFile(b.opts.out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		b.logf("wrote %s", b.opts.out)
	}
	return rep.check()
}

// startDeployment starts the private Redis of kind and points the servers
// at it.
func (b *bench) startDeployment(ctx context.Context, kind string) (*deployment, error) {
	if kind == kindSingle {
		r, err := b.startRedis(ctx)
		if err != nil {
			return nil, err
		}
		b.redis, b.clusterURL = r, ""
		b.logf("private redis-server %s on %s", r.version, r.addr)
		return &deployment{kind: kindSingle, url: r.url(), nodes: []*privateRedis{r}}, nil
	}
	d, err := b.startCluster(ctx, clusterMasters)
	if err != nil {
		return nil, err
	}
	in, err := d.nodes[0].info(ctx, "server")
	if err != nil {
		d.close()
		return nil, err
	}
	d.nodes[0].version = in.fields["redis_version"]
	b.clusterURL = d.url
	b.logf("private cluster of %d masters: %s", len(d.nodes), d.url)
	return d, nil
}

// stopDeployment stops d's nodes.
func (b *bench) stopDeployment(d *deployment) {
	d.close()
	if d.kind == kindSingle {
		b.redis = nil
	}
	b.clusterURL = ""
}

// scalingPoint measures n instances on d: the sustained run, then the end
// to end run, each on a flushed Redis with fresh instances.
func (b *bench) scalingPoint(ctx context.Context, d *deployment, n int) (scalingPoint, error) {
	p := scalingPoint{kind: d.kind, instances: n}
	var err error
	b.logf("[scaling] %s, %d instance(s): sustained, no callbacks", d.kind, n)
	if p.sustained, err = b.scalingRun(ctx, d, n, false); err != nil {
		return p, err
	}
	b.logf("[scaling] %s, %d instance(s): %.0f events/s sustained (%d processed, drained in %.1fs, %d left)",
		d.kind, n, p.sustained.rate, p.sustained.events, p.sustained.drainSeconds, p.sustained.left)
	b.logf("[scaling] %s, %d instance(s): end to end with callbacks", d.kind, n)
	if p.e2e, err = b.scalingRun(ctx, d, n, true); err != nil {
		return p, err
	}
	b.logf("[scaling] %s, %d instance(s): %.0f callbacks/s end to end, lost %d, duplicates %d",
		d.kind, n, p.e2e.rate, p.e2e.lost, p.e2e.dups)
	return p, nil
}

// scalingRun runs one closed loop over n fresh instances on d, flushed
// first, with or without callbacks.
func (b *bench) scalingRun(ctx context.Context, d *deployment, n int, callbacks bool) (scalingRun, error) {
	var res scalingRun
	if err := d.reset(ctx); err != nil {
		return res, err
	}
	srvs := make([]*server, 0, n)
	defer func() {
		var wg sync.WaitGroup
		for _, s := range srvs {
			wg.Go(func() { b.stopServer(s) })
		}
		wg.Wait()
	}()
	for range n {
		s, err := b.startServer(ctx, boomerangName, route{})
		if err != nil {
			return res, err
		}
		srvs = append(srvs, s)
	}
	spec := loadSpec{conns: max(1, b.opts.conns/n), duration: b.opts.duration, warmup: b.opts.warmup,
		callbacks: callbacks, drain: b.opts.drainMax}

	before, err := d.snapshots(ctx)
	if err != nil {
		return res, err
	}
	srv0 := serversCPU(srvs)
	cores0 := readCoreTimes()
	start := time.Now()
	res.loads, res.loadgen, err = b.loadgens(ctx, srvs, spec)
	if err != nil {
		return res, err
	}
	loadSeconds := time.Since(start).Seconds()

	if callbacks {
		for _, l := range res.loads {
			if l.Callbacks == nil {
				return res, fmt.Errorf("loadgen reported no callbacks")
			}
			res.lost += l.Callbacks.Lost
			res.dups += l.Callbacks.Duplicates
		}
	} else {
		q, err := d.zcard(ctx, keyEvents)
		if err != nil {
			return res, err
		}
		res.backlogEnd = q[0]
		drain := time.Now()
		if res.left, err = d.waitDrained(ctx, b.opts.drainMax, keyEvents); err != nil {
			return res, err
		}
		res.drainSeconds = time.Since(drain).Seconds()
	}
	res.wall = time.Since(start)
	res.server = serversCPU(srvs) - srv0
	res.busy = machineBusy(cores0, readCoreTimes())
	after, err := d.snapshots(ctx)
	if err != nil {
		return res, err
	}
	res.nodes = workSince(before, after)
	b.logf("[scaling] CPU over %.1fs: instances %.2fs, loadgens %.2fs, redis %.2fs; the machine %.2f cores busy, %.2f cores of it others'",
		res.wall.Seconds(), res.server.Seconds(), res.loadgen.Seconds(), res.nodeCPU().Seconds(), res.busy, res.other())

	q, err := d.zcard(ctx, keyRecent, keyEvents, keyCallbacks, keyDead)
	if err != nil {
		return res, err
	}
	res.accepted = q[0]
	if callbacks {
		res.events = q[0] - q[1] - q[2] - q[3]
		var received int64
		var secs float64
		for _, l := range res.loads {
			received += l.Callbacks.Received
			secs = max(secs, l.DurationSeconds+l.Callbacks.TailSeconds)
		}
		if secs > 0 {
			res.rate = float64(received) / secs
		}
	} else {
		res.events = res.accepted - res.left
		res.rate = float64(res.events) / (loadSeconds + res.drainSeconds)
	}
	return res, nil
}

// loadgens runs one loadgen per server, side by side, and returns their
// results and the CPU they used together.
func (b *bench) loadgens(ctx context.Context, srvs []*server, spec loadSpec) ([]loadResult, time.Duration, error) {
	outs := make([]bytes.Buffer, len(srvs))
	lgs := make([]*child, len(srvs))
	for i, s := range srvs {
		lg, err := b.kids.startChild(ctx, "loadgen", b.tmp, b.pinned(b.loadCore, b.loadgenArgv(s, spec)...), b.env,
			&outs[i], newPrefixWriter(b.progress, fmt.Sprintf("  loadgen %d: ", i+1)))
		if err != nil {
			for _, l := range lgs[:i] {
				l.stop(2 * time.Second)
			}
			return nil, 0, err
		}
		lgs[i] = lg
	}
	res := make([]loadResult, len(srvs))
	var cpu time.Duration
	var failed error
	for i, lg := range lgs {
		<-lg.done
		if lg.waitErr != nil {
			failed = fmt.Errorf("loadgen %d: %w", i+1, lg.waitErr)
			continue
		}
		ps := lg.cmd.ProcessState
		cpu += ps.UserTime() + ps.SystemTime()
		if err := json.Unmarshal(outs[i].Bytes(), &res[i]); err != nil {
			failed = fmt.Errorf("loadgen %d: reading its --json output: %w", i+1, err)
		}
	}
	if failed == nil && ctx.Err() != nil {
		failed = ctx.Err()
	}
	return res, cpu, failed
}

// serversCPU is the CPU time the servers have used together.
func serversCPU(srvs []*server) time.Duration {
	var d time.Duration
	for _, s := range srvs {
		c, _ := cpuTime(s.proc.pid())
		d += c
	}
	return d
}

// machineBusy is the CPU the whole machine used between two readings of
// /proc/stat, in cores.
func machineBusy(a, b map[int]coreTimes) float64 {
	var sum float64
	for core := range b {
		if v := busyPct(a, b, core); finite(v) {
			sum += v / 100
		}
	}
	return sum
}
