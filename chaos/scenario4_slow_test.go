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

// TestSlowHandler runs a batch of events whose business logic takes three
// leases (6s), next to a stream of quick ones. The lease is renewed while
// they run, so each slow event is processed exactly once and succeeds in
// one attempt, and no instance ever reports a lost lease.
func TestSlowHandler(t *testing.T) {
	res := report(t, "business logic 3x the lease")
	h := newHarness(t, options{instances: 2, start: 2})
	slow := 3 * lease
	h.target.setAnswer(func(id string, attempt int, w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(id, "slow-") {
			select {
			case <-time.After(slow):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	l := newLoader(t, h, "slow")

	var slowIDs []string
	for i := range prof.slowEvents {
		id := fmt.Sprintf("slow-%d", i)
		slowIDs = append(slowIDs, id)
		l.post(id, "/ok")
	}
	// Quick events beside them, for the time the slow ones run and more.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	posted := l.run(ctx, "quick", max(prof.rate/2, 1), min(prof.load, slow+4*time.Second))
	l.wait()
	t.Logf("posted %d slow and %d quick events; answers per instance: %s", len(slowIDs), posted, l.codes())

	a := h.audit(t, expectAll(l.acceptedIDs(), wantDelivered), prof.drain)
	var slowest time.Duration
	for _, id := range slowIDs {
		if n := h.target.count(id); n != 1 {
			t.Errorf("%s: the target got %d requests, want exactly 1 (the lease must be renewed, not lost)", id, n)
		}
		v, ok := a.views[id]
		if !ok {
			t.Errorf("%s: no record", id)
			continue
		}
		if v.Status != "succeeded" || v.Attempts != 1 {
			t.Errorf("%s: got %s in %d attempts, want succeeded in 1", id, v.Status, v.Attempts)
		}
		if d := h.recv.deliveryOf(id); d.n > 0 {
			slowest = max(slowest, d.first.Sub(l.acceptedAt(id)))
		}
	}
	if slowest < slow {
		t.Errorf("the slowest slow event was called back %s after it was accepted, less than the %s the target takes: the target did not hold it", slowest, slow)
	}
	// Only the slow events' own leases count: the worker pool may report a
	// quick job's lease "lost" when its renewal races with the recording of
	// its outcome, which is harmless.
	for _, in := range h.insts {
		for _, line := range strings.Split(in.logText(), "\n") {
			if strings.Contains(line, "lease lost") && strings.Contains(line, "id=slow-") {
				t.Errorf("%s lost the lease of a slow event: %s", in.name, line)
			}
		}
	}
	spurious := h.logCount("lease lost")
	if a.dupProcessing > 0 || a.dupDeliveries > 0 {
		t.Errorf("without any fault: %d duplicate forward requests and %d duplicate deliveries, want none", a.dupProcessing, a.dupDeliveries)
	}
	repeats, gaveUp, bad := l.stats()
	if gaveUp > 0 {
		t.Errorf("the loader gave up on %d events although the server was up", gaveUp)
	}
	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = a.accepted, a.lost, a.dupDeliveries, a.dupProcessing
	res.notes = fmt.Sprintf("%d events held %s by the target (lease %s) beside %d quick ones; slowest called back after %s; %d other \"lease lost\" log lines; %d repeats; %d bad answers",
		len(slowIDs), slow, lease, posted, slowest.Round(time.Millisecond), spurious, repeats, bad)
	t.Logf("slow handler: %s", res.notes)
}
