//go:build chaos

// Package chaos is Boomerang's fault-injection suite. It builds the server
// binary once, runs real server processes on a private redis-server (AOF,
// fsync always), drives them with a steady load of events while it kills
// processes, stops Redis, breaks the callback receiver, slows the business
// logic past the lease and freezes a worker that holds a lease, and then
// audits every accepted event: terminal, with exactly one callback record,
// delivered (or dead-lettered where the scenario expects it).
//
//	go test -tags chaos -count=1 -timeout 15m -v ./chaos
//
// CHAOS_PROFILE=short (default) or full picks the load; CHAOS_REDIS=cluster
// runs the scenarios on a private 3-master Redis Cluster each (those that
// stop or proxy their one Redis skip); CHAOS_REPORT=FILE
// writes the summary table as Markdown; CHAOS_SERVER_BIN=PATH runs a server
// binary built elsewhere (for instance with a go build -overlay) instead of
// building ./cmd/server. Without redis-server on PATH every scenario is
// skipped, unless CHAOS_REQUIRE is set (for CI), which fails them instead.
package chaos

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// profile sizes the scenarios.
type profile struct {
	name string
	// rate is the events posted per second by the loader; load is how long
	// it posts.
	rate int
	load time.Duration
	// killEvery is the period of kill -9 in the crash scenario.
	killEvery time.Duration
	// redisOutages Redis outages of redisDown each, during the load.
	redisOutages int
	redisDown    time.Duration
	// receiverOutages are the callback receiver's outages, in order.
	receiverOutages []receiverOutage
	// deadLetters events whose callback URL always answers 500.
	deadLetters int
	// slowEvents events whose business logic outlives the lease 3 times.
	slowEvents int
	// fenceEvents events frozen with their worker in the fencing scenario.
	fenceEvents int
	// drain bounds the wait for everything to settle after the load.
	drain time.Duration
}

var profiles = map[string]profile{
	"short": {
		name: "short", rate: 150, load: 20 * time.Second,
		killEvery:    4 * time.Second,
		redisOutages: 1, redisDown: 5 * time.Second,
		receiverOutages: []receiverOutage{{answer503, 8 * time.Second}, {stopped, 3 * time.Second}},
		deadLetters:     20, slowEvents: 24, fenceEvents: 4,
		drain: 60 * time.Second,
	},
	"full": {
		name: "full", rate: 200, load: 60 * time.Second,
		killEvery:    3 * time.Second,
		redisOutages: 3, redisDown: 5 * time.Second,
		receiverOutages: []receiverOutage{{answer503, 8 * time.Second}, {stopped, 5 * time.Second}, {answer503, 8 * time.Second}},
		deadLetters:     100, slowEvents: 30, fenceEvents: 8,
		drain: 120 * time.Second,
	},
}

// receiverOutage is a time in which the callback receiver answers 503, or
// is stopped (deliveries get connection errors).
type receiverOutage struct {
	kind string
	d    time.Duration
}

const (
	answer503 = "503"
	stopped   = "stopped"
)

// prof is the profile of this run, chosen by CHAOS_PROFILE.
var prof profile

// Constants of the server configuration every scenario shares.
const (
	lease           = 2 * time.Second
	workers         = 16 // event workers per instance, set in each config
	callbackWorkers = 16 // callback senders per instance, set in each config
	// inflightFactor: an instance holds leases for at most this many jobs
	// per worker, those running and those whose outcome waits to be
	// recorded (internal/worker's maxCommitting); a kill can repeat them all.
	inflightFactor = 4
)

func TestMain(m *testing.M) {
	name := os.Getenv("CHAOS_PROFILE")
	if name == "" {
		name = "short"
	}
	p, ok := profiles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "chaos: CHAOS_PROFILE=%q: want short or full\n", name)
		os.Exit(2)
	}
	prof = p
	start := time.Now()
	code := m.Run()
	if dir := buildDir; dir != "" {
		os.RemoveAll(dir)
	}
	if len(results) > 0 {
		table := summary(time.Since(start))
		fmt.Print("\n" + table)
		if path := os.Getenv("CHAOS_REPORT"); path != "" {
			if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "chaos: write CHAOS_REPORT: %v\n", err)
				if code == 0 {
					code = 1
				}
			}
		}
	}
	os.Exit(code)
}

// The server binary, built once per run by serverBinary.
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// serverBinary returns the path of the server binary: $CHAOS_SERVER_BIN, or
// ./cmd/server built once for the whole run. It skips the test when
// redis-server is not installed, since no scenario can run without it.
func serverBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CHAOS_REQUIRE") != "" {
			t.Fatal("chaos: redis-server is not installed, and CHAOS_REQUIRE is set")
		}
		t.Skip("chaos: redis-server is not installed (apt-get install redis-server); the fault-injection suite needs a real Redis it can stop and start")
	}
	buildOnce.Do(func() {
		if bin := os.Getenv("CHAOS_SERVER_BIN"); bin != "" {
			buildBin, buildErr = filepath.Abs(bin)
			return
		}
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			buildErr = fmt.Errorf("go env GOMOD: not inside the module")
			return
		}
		buildDir, err = os.MkdirTemp("", "boomerang-chaos-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(buildDir, "boomerang")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/server")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/server: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// result is one row of the summary table.
type result struct {
	scenario      string
	passed        bool
	skipped       bool
	accepted      int
	lost          int
	dupDeliveries int
	dupProcessing int
	recovery      string // "" where not meaningful
	duration      time.Duration
	notes         string
}

var (
	resultsMu sync.Mutex // guards results
	results   []*result
)

// report registers the scenario's row; its pass/fail and duration are
// filled in when the test ends, whatever ends it. The duration does not
// count building the server, which the first scenario does for all.
func report(t *testing.T, scenario string) *result {
	r := &result{scenario: scenario}
	start := time.Now()
	t.Cleanup(func() {
		r.duration = time.Since(start)
		r.passed = !t.Failed()
		r.skipped = t.Skipped()
		resultsMu.Lock()
		results = append(results, r)
		resultsMu.Unlock()
	})
	serverBinary(t)
	start = time.Now()
	return r
}

// summary renders the rows as a Markdown table (readable as plain text too).
func summary(total time.Duration) string {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	var b strings.Builder
	on := "a single redis-server"
	if onCluster() {
		on = "a 3-master Redis Cluster"
	}
	fmt.Fprintf(&b, "## Chaos summary (profile %s, %d events/s, %s of load per scenario, on %s; total %s)\n\n",
		prof.name, prof.rate, prof.load, on, total.Round(time.Second))
	b.WriteString("| scenario | result | accepted | lost | duplicate deliveries | duplicate processing | recovery | duration | notes |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range results {
		res := "PASS"
		switch {
		case !r.passed:
			res = "FAIL"
		case r.skipped:
			res = "SKIP"
		}
		rec := r.recovery
		if rec == "" {
			rec = "-"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %s | %s | %s |\n", r.scenario, res, r.accepted, r.lost,
			r.dupDeliveries, r.dupProcessing, rec, r.duration.Round(100*time.Millisecond), r.notes)
	}
	return b.String()
}

// cleanup registers f as a cleanup of t, and logs it when it is slow.
func cleanup(t *testing.T, what string, f func()) {
	t.Cleanup(func() {
		start := time.Now()
		f()
		if d := time.Since(start); d > time.Second {
			t.Logf("cleanup: %s took %s", what, d.Round(time.Millisecond))
		}
	})
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
