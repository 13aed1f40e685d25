package main

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// machine describes where the benchmark ran.
type machine struct {
	cpus      int    // usable cores, as nproc counts them
	cpuModel  string // from /proc/cpuinfo
	kernel    string
	goVersion string
	revision  string
	redis     string
	loadStart string // /proc/loadavg when the benchmark started
}

func (b *bench) machine(redisVersion string) machine {
	return machine{
		cpus:      runtime.NumCPU(),
		cpuModel:  cpuModel(),
		kernel:    strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		goVersion: b.goVersion,
		revision:  b.revision,
		redis:     redisVersion,
		loadStart: loadAverage(),
	}
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	for line := range strings.Lines(readFile("/proc/cpuinfo")) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// coreTimes is one core's line of /proc/stat, in clock ticks.
type coreTimes struct {
	proc  int64 // user + nice + system: time in processes
	total int64 // every state, steal included
}

// readCoreTimes reads the per-core lines of /proc/stat, by core number.
func readCoreTimes() map[int]coreTimes {
	return parseCoreTimes(readFile("/proc/stat"))
}

// parseCoreTimes parses the "cpuN user nice system idle iowait irq softirq
// steal ..." lines of a /proc/stat text. guest and guest_nice are already
// part of user and nice, so they are not added again.
func parseCoreTimes(s string) map[int]coreTimes {
	out := map[int]coreTimes{}
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		core, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var v [8]int64
		for i := range v {
			v[i], _ = strconv.ParseInt(f[1+i], 10, 64)
		}
		t := coreTimes{proc: v[0] + v[1] + v[2]}
		for _, x := range v {
			t.total += x
		}
		out[core] = t
	}
	return out
}

// busyPct is the share of core's time spent in processes between a and b,
// in percent of the core; NaN when the core is missing.
func busyPct(a, b map[int]coreTimes, core int) float64 {
	x, ok1 := a[core]
	y, ok2 := b[core]
	if !ok1 || !ok2 || y.total <= x.total {
		return math.NaN()
	}
	return 100 * float64(y.proc-x.proc) / float64(y.total-x.total)
}
