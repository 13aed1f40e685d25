//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

// maxRedisRecovery is how soon after Redis answers again every instance
// must answer 202 and /readyz 200 again, by itself.
const maxRedisRecovery = 2 * time.Second

// outage is one Redis outage: stopped (the process has exited) at down,
// started at upBegin, answering PING from upAnswering.
type outage struct {
	down, upBegin, upAnswering time.Time
}

// readyProbe is one answer of GET /readyz.
type readyProbe struct {
	inst       int
	code       int
	sent, recv time.Time
}

// TestRedisOutage stops Redis (SIGTERM; the data is in the AOF) for
// prof.redisDown during the load, prof.redisOutages times. While it is
// down, POST /event and /readyz answer 503 and nothing answers 2xx. After
// it is back, each instance recovers by itself within maxRedisRecovery, and
// every event accepted is processed and called back.
func TestRedisOutage(t *testing.T) {
	res := report(t, "redis stopped during load")
	singleRedisOnly(t, res, "it stops and restarts it")
	h := newHarness(t, options{instances: 2, start: 2})
	l := newLoader(t, h, "redis")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	loaded := make(chan int, 1)
	go func() { loaded <- l.run(ctx, "redis", prof.rate, prof.load) }()

	// /readyz of every instance, every 50ms, for as long as the load runs.
	var probesMu sync.Mutex // guards probes
	var probes []readyProbe
	stopProbes := make(chan struct{})
	var probing sync.WaitGroup
	for _, in := range h.insts {
		probing.Go(func() {
			client := &http.Client{Timeout: 2 * time.Second}
			defer client.CloseIdleConnections()
			end := time.Now().Add(prof.load + 10*time.Second)
			for time.Now().Before(end) {
				sent := time.Now()
				code := probe(client, in.base+"/readyz")
				probesMu.Lock()
				probes = append(probes, readyProbe{inst: in.idx, code: code, sent: sent, recv: time.Now()})
				probesMu.Unlock()
				select {
				case <-stopProbes:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}

	var outages []outage
	for k := range prof.redisOutages {
		center := start.Add(prof.load * time.Duration(2*k+1) / time.Duration(2*prof.redisOutages))
		time.Sleep(time.Until(center.Add(-prof.redisDown / 2)))
		var o outage
		h.redis.Stop(t)
		o.down = time.Now()
		time.Sleep(prof.redisDown)
		o.upBegin = time.Now()
		h.redis.Start(t)
		o.upAnswering = time.Now()
		outages = append(outages, o)
		t.Logf("outage %d: redis down at +%s, answering again at +%s", k+1,
			o.down.Sub(start).Round(time.Millisecond), o.upAnswering.Sub(start).Round(time.Millisecond))
	}
	posted := <-loaded
	l.wait()
	close(stopProbes)
	probing.Wait()
	t.Logf("posted %d events; answers per instance: %s", posted, l.codes())

	answers := l.answersCopy()
	var worst time.Duration
	okWhileDown := 0 // 2xx answers (POST or /readyz) while Redis was down
	for k, o := range outages {
		during := func(sent, recv time.Time) bool { return sent.After(o.down) && recv.Before(o.upBegin) }
		post503 := make([]int, len(h.insts))
		ready503 := make([]int, len(h.insts))
		for _, a := range answers {
			if !during(a.sent, a.recv) {
				continue
			}
			if a.code/100 == 2 {
				okWhileDown++
				t.Errorf("outage %d: POST /event answered %d by %s while Redis was down (sent +%s, answered +%s)", k+1, a.code,
					h.insts[a.inst].name, a.sent.Sub(o.down).Round(time.Millisecond), a.recv.Sub(o.down).Round(time.Millisecond))
			}
			if a.code == http.StatusServiceUnavailable {
				post503[a.inst]++
			}
		}
		for _, p := range probes {
			if !during(p.sent, p.recv) {
				continue
			}
			if p.code == http.StatusOK {
				okWhileDown++
				t.Errorf("outage %d: /readyz answered 200 by %s while Redis was down", k+1, h.insts[p.inst].name)
			}
			if p.code == http.StatusServiceUnavailable {
				ready503[p.inst]++
			}
		}
		for i, in := range h.insts {
			if post503[i] == 0 {
				t.Errorf("outage %d: %s never answered POST /event with 503 while Redis was down", k+1, in.name)
			}
			if ready503[i] == 0 {
				t.Errorf("outage %d: %s never answered /readyz with 503 while Redis was down", k+1, in.name)
			}
			// Recovery: from Redis answering until the instance's first
			// 202 and first /readyz 200 (any answer after Redis was
			// started counts; Redis may answer before our PING saw it).
			first202, firstReady := time.Duration(-1), time.Duration(-1)
			for _, a := range answers {
				if a.inst == i && a.code == http.StatusAccepted && !a.recv.Before(o.upBegin) {
					if d := max(a.recv.Sub(o.upAnswering), 0); first202 < 0 || d < first202 {
						first202 = d
					}
				}
			}
			for _, p := range probes {
				if p.inst == i && p.code == http.StatusOK && !p.recv.Before(o.upBegin) {
					if d := max(p.recv.Sub(o.upAnswering), 0); firstReady < 0 || d < firstReady {
						firstReady = d
					}
				}
			}
			t.Logf("outage %d: %s answered 503 to %d POSTs and %d /readyz; recovered: first 202 after %s, /readyz 200 after %s",
				k+1, in.name, post503[i], ready503[i], first202.Round(time.Millisecond), firstReady.Round(time.Millisecond))
			for _, r := range []struct {
				what string
				d    time.Duration
			}{{"202", first202}, {"/readyz 200", firstReady}} {
				switch {
				case r.d < 0:
					t.Errorf("outage %d: %s never answered %s after Redis came back", k+1, in.name, r.what)
				case r.d > maxRedisRecovery:
					t.Errorf("outage %d: %s answered %s only %s after Redis answered again, want at most %s", k+1, in.name, r.what, r.d, maxRedisRecovery)
				}
				worst = max(worst, r.d)
			}
		}
	}

	repeats, gaveUp, bad := l.stats()
	ids := l.acceptedIDs()
	a := h.audit(t, expectAll(ids, wantDelivered), prof.drain)
	// No crash here, but an outcome that could not be recorded while Redis
	// was down runs again once its lease expires: at most what was in
	// flight, per instance and outage.
	bound := inflightFactor * workers * len(h.insts) * len(outages)
	if a.dupProcessing > bound {
		t.Errorf("duplicate processing: got %d, want at most %d", a.dupProcessing, bound)
	}
	if a.dupDeliveries > inflightFactor*callbackWorkers*len(h.insts)*len(outages) {
		t.Errorf("duplicate deliveries: got %d, want at most %d", a.dupDeliveries, inflightFactor*callbackWorkers*len(h.insts)*len(outages))
	}
	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = a.accepted, a.lost, a.dupDeliveries, a.dupProcessing
	res.recovery = fmt.Sprintf("%s (max per instance)", worst.Round(time.Millisecond))
	res.notes = fmt.Sprintf("%d outages of %s; %d posted, %d given up after %d tries; %d repeats answered 200; %d 2xx while down; %d bad answers; settled in %s",
		len(outages), prof.redisDown, posted, gaveUp, l.maxTries, repeats, okWhileDown, bad, a.settled.Round(100*time.Millisecond))
	t.Logf("redis outage: %s", res.notes)
}
