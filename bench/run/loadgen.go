package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// loadSpec is one run of cmd/loadgen.
type loadSpec struct {
	rate      float64 // > 0: rate mode at this many requests/s; 0: closed loop
	conns     int     // closed loop
	duration  time.Duration
	warmup    time.Duration
	callbacks bool
	drain     time.Duration // with callbacks
}

// loadResult is the part of loadgen's --json output (its Result type,
// cmd/loadgen/run.go) the benchmark reads.
type loadResult struct {
	Mode            string           `json:"mode"`
	DurationSeconds float64          `json:"duration_s"`
	Interrupted     bool             `json:"interrupted"`
	Sent            int64            `json:"sent"`
	OK              int64            `json:"ok_2xx"`
	Non2xx          map[string]int64 `json:"non_2xx"`
	TransportErrors int64            `json:"transport_errors"`
	Dropped         int64            `json:"dropped"`
	AchievedRPS     float64          `json:"achieved_rps"`
	Latency         latency          `json:"latency"`
	SendLag         *latency         `json:"send_lag"`
	Callbacks       *callbacks       `json:"callbacks"`
}

// latency is loadgen's Summary, in milliseconds.
type latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// callbacks is loadgen's CallbackResult.
type callbacks struct {
	Accepted     int64   `json:"accepted"`
	Received     int64   `json:"received"`
	Lost         int64   `json:"lost"`
	Duplicates   int64   `json:"duplicates"`
	Unmatched    int64   `json:"unmatched"`
	Malformed    int64   `json:"malformed"`
	Arrived      int64   `json:"arrived"` // every callback, warmup and duplicates included
	TailSeconds  float64 `json:"tail_s"`
	SustainedEPS float64 `json:"sustained_eps"`
	Delay        latency `json:"delay"`
}

// errors is every measured request that did not get a 2xx.
func (r loadResult) errors() int64 {
	n := r.TransportErrors
	for _, c := range r.Non2xx {
		n += c
	}
	return n
}

// deliveredEPS is the rate at which events were called back: callbacks
// received / (measured duration + time to the last callback). With no
// callback lost it equals loadgen's sustained_eps.
func (c callbacks) deliveredEPS(duration float64) float64 {
	if d := duration + c.TailSeconds; d > 0 {
		return float64(c.Received) / d
	}
	return 0
}

// usage is the CPU the processes used during a load run.
type usage struct {
	wall                   time.Duration
	server, redis, loadgen time.Duration // CPU time, user plus system
	// other0 and other1 are the CPU other processes of the machine used on
	// the servers' core and on the load core, in percent of a core (NaN
	// when not pinned): what makes a run noisy.
	other0, other1 float64
}

// others formats the other processes' CPU on the two cores.
func (u usage) others() string {
	if !finite(u.other0) || !finite(u.other1) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%% / %.0f%%", max(u.other0, 0), max(u.other1, 0))
}

// pct is cpu as a percentage of one core over the run.
func (u usage) pct(cpu time.Duration) float64 {
	if u.wall <= 0 {
		return 0
	}
	return 100 * cpu.Seconds() / u.wall.Seconds()
}

// loadRun is a finished loadgen run.
type loadRun struct {
	res loadResult
	use usage
}

// watchFunc runs beside loadgen; start is when loadgen was started. Its
// ctx ends when loadgen has exited.
type watchFunc func(ctx context.Context, lg *child, start time.Time)

// both runs the watchFuncs side by side; nil ones are skipped.
func both(ws ...watchFunc) watchFunc {
	return func(ctx context.Context, lg *child, start time.Time) {
		var wg sync.WaitGroup
		for _, w := range ws {
			if w != nil {
				wg.Go(func() { w(ctx, lg, start) })
			}
		}
		wg.Wait()
	}
}

// loadgen runs cmd/loadgen against srv, pinned to the load core, and
// returns its result and the CPU used meanwhile. Its progress lines go to
// the benchmark's progress output.
func (b *bench) loadgen(ctx context.Context, srv *server, spec loadSpec, watch watchFunc) (loadRun, error) {
	argv := b.loadgenArgv(srv, spec)
	srvCPU0, _ := cpuTime(srv.proc.pid())
	redisCPU0, _ := cpuTime(b.redis.proc.pid())
	cores0 := readCoreTimes()
	var stdout bytes.Buffer
	start := time.Now()
	lg, err := b.kids.startChild(ctx, "loadgen", b.tmp, b.pinned(b.loadCore, argv...), b.env, &stdout, newPrefixWriter(b.progress, "  loadgen: "))
	if err != nil {
		return loadRun{}, err
	}
	var wg sync.WaitGroup
	if watch != nil {
		wctx, cancel := context.WithCancel(ctx)
		defer func() { cancel(); wg.Wait() }()
		wg.Go(func() {
			watch(wctx, lg, start)
		})
		go func() {
			<-lg.done
			cancel()
		}()
	}
	<-lg.done
	wall := time.Since(start)
	wg.Wait()
	if lg.waitErr != nil {
		return loadRun{}, fmt.Errorf("loadgen: %w", lg.waitErr)
	}
	var run loadRun
	if err := json.Unmarshal(stdout.Bytes(), &run.res); err != nil {
		return loadRun{}, fmt.Errorf("loadgen: reading its --json output: %w", err)
	}
	srvCPU1, _ := cpuTime(srv.proc.pid())
	redisCPU1, _ := cpuTime(b.redis.proc.pid())
	cores1 := readCoreTimes()
	ps := lg.cmd.ProcessState
	u := usage{wall: wall, server: srvCPU1 - srvCPU0, redis: redisCPU1 - redisCPU0, loadgen: ps.UserTime() + ps.SystemTime()}
	u.other0, u.other1 = math.NaN(), math.NaN()
	if b.pin {
		u.other0 = busyPct(cores0, cores1, 0) - u.pct(u.server)
		u.other1 = busyPct(cores0, cores1, 1) - u.pct(u.redis) - u.pct(u.loadgen)
	}
	run.use = u
	if run.res.Interrupted && ctx.Err() != nil {
		return loadRun{}, ctx.Err()
	}
	return run, nil
}

// loadgenArgv is the command line of cmd/loadgen running spec against srv.
func (b *bench) loadgenArgv(srv *server, spec loadSpec) []string {
	argv := []string{filepath.Join(b.bin, "loadgen"), "--url", srv.url, "--json",
		"--duration", spec.duration.String(), "--warmup", spec.warmup.String()}
	if spec.rate > 0 {
		argv = append(argv, "--mode", "rate", "--rate", strconv.FormatFloat(spec.rate, 'f', -1, 64))
	} else {
		argv = append(argv, "--mode", "closed", "--conns", strconv.Itoa(spec.conns))
	}
	if spec.callbacks {
		argv = append(argv, "--callbacks", "--drain", spec.drain.String())
	}
	return argv
}

// prefixWriter writes each complete line it is given to w with a prefix.
type prefixWriter struct {
	w      io.Writer
	prefix string

	mu  sync.Mutex // guards buf
	buf []byte
}

func newPrefixWriter(w io.Writer, prefix string) *prefixWriter {
	return &prefixWriter{w: w, prefix: prefix}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > 64<<10 { // a line that never ends: pass it on
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf)
		p.buf = p.buf[:0]
	}
	return len(b), nil
}
