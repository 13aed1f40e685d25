package cli

import (
	"encoding/json"
	"fmt"
	"io"
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

	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
)

// TestMain lets the test binary run as the server itself, so that fault
// tests can start real server processes and kill them.
func TestMain(m *testing.M) {
	if os.Getenv("BOOMERANG_TEST_SERVER") == "1" {
		Main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is a server running as a child process.
type process struct {
	cmd  *exec.Cmd
	base string
}

// startProcess starts the server as a child process with the YAML config
// text (addr is filled in) and waits until it answers.
func startProcess(t *testing.T, config string) *process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("addr: %q\n%s", addr, config)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--config", path)
	cmd.Env = append(os.Environ(), "BOOMERANG_TEST_SERVER=1")
	if os.Getenv("BOOMERANG_TEST_LOG") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, base: "http://" + addr}
	t.Cleanup(func() { p.kill() })
	waitHTTP(t, p.base+"/healthz", http.StatusOK, 10*time.Second)
	return p
}

// kill ends the process at once, as a crash would: no graceful shutdown.
func (p *process) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// TestKilledServerLosesNothing kills a server (SIGKILL) while it runs an
// event, starts another on the same Redis, and checks that the new one
// finishes the event: one more attempt, one callback.
func TestKilledServerLosesNothing(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		var mu sync.Mutex
		seen := 0
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		target := fakes.NewTarget(t, func(n int, w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = n
			mu.Unlock()
			if n == 1 { // the first attempt hangs until its server is dead
				select {
				case <-release:
				case <-r.Context().Done():
				}
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		rcv := fakes.NewReceiver(t)
		config := fmt.Sprintf(`redis_url: %q
key_prefix: %q
lease: 1s
shutdown_timeout: 1s
routes:
  - {event_type: "*", forward: %q, timeout: 30s, retry: {initial_interval: 10ms}}
callback:
  allow_private_networks: true
`, b.URL, b.Prefix, target.URL)

		a := startProcess(t, config)
		if code, ans := post(t, a.base, eventJSON("crash-1", "user_created", rcv)); code != http.StatusAccepted {
			t.Fatalf("POST: got %d %v", code, ans)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := seen
			mu.Unlock()
			if n >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the first attempt never reached the target")
			}
			time.Sleep(5 * time.Millisecond)
		}
		a.kill()

		bsrv := startProcess(t, config)
		r := waitDone(t, bsrv.base, "crash-1", 10*time.Second)
		if r.Status != "succeeded" || r.Attempts != 2 || r.Callback.Status != "delivered" {
			t.Errorf("after the crash: got %+v, want succeeded in 2 attempts with the callback delivered", r)
		}
		if got := rcv.WaitFor(t, 1, 5*time.Second); len(got) != 1 || got[0].Body.Status != "succeeded" {
			t.Errorf("callbacks: got %+v, want one success", got)
		}
		if n := target.Count(); n != 2 {
			t.Errorf("target requests: got %d, want 2 (the killed attempt and the one that finished)", n)
		}
	})
}

