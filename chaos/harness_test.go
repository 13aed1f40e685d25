//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/internal/redistest"
)

// harness is one scenario's world: a private redis-server (or a private
// Redis Cluster), a forward target and a callback receiver in this process,
// and server processes.
type harness struct {
	t       *testing.T
	bin     string
	dir     string
	redis   *redistest.Server       // nil on a cluster
	cluster *redistest.LocalCluster // nil on a single server
	target  *target
	recv    *receiver
	insts   []*instance
	gate    *gate        // between the first instance and Redis, if asked for
	client  *http.Client // for GETs of the audit and probes
}

// options are what a scenario changes in the shared configuration.
type options struct {
	// instances to create; start says how many of them to start at once.
	instances int
	start     int
	// callbackAttempts overrides the callback policy's max_attempts (10).
	callbackAttempts int
	// callbackExtra is YAML added to the callback block, indented by two
	// spaces, such as "  timeout: 2s\n"; extra is YAML added at the top
	// level, such as "flow: {cooldown: 2s}\n".
	callbackExtra, extra string
	// gateFirst puts a gate between the first instance and Redis.
	gateFirst bool
	// cluster runs the scenario on a private Redis Cluster of this shape
	// instead of one redis-server. With CHAOS_REDIS=cluster every scenario
	// that does not need a single server runs on 3 masters.
	cluster *clusterShape
}

// clusterShape is the size of a private Redis Cluster.
type clusterShape struct{ masters, replicas int }

// singleRedisOnly skips a scenario that stops, restarts or proxies its one
// Redis server when the run is on clusters (CHAOS_REDIS=cluster).
func singleRedisOnly(t *testing.T, res *result, why string) {
	t.Helper()
	if onCluster() {
		res.notes = "skipped on a cluster: needs a single Redis server: " + why
		t.Skip("chaos: CHAOS_REDIS=cluster: this scenario needs a single Redis server: " + why)
	}
}

// onCluster reports whether this run puts the scenarios on clusters.
func onCluster() bool { return os.Getenv("CHAOS_REDIS") == "cluster" }

