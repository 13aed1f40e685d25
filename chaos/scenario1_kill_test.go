//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

// TestKill9 kills server instances with SIGKILL every prof.killEvery during
// the load, restarting each on the same address 300ms later. Nothing
// accepted may be lost; each kill may duplicate at most what was in flight
// on that instance: the jobs it held leases for, running or with their
// outcome waiting to be recorded (inflightFactor per worker).
func TestKill9(t *testing.T) {
	res := report(t, "kill -9 during load")
	h := newHarness(t, options{instances: 2, start: 2})
	// 10-60ms of business logic, so that every kill catches events in flight.
	h.target.setAnswer(func(id string, attempt int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Duration(10+rand.IntN(50)) * time.Millisecond):
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
		}
	})
	l := newLoader(t, h, "kill")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	loaded := make(chan int, 1)
	go func() { loaded <- l.run(ctx, "kill", prof.rate, prof.load) }()

	type kill struct {
		inst     int
		at       time.Time
		restart  time.Duration // kill until the new process answered /healthz
		accepted time.Duration // kill until that instance answered 202 again
	}
	var kills []kill
	if err := h.killRestart(t, start, func(in *instance, killed time.Time) {
		kills = append(kills, kill{inst: in.idx, at: killed, restart: time.Since(killed)})
	}); err != nil {
		t.Error(err)
		cancel()
	}
	posted := <-loaded
	l.wait()
	t.Logf("posted %d events in %s; answers per instance: %s", posted, time.Since(start).Round(time.Millisecond), l.codes())

	// How long each killed instance was out of the loader's reach.
	var worst time.Duration
	answers := l.answersCopy()
	for i := range kills {
		k := &kills[i]
		k.accepted = -1
		for _, a := range answers {
			if a.inst == k.inst && a.code == http.StatusAccepted && a.recv.After(k.at) && (k.accepted < 0 || a.recv.Sub(k.at) < k.accepted) {
				k.accepted = a.recv.Sub(k.at)
			}
		}
		if k.accepted < 0 {
			t.Errorf("kill %d: %s never answered 202 again", i+1, h.insts[k.inst].name)
			continue
		}
		worst = max(worst, k.accepted)
	}
	for _, in := range h.insts {
		if !in.alive() {
			t.Errorf("%s is not running after the last restart", in.name)
		}
	}

	repeats, gaveUp, bad := l.stats()
	if gaveUp > 0 {
		t.Errorf("the loader gave up on %d events although an instance was always up", gaveUp)
	}
	ids := l.acceptedIDs()
	a := h.audit(t, expectAll(ids, wantDelivered), prof.drain)

	// Each kill can repeat at most the events and deliveries in flight on
	// the killed instance.
	procBound, delivBound := inflightFactor*workers*len(kills), inflightFactor*callbackWorkers*len(kills)
	if a.dupProcessing > procBound {
		t.Errorf("duplicate processing: got %d, want at most %d (%d kills × %d workers × %d)", a.dupProcessing, procBound, len(kills), workers, inflightFactor)
	}
	if a.dupDeliveries > delivBound {
		t.Errorf("duplicate deliveries: got %d, want at most %d (%d kills × %d callback workers × %d)", a.dupDeliveries, delivBound, len(kills), callbackWorkers, inflightFactor)
	}
	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = a.accepted, a.lost, a.dupDeliveries, a.dupProcessing
	res.recovery = fmt.Sprintf("%s (kill→202)", worst.Round(time.Millisecond))
	res.notes = fmt.Sprintf("%d kills; dup bounds %d/%d; %d repeats answered 200; %d failed events; %d bad answers; settled in %s",
		len(kills), delivBound, procBound, repeats, a.failedEvents, bad, a.settled.Round(100*time.Millisecond))
	t.Logf("kill -9: %s", res.notes)
}