// TestRedisOutage stops Redis under a running server: events get 503 and
// nothing answers 2xx while it is down; when it returns, the server recovers
// by itself and every accepted event is processed with its callback.
func TestRedisOutage(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		b := redistest.Mini(t)
		outage(t, b.URL, b.Prefix, func() { b.Mini.Close() }, func() {
			if err := b.Mini.Restart(); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("redis-server", func(t *testing.T) {
		srv := redistest.StartServer(t)
		outage(t, srv.URL, "outage", func() { srv.Stop(t) }, func() { srv.Start(t) })
	})
}

func outage(t *testing.T, url, prefix string, stop, start func()) {
	rcv := fakes.NewReceiver(t)
	cfg := testConfig(redistest.Backend{URL: url, Prefix: prefix})
	base, _ := startServer(t, cfg)

	var accepted []string
	postN := func(from, n int, wantCode int) {
		for i := from; i < from+n; i++ {
			id := fmt.Sprintf("out-%d", i)
			code, ans := post(t, base, eventJSON(id, "user_created", rcv))
			if code != wantCode {
				t.Fatalf("POST %s: got %d %v, want %d", id, code, ans, wantCode)
			}
			if code == http.StatusServiceUnavailable && ans["event_id"] != id {
				t.Fatalf("POST %s: 503 %v does not name the event", id, ans)
			}
			if code/100 == 2 {
				accepted = append(accepted, id)
			}
		}
	}
	postN(0, 20, http.StatusAccepted)
	stop()
	postN(20, 10, http.StatusServiceUnavailable)
	waitHTTP(t, base+"/readyz", http.StatusServiceUnavailable, 5*time.Second)
	start()
	waitHTTP(t, base+"/readyz", http.StatusOK, 5*time.Second)
	postN(30, 20, http.StatusAccepted)

	for _, id := range accepted {
		if r := waitDone(t, base, id, 20*time.Second); r.Status != "succeeded" || r.Callback.Status != "delivered" {
			t.Errorf("%s: got %+v, want succeeded with its callback delivered", id, r)
		}
	}
	got := rcv.WaitFor(t, len(accepted), 10*time.Second)
	perEvent := make(map[string]int)
	for _, cb := range got {
		perEvent[cb.Body.EventID]++
	}
	for _, id := range accepted {
		if perEvent[id] == 0 {
			t.Errorf("%s: no callback received", id)
		}
	}
	for _, id := range []string{"out-20", "out-29"} {
		if code, _ := getRecord(t, base, id); code != http.StatusNotFound {
			t.Errorf("%s was answered 503 but is recorded (%d)", id, code)
		}
	}
	t.Logf("accepted %d events, %d callbacks received (%d duplicate deliveries)", len(accepted), len(got), len(got)-len(perEvent))
}

// TestLostEnqueueReply loses the reply of the enqueue script: Redis runs
// it, and a proxy drops every reply until the ingest timeout has passed.
// The producer, who sent no id, gets 503 naming the event's generated id;
// the event is recorded and runs once; sending it again with that id is
// recognised as a repeat (200 with the record), not a second event.
func TestLostEnqueueReply(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		proxy := redistest.NewProxy(t, b.URL)
		target := fakes.NewTarget(t, nil)
		rcv := fakes.NewReceiver(t)
		cfg := testConfig(redistest.Backend{URL: proxy.URL, Prefix: b.Prefix})
		cfg.Engine.IngestTimeout = time.Second
		cfg.Routes = []Route{{EventType: "*", Forward: target.URL, Timeout: time.Second, Retry: fast}}
		base, _ := startServer(t, cfg)

		// One event through first, so Redis has the scripts: a lost reply
		// to EVALSHA's NOSCRIPT would keep the script from running at all.
		if code, ans := post(t, base, eventJSON("warm-up", "user_created", rcv)); code != http.StatusAccepted {
			t.Fatalf("POST warm-up: got %d %v", code, ans)
		}
		waitDone(t, base, "warm-up", 10*time.Second)

		body := fmt.Sprintf(`{"event_type":"user_created","payload":{"user_id":"42"},"callback":{"success_url":%q}}`, rcv.URL+"/success")
		proxy.SetMode(redistest.DropReplies)
		req, _ := http.NewRequest(http.MethodPost, base+"/event", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ans map[string]any
		json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		proxy.SetMode(redistest.Forward)
		proxy.CloseConns() // the connections whose replies were lost

		id, _ := ans["event_id"].(string)
		msg, _ := ans["error"].(string)
		if resp.StatusCode != http.StatusServiceUnavailable || id == "" || !strings.Contains(msg, "outcome unknown") {
			t.Fatalf("POST with its reply lost: got %d %v, want 503 naming the event_id and an unknown outcome", resp.StatusCode, ans)
		}
		if got := resp.Header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After: got %q, want 1", got)
		}

		// Redis ran the script: the event is recorded, and it runs once.
		waitHTTP(t, base+"/readyz", http.StatusOK, 10*time.Second)
		req, _ = http.NewRequest(http.MethodGet, base+"/callback?event_id="+id, nil)
		if code, rec := do(t, req); code != http.StatusOK || rec["event_id"] != id {
			t.Fatalf("GET /callback?event_id=%s after the 503: got %d %v, want the record", id, code, rec)
		}
		if r := waitDone(t, base, id, 15*time.Second); r.Status != "succeeded" || r.Callback.Status != "delivered" {
			t.Errorf("%s: got %+v, want succeeded with its callback delivered", id, r)
		}

		// The producer retries with the id: a repeat, not a second event.
		if code, rec := post(t, base, body, "Idempotency-Key", id); code != http.StatusOK || rec["event_id"] != id || rec["status"] != "succeeded" {
			t.Errorf("repeat with Idempotency-Key: got %d %v, want 200 with the record", code, rec)
		}
		withID := strings.Replace(body, "{", fmt.Sprintf("{%q:%q,", "id", id), 1)
		if code, rec := post(t, base, withID); code != http.StatusOK || rec["event_id"] != id {
			t.Errorf("repeat with the id in the body: got %d %v, want 200 with the record", code, rec)
		}
		req, _ = http.NewRequest(http.MethodGet, base+"/callback?limit=100", nil)
		if code, list := do(t, req); code != http.StatusOK || len(list["events"].([]any)) != 2 {
			t.Errorf("GET /callback: got %d %v, want 2 events (warm-up and %s)", code, list, id)
		}
		if n := target.CountFor(id); n != 1 {
			t.Errorf("%s ran %d times, want once", id, n)
		}
		callbacks := 0
		for _, cb := range rcv.Got() {
			if cb.Body.EventID == id {
				callbacks++
			}
		}
		if callbacks != 1 {
			t.Errorf("%s: %d callbacks received, want 1", id, callbacks)
		}
	})
}

