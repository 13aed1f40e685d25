//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// replicaStall is how long the victim's replica is paused before its
// master is killed. It stays under the cluster's node timeout (2s).
// Pausing alone loses nothing: the kernel's socket buffers hold what the
// master sends meanwhile, and the replica reads it when resumed. So the
// test also writes stallBytes of other data to the master during the
// stall, as a busy master would: the buffers fill, and the writes after
// that wait in the master's own memory, and die with it.
const (
	replicaStall = 1500 * time.Millisecond
	stallBytes   = 48 << 20
)

// TestRedisFailover runs two instances with wait_replicas: 1 on a private
// Redis Cluster of 3 masters with a replica each. A third into the load,
// one master's replica is paused for 1.5s, so that it falls behind, and
// then the master is killed with SIGKILL and the replica resumed: it takes
// over (within the cluster's node timeout plus an election) with only what
// it had. The instances keep serving without a restart. The killed node is
// then started again, as a supervisor would, and rejoins as the new
// master's replica: until then the new master has no replica, so events of
// its partitions are answered 503 (wait_replicas puts durability before
// availability) and producers retry them.
//
// Not one accepted event is lost: each was on a replica before it was
// answered 202, and those written to the master during the stall were
// answered 503. Events and deliveries whose outcome the dead master had not
// yet passed on run again (at-least-once). TestRedisFailoverWithoutWait is
// the control: the same run without wait_replicas loses events it
// accepted, so this scenario can tell.
func TestRedisFailover(t *testing.T) {
	res := report(t, "Redis Cluster master SIGKILL, lagging replica (wait_replicas: 1)")
	h, l, f := failover(t, res, "wait_replicas: 1\nwait_timeout: 1s\n")
	repeats, gaveUp, bad := l.stats()
	if gaveUp > 0 {
		t.Errorf("the loader gave up on %d events", gaveUp)
	}
	a := h.audit(t, expectAll(l.acceptedIDs(), wantDelivered), prof.drain)
	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = a.accepted, a.lost, a.dupDeliveries, a.dupProcessing
	res.recovery = f.recovery()
	res.notes = fmt.Sprintf("killed master %s after a %s stall of its replica; %d repeats answered 200; %d bad answers; accepted after the rejoin per instance %v; settled in %s",
		f.victim, replicaStall, repeats, bad, f.acceptedAfter, a.settled.Round(100*time.Millisecond))
	t.Logf("failover: %s", res.notes)
}

// TestRedisFailoverWithoutWait is TestRedisFailover's control, without
// wait_replicas: events answered 202 while the replica was paused were on
// the killed master only, and are gone. It fails if none is lost: then the
// scenario could not tell whether wait_replicas keeps them.
func TestRedisFailoverWithoutWait(t *testing.T) {
	res := report(t, "control: the same without wait_replicas (loss expected)")
	h, l, f := failover(t, res, "")
	ids := l.acceptedIDs()
	time.Sleep(5 * time.Second) // let what survived settle
	views, _, _ := h.fetchRecords(ids)
	lost := len(ids) - len(views)
	res.accepted, res.lost = len(ids), lost
	res.recovery = f.recovery()
	res.notes = fmt.Sprintf("%d of %d accepted events gone after the failover (answered 202 from the master alone during the replica's %s stall)",
		lost, len(ids), replicaStall)
	t.Logf("control: %s", res.notes)
	if lost == 0 {
		t.Errorf("no accepted event was lost without wait_replicas: the failover scenario cannot tell whether wait_replicas keeps them")
	}
}

// failoverRun is what failover measured.
type failoverRun struct {
	victim             string
	promoted, rejoined time.Duration // after the kill
	acceptedAfter      []int         // events accepted per instance after the rejoin
}

func (f failoverRun) recovery() string {
	return fmt.Sprintf("%s (promotion), %s (rejoined as replica)", f.promoted.Round(100*time.Millisecond), f.rejoined.Round(100*time.Millisecond))
}

// failover runs the load on two instances configured with extra on a
// 3-master cluster with a replica each, stalls a replica, kills its master
// and restarts it once the replica took over; it returns when the load
// ended and every answer came.
func failover(t *testing.T, res *result, extra string) (*harness, *loader, failoverRun) {
	if onCluster() {
		res.notes = "skipped with CHAOS_REDIS=cluster: it starts its own cluster, and runs in the default run"
		t.Skip("chaos: CHAOS_REDIS=cluster: the failover scenarios start their own cluster, and run in the default run")
	}
	h := newHarness(t, options{instances: 2, start: 2, cluster: &clusterShape{masters: 3, replicas: 1}, extra: extra})
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
	replica := h.cluster.ReplicaOf(t, victim)
	if replica == nil {
		t.Fatalf("no replica of %s", victim.Addr)
	}
	ballast := ballastWriter(t, h, victim.Addr) // before the pause: it reads the slot map
	replica.Pause(t)
	paused := time.Now()
	ballast()
	time.Sleep(time.Until(paused.Add(replicaStall)))
	killed := time.Now()
	victim.Kill(t)
	replica.Resume(t)
	t.Logf("paused replica %s for %s, killed master %s at +%s", replica.Addr, replicaStall, victim.Addr,
		killed.Sub(start).Round(time.Millisecond))

	f := failoverRun{victim: victim.Addr}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if len(h.cluster.Masters(t)) == 3 {
			f.promoted = time.Since(killed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no replica took over within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the replica took over %s after the kill", f.promoted.Round(time.Millisecond))
	victim.Start(t)
	h.cluster.WaitReady(t, 30*time.Second)
	f.rejoined = time.Since(killed)
	t.Logf("the killed node is back as a replica %s after the kill", f.rejoined.Round(time.Millisecond))

	posted := <-loaded
	l.wait()
	t.Logf("posted %d events in %s; answers per instance: %s", posted, time.Since(start).Round(time.Millisecond), l.codes())
	for _, in := range h.insts {
		if !in.alive() {
			t.Errorf("%s died; the failover must need no restart", in.name)
		}
	}
	f.acceptedAfter = make([]int, len(h.insts))
	for _, a := range l.answersCopy() {
		if a.code == http.StatusAccepted && a.sent.After(killed.Add(f.rejoined)) {
			f.acceptedAfter[a.inst]++
		}
	}
	for i, n := range f.acceptedAfter {
		if n == 0 {
			t.Errorf("%s accepted no event after the killed node rejoined", h.insts[i].name)
		}
	}
	return h, l, f
}

// ballastWriter finds a key of the master at addr and returns a function
// that writes stallBytes to it, in 1 MiB values, so that the master's
// replication stream outgrows the socket buffers of a paused replica. The
// key is found first, while every node answers: the cluster client may ask
// any node for the slot map.
func ballastWriter(t *testing.T, h *harness, addr string) func() {
	t.Helper()
	rdb := h.cluster.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := ""
	for i := 0; i < 1000 && key == ""; i++ {
		k := fmt.Sprintf("chaos-ballast-%d", i)
		if node, err := rdb.MasterForKey(ctx, k); err == nil && node.Options().Addr == addr {
			key = k
		}
	}
	if key == "" {
		t.Fatalf("no key of master %s found", addr)
	}
	if err := rdb.Set(ctx, key, "warm", 0).Err(); err != nil {
		t.Fatalf("ballast key on %s: %v", addr, err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), replicaStall)
		defer cancel()
		value := strings.Repeat("x", 1<<20)
		for range stallBytes >> 20 {
			if err := rdb.Set(ctx, key, value, 0).Err(); err != nil {
				t.Logf("ballast write to %s: %v", addr, err)
				return
			}
		}
	}
}
