//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestRedisFailover runs two instances with wait_replicas: 1 on a private
// Redis Cluster of 3 masters with a replica each, and kills one master
// with SIGKILL a third into the load. Its replica takes over (within the
// cluster's node timeout plus an election), and the instances keep serving
// without a restart. The killed node is then started again, as a
// supervisor would, and rejoins as the new master's replica: until then
// the new master has no replica, so events of its partitions are answered
// 503 (wait_replicas puts durability before availability) and producers
// retry them. Not one accepted event is lost: each was on a replica
// before it was answered 202. Events and deliveries whose outcome the dead
// master had not yet passed on run again (at-least-once).
func TestRedisFailover(t *testing.T) {
	res := report(t, "Redis Cluster master SIGKILL (wait_replicas: 1)")
	h := newHarness(t, options{instances: 2, start: 2, cluster: &clusterShape{masters: 3, replicas: 1},
		extra: "wait_replicas: 1\nwait_timeout: 1s\n"})
	l := newLoader(t, h, "failover")
	l.maxTries = 40 // a producer that keeps retrying through the failover

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	loaded := make(chan int, 1)
	go func() { loaded <- l.run(ctx, "failover", prof.rate, prof.load) }()

	time.Sleep(prof.load / 3)
	masters := h.cluster.Masters(t)
	if len(masters) != 3 {
		t.Fatalf("masters before the kill: got %d, want 3", len(masters))
	}
	victim := masters[0]
	killed := time.Now()
	victim.Kill(t)
	t.Logf("killed master %s at +%s", victim.Addr, killed.Sub(start).Round(time.Millisecond))

	// Wait for its replica to be promoted.
	var promoted time.Duration
	for deadline := time.Now().Add(30 * time.Second); ; {
		if len(h.cluster.Masters(t)) == 3 {
			promoted = time.Since(killed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica took over within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("a replica took over %s after the kill", promoted.Round(time.Millisecond))
	victim.Start(t)
	h.cluster.WaitReady(t, 30*time.Second)
	rejoined := time.Since(killed)
	t.Logf("the killed node is back as a replica %s after the kill", rejoined.Round(time.Millisecond))

	posted := <-loaded
	l.wait()
	t.Logf("posted %d events in %s; answers per instance: %s", posted, time.Since(start).Round(time.Millisecond), l.codes())
	for _, in := range h.insts {
		if !in.alive() {
			t.Errorf("%s died; the failover must need no restart", in.name)
		}
	}

	// Serving again: the first 202 after the kill, and events accepted by
	// every instance once the killed node is back as a replica.
	answers := l.answersCopy()
	back := time.Duration(-1)
	after := make([]int, len(h.insts))
	for _, a := range answers {
		if a.code != http.StatusAccepted || a.sent.Before(killed) {
			continue
		}
		if d := a.recv.Sub(killed); back < 0 || d < back {
			back = d
		}
		if a.sent.After(killed.Add(rejoined)) {
			after[a.inst]++
		}
	}
	for i, n := range after {
		if n == 0 {
			t.Errorf("%s accepted no event after the killed node rejoined", h.insts[i].name)
		}
	}

	repeats, gaveUp, bad := l.stats()
	if gaveUp > 0 {
		t.Errorf("the loader gave up on %d events", gaveUp)
	}
	a := h.audit(t, expectAll(l.acceptedIDs(), wantDelivered), prof.drain)
	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = a.accepted, a.lost, a.dupDeliveries, a.dupProcessing
	res.recovery = fmt.Sprintf("%s (promotion), %s (rejoined as replica)", promoted.Round(100*time.Millisecond), rejoined.Round(100*time.Millisecond))
	res.notes = fmt.Sprintf("killed master %s; %d repeats answered 200; %d bad answers; accepted after the rejoin per instance %v; settled in %s",
		victim.Addr, repeats, bad, after, a.settled.Round(100*time.Millisecond))
	t.Logf("failover: %s", res.notes)
}