// newHarness starts Redis, the target and the receiver, writes one config
// file per instance and starts the first opts.start instances. When the
// test fails it prints the tail of every server log.
func newHarness(t *testing.T, opts options) *harness {
	t.Helper()
	h := &harness{t: t, bin: serverBinary(t), dir: t.TempDir()}
	redisStopped := time.Now()
	t.Cleanup(func() { // registered before StartServer's, so it runs after it
		if d := time.Since(redisStopped); d > time.Second {
			t.Logf("cleanup: stopping redis-server took %s", d.Round(time.Millisecond))
		}
	})
	if opts.cluster == nil && onCluster() {
		opts.cluster = &clusterShape{masters: 3}
	}
	var redisURL string
	if opts.cluster != nil {
		h.cluster = redistest.StartCluster(t, opts.cluster.masters, opts.cluster.replicas)
		redisURL = h.cluster.URL
	} else {
		h.redis = redistest.StartServer(t)
		redisURL = h.redis.URL
	}
	t.Cleanup(func() { redisStopped = time.Now() })
	h.target = newTarget(t)
	h.recv = newReceiver(t)
	h.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 64, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second,
	}}
	t.Cleanup(h.client.CloseIdleConnections)
	attempts := opts.callbackAttempts
	if attempts == 0 {
		attempts = 10
	}
	if opts.gateFirst {
		h.gate = newGate(t, fmt.Sprintf("127.0.0.1:%d", h.redis.Port))
	}
	for i := range opts.instances {
		redisURL := redisURL
		if i == 0 && h.gate != nil {
			redisURL = h.gate.url
		}
		in := &instance{idx: i, name: fmt.Sprintf("i%d", i), bin: h.bin}
		in.addr = freeAddr(t)
		in.base = "http://" + in.addr
		in.cfgPath = filepath.Join(h.dir, in.name+".yaml")
		in.logPath = filepath.Join(h.dir, in.name+".log")
		cfg := fmt.Sprintf(`addr: %q
redis_url: %q
key_prefix: chaos
workers: %d
lease: %s
shutdown_timeout: 2s
log_level: info
retry: {initial_interval: 50ms, max_interval: 500ms, max_attempts: 8}
routes:
  - {event_type: "*", forward: %q, timeout: 30s}
callback:
  workers: %d
  allow_private_networks: true
  retry: {initial_interval: 100ms, max_interval: 1s, max_attempts: %d}
%s%s`, in.addr, redisURL, workers, lease, h.target.URL+"/forward", callbackWorkers, attempts, opts.callbackExtra, opts.extra)
		if err := os.WriteFile(in.cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		h.insts = append(h.insts, in)
		cleanup(t, "killing "+in.name, in.kill)
	}
	// Registered after the instances' cleanups, so it runs before them.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, in := range h.insts {
			t.Logf("--- last lines of %s (%s) ---\n%s", in.name, in.logPath, tail(in.logPath, 40))
		}
	})
	for _, in := range h.insts[:opts.start] {
		if err := in.start(); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// killRestart kills an instance with SIGKILL every prof.killEvery from
// start until a second before the load ends, the instances in turn, and
// starts each again on its address 300ms later, then calls restarted.
// It stops at the first instance that does not start again.
func (h *harness) killRestart(t *testing.T, start time.Time, restarted func(in *instance, killed time.Time)) error {
	for k := 1; ; k++ {
		at := start.Add(time.Duration(k) * prof.killEvery)
		if at.After(start.Add(prof.load - time.Second)) {
			return nil
		}
		time.Sleep(time.Until(at))
		in := h.insts[(k-1)%len(h.insts)]
		killed := time.Now()
		in.kill()
		time.Sleep(300 * time.Millisecond)
		if err := in.start(); err != nil {
			return fmt.Errorf("restart after kill %d: %w", k, err)
		}
		restarted(in, killed)
		t.Logf("kill %d: %s killed at +%s, answering again after %s", k, in.name, killed.Sub(start).Round(time.Millisecond),
			time.Since(killed).Round(time.Millisecond))
	}
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// instance is one server process; it keeps its address across restarts.
type instance struct {
	idx     int
	name    string
	bin     string
	addr    string
	base    string
	cfgPath string
	logPath string

	mu     sync.Mutex // guards cmd, exited and starts
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	starts int
}

// start starts the process (again) with its log appended to logPath, and
// waits until it answers /healthz.
func (in *instance) start() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil {
		select {
		case <-in.exited:
		default:
			return fmt.Errorf("%s: already running", in.name)
		}
	}
	logf, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	in.starts++
	fmt.Fprintf(logf, "=== chaos: start #%d of %s at %s ===\n", in.starts, in.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(in.bin, "--config", in.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %w", in.name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	in.cmd, in.exited = cmd, exited

	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(in.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited at start; log:\n%s", in.name, tail(in.logPath, 20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer /healthz within 15s; log:\n%s", in.name, tail(in.logPath, 20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// signal sends sig to the running process.
func (in *instance) signal(sig syscall.Signal) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil {
		return errors.New(in.name + ": not started")
	}
	return in.cmd.Process.Signal(sig)
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
// It is a no-op when the process is not running.
func (in *instance) kill() {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies on SIGKILL too, but be plain about it
	cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
	}
}

// alive reports whether the process is running (or stopped), not exited.
func (in *instance) alive() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil {
		return false
	}
	select {
	case <-in.exited:
		return false
	default:
		return true
	}
}

// logText returns the whole log of the instance.
func (in *instance) logText() string {
	b, err := os.ReadFile(in.logPath)
	if err != nil {
		return ""
	}
	return string(b)
}

// get GETs path on the first instance that answers, and returns the status
// and body.
func (h *harness) get(ctx context.Context, path string) (int, []byte, error) {
	var lastErr error
	for _, in := range h.insts {
		if !in.alive() {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.base+path, nil)
		if err != nil {
			return 0, nil, err
		}
		resp, err := h.client.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		body, err := readAll(resp)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			lastErr = fmt.Errorf("%s%s: 503 %s", in.name, path, strings.TrimSpace(string(body)))
			continue
		}
		return resp.StatusCode, body, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no instance is running")
	}
	return 0, nil, lastErr
}

// probe GETs url once and returns the status, or 0 on a transport error.
func probe(client *http.Client, url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	readAll(resp)
	return resp.StatusCode
}

// gate is a TCP proxy to Redis whose traffic can be held: while it is
// closed, bytes are read from either side but not passed on until it
// opens. An instance behind it keeps running, but cannot reach Redis.
type gate struct {
	ln     net.Listener
	target string
	url    string

	mu     sync.Mutex // guards open and conns
	cond   *sync.Cond // signalled when open turns true
	open   bool
	conns  []net.Conn
	closed bool
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln, target: target, url: "redis://" + ln.Addr().String() + "/0", open: true}
	g.cond = sync.NewCond(&g.mu)
	go g.accept()
	cleanup(t, "closing the gate", g.close)
	return g
}

func (g *gate) accept() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		r, err := net.DialTimeout("tcp", g.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			c.Close()
			r.Close()
			return
		}
		g.conns = append(g.conns, c, r)
		g.mu.Unlock()
		go g.pipe(c, r)
		go g.pipe(r, c)
	}
}

// pipe copies src to dst, holding each chunk while the gate is closed.
func (g *gate) pipe(src, dst net.Conn) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			g.mu.Lock()
			for !g.open {
				g.cond.Wait()
			}
			g.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// set opens or closes the gate.
func (g *gate) set(open bool) {
	g.mu.Lock()
	g.open = open
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.open = true
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	g.cond.Broadcast()
	g.ln.Close()
	for _, c := range conns {
		c.Close()
	}
}