// TestStalledRedis puts a Redis that accepts connections and never answers
// (a proxy in stall mode) under a running server: every request that needs
// Redis answers 503 within its documented bound, and when Redis answers
// again the server, its workers and its callback senders recover by
// themselves.
func TestStalledRedis(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		proxy := redistest.NewProxy(t, b.URL)
		refusing := fakes.NewTarget(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
		rcv := fakes.NewReceiver(t)
		cfg := testConfig(redistest.Backend{URL: proxy.URL, Prefix: b.Prefix})
		cfg.Engine.IngestTimeout = 2 * time.Second
		cfg.Routes = []Route{
			{EventType: "refused", Forward: refusing.URL, Timeout: time.Second, Retry: fast},
			{EventType: "*", Accept: true, Retry: fast},
		}
		base, _ := startServer(t, cfg)

		// A failed event with a delivered callback, for retry and redeliver.
		if code, ans := post(t, base, eventJSON("stall-failed", "refused", rcv)); code != http.StatusAccepted {
			t.Fatalf("POST: got %d %v", code, ans)
		}
		if r := waitDone(t, base, "stall-failed", 10*time.Second); r.Status != "failed" || r.Callback.Status != "delivered" {
			t.Fatalf("before the stall: got %+v, want failed with its callback delivered", r)
		}

		proxy.SetMode(redistest.Stall)
		const margin = time.Second
		requestBound := 3 * time.Second // the default request_timeout
		tests := []struct {
			method, path string
			bound        time.Duration
		}{
			{http.MethodGet, "/events/stall-failed", requestBound},
			{http.MethodGet, "/callback?event_id=stall-failed", requestBound},
			{http.MethodGet, "/callback", requestBound},
			{http.MethodGet, "/dead-letters", requestBound},
			{http.MethodPost, "/events/stall-failed/retry", requestBound},
			{http.MethodPost, "/callback/stall-failed/redeliver", requestBound},
			{http.MethodGet, "/readyz", time.Second},
			{http.MethodPost, "/event", cfg.Engine.IngestTimeout},
		}
		type answer struct {
			code    int
			body    map[string]any
			elapsed time.Duration
			err     error
		}
		answers := make([]answer, len(tests))
		var wg sync.WaitGroup
		client := &http.Client{Timeout: 60 * time.Second}
		for i, tc := range tests {
			wg.Go(func() {
				var body io.Reader
				if tc.path == "/event" {
					body = strings.NewReader(`{"event_type":"during_stall"}`)
				}
				req, _ := http.NewRequest(tc.method, base+tc.path, body)
				start := time.Now()
				resp, err := client.Do(req)
				a := answer{err: err}
				if err == nil {
					a.code = resp.StatusCode
					json.NewDecoder(resp.Body).Decode(&a.body)
					resp.Body.Close()
				}
				a.elapsed = time.Since(start)
				answers[i] = a
			})
		}
		wg.Wait()
		for i, tc := range tests {
			a := answers[i]
			t.Logf("%s %s: %d in %s", tc.method, tc.path, a.code, a.elapsed.Round(time.Millisecond))
			if a.err != nil || a.code != http.StatusServiceUnavailable {
				t.Errorf("%s %s: got %d %v (%v), want 503", tc.method, tc.path, a.code, a.body, a.err)
			}
			if a.elapsed > tc.bound+margin {
				t.Errorf("%s %s: answered in %s, want at most %s (+%s)", tc.method, tc.path, a.elapsed.Round(time.Millisecond), tc.bound, margin)
			}
		}

		// Redis answers again: the API, the workers and the callback
		// senders recover without a restart.
		proxy.SetMode(redistest.Forward)
		waitHTTP(t, base+"/readyz", http.StatusOK, 10*time.Second)
		if code, ans := postPath(t, base, "/events/stall-failed/retry", ""); code != http.StatusAccepted {
			t.Errorf("retry after the stall: got %d %v, want 202", code, ans)
		}
		if code, ans := post(t, base, eventJSON("stall-after", "accepted", rcv)); code != http.StatusAccepted {
			t.Fatalf("POST after the stall: got %d %v, want 202", code, ans)
		}
		if r := waitDone(t, base, "stall-after", 15*time.Second); r.Status != "succeeded" || r.Callback.Status != "delivered" {
			t.Errorf("event after the stall: got %+v, want succeeded with its callback delivered", r)
		}
		if r := waitDone(t, base, "stall-failed", 15*time.Second); r.Status != "failed" || refusing.CountFor("stall-failed") != 2 {
			t.Errorf("retried event after the stall: got %+v after %d target requests, want failed again after 2", r, refusing.CountFor("stall-failed"))
		}
	})
}
