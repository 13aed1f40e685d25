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

// receiverAttempts is the callback policy's max_attempts in
// TestCallbackReceiverOutage. The shared policy (10 attempts, 100ms..1s,
// ±50%) spans about 6.5s from the first delivery to the last, and can span
// as little as 3.25s: a receiver that answers 503 for 8s would dead-letter
// callbacks that are fine. 20 attempts span about 16.5s, never under 8.25s.
const receiverAttempts = 20

// TestCallbackReceiverOutage makes the callback receiver answer 503 (or
// stops it) for a while, as prof.receiverOutages says, during the load:
// every callback is still delivered once it answers 200 again. In the same run,
// events whose callback URL always answers 500 end with callback status
// failed after the policy's attempts, and are listed by GET /dead-letters.
func TestCallbackReceiverOutage(t *testing.T) {
	res := report(t, "callback receiver 503/stopped + dead letters")
	// The breaker is off: this scenario counts the attempts of callbacks
	// that always fail, which an open breaker would space out to one probe
	// per cool-down (TestFlowControlIsolatesASickReceiver tests it).
	h := newHarness(t, options{instances: 2, start: 2, callbackAttempts: receiverAttempts,
		extra: "flow: {failure_threshold: 0, error_rate: 0}\n"})
	l := newLoader(t, h, "receiver")

	var dead []string
	for i := range prof.deadLetters {
		id := fmt.Sprintf("dead-%d", i)
		dead = append(dead, id)
		l.post(id, "/always500")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	loaded := make(chan int, 1)
	go func() { loaded <- l.run(ctx, "receiver", prof.rate, prof.load) }()

	type window struct {
		receiverOutage
		down, back time.Time
	}
	var windows []window
	for k, o := range prof.receiverOutages {
		center := start.Add(prof.load * time.Duration(2*k+1) / time.Duration(2*len(prof.receiverOutages)))
		time.Sleep(time.Until(center.Add(-o.d / 2)))
		w := window{receiverOutage: o}
		_, refusedBefore := h.recv.totals()
		if o.kind == stopped {
			h.recv.stop()
		} else {
			h.recv.setOK(http.StatusServiceUnavailable)
		}
		w.down = time.Now()
		time.Sleep(o.d)
		if o.kind == stopped {
			if err := h.recv.start(); err != nil {
				t.Fatal(err)
			}
		} else {
			h.recv.setOK(http.StatusOK)
		}
		w.back = time.Now()
		windows = append(windows, w)
		_, refused := h.recv.totals()
		t.Logf("receiver outage %d: %s from +%s to +%s; %d deliveries answered non-2xx", k+1, o.kind,
			w.down.Sub(start).Round(time.Millisecond), w.back.Sub(start).Round(time.Millisecond), refused-refusedBefore)
	}
	posted := <-loaded
	l.wait()
	t.Logf("posted %d events (+%d to /always500); answers per instance: %s", posted, len(dead), l.codes())

	want := make(map[string]expectation)
	isDead := make(map[string]bool)
	for _, id := range dead {
		isDead[id] = true
	}
	for _, id := range l.acceptedIDs() {
		if isDead[id] {
			want[id] = wantDeadLetter
		} else {
			want[id] = wantDelivered
		}
	}
	for _, id := range dead {
		if _, ok := want[id]; !ok {
			t.Errorf("%s (callback to /always500) was not accepted", id)
		}
	}
	a := h.audit(t, want, prof.drain)

	// Each outage must have made callbacks retry, and once it ended its
	// backlog is delivered: the time from its end until the last callback it
	// held back arrived.
	var backlog time.Duration
	for k, w := range windows {
		retried := 0
		for id, exp := range want {
			at := l.acceptedAt(id)
			if exp != wantDelivered || at.Before(w.down.Add(-time.Second)) || at.After(w.back) {
				continue
			}
			if a.views[id].Callback.Attempts > 1 {
				retried++
			}
			if d := h.recv.deliveryOf(id); d.n > 0 && d.first.After(w.back) {
				backlog = max(backlog, d.first.Sub(w.back))
			}
		}
		if retried == 0 {
			t.Errorf("receiver outage %d (%s): no callback of an event accepted during it needed a retry; the outage tested nothing", k+1, w.kind)
		}
	}

	// Always-failing callbacks: failed after exactly the policy's attempts.
	anyStopped := false
	for _, w := range windows {
		anyStopped = anyStopped || w.kind == stopped
	}
	for _, id := range dead {
		v, ok := a.views[id]
		if !ok {
			continue // reported lost by the audit
		}
		if v.Callback.Status != "failed" || v.Callback.Attempts != receiverAttempts {
			t.Errorf("%s: callback %s after %d attempts, want failed after %d", id, v.Callback.Status, v.Callback.Attempts, receiverAttempts)
		}
		// Attempts made while the receiver was stopped never reach it.
		if n := h.recv.rejectedOf(id); n > receiverAttempts || n < receiverAttempts && !anyStopped {
			t.Errorf("%s: /always500 got %d requests, want %d (the policy's attempts)", id, n, receiverAttempts)
		}
		if d := h.recv.deliveryOf(id); d.n != 0 {
			t.Errorf("%s: %d deliveries answered 2xx, want none", id, d.n)
		}
	}

	// And they are the dead letters, and nothing else is.
	listed := 0
	dls, err := h.deadLetters(t)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), ": 404 ") {
			hint = " (the endpoint is not in this build of the server)"
		}
		t.Errorf("dead letters: %v%s", err, hint)
	} else {
		for _, id := range dead {
			dl, ok := dls[id]
			if !ok {
				t.Errorf("%s: callback failed for good, but it is not in GET /dead-letters", id)
				continue
			}
			listed++
			switch {
			case dl.DeadLetter == nil:
				t.Errorf("%s: dead letter without \"dead_letter\": %v", id, dl)
			case dl.DeadLetter.Kind != "callback":
				t.Errorf("%s: dead_letter.kind: got %q, want \"callback\"", id, dl.DeadLetter.Kind)
			default:
				if _, err := time.Parse(time.RFC3339, dl.DeadLetter.FailedAt); err != nil {
					t.Errorf("%s: dead_letter.failed_at %q: %v", id, dl.DeadLetter.FailedAt, err)
				}
			}
			if dl.Callback.Status != "failed" || dl.Callback.ID == "" || !terminal(dl.Status) || dl.EventType != "chaos.load" {
				t.Errorf("%s: dead letter record: got %v (event_type %q), want terminal with callback failed", id, dl, dl.EventType)
			}
		}
		for id := range dls {
			if !isDead[id] {
				t.Errorf("%s is in GET /dead-letters but its callback was delivered: %v", id, dls[id])
			}
		}
	}

	repeats, gaveUp, bad := l.stats()
	if gaveUp > 0 {
		t.Errorf("the loader gave up on %d events although the server was up", gaveUp)
	}
	if a.dupProcessing > 0 {
		t.Errorf("duplicate processing without any crash: %d", a.dupProcessing)
	}
	delivered, refused := h.recv.totals()
	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = a.accepted, a.lost, a.dupDeliveries, a.dupProcessing
	res.recovery = fmt.Sprintf("%s (backlog delivered)", backlog.Round(time.Millisecond))
	var outages []string
	for _, w := range windows {
		outages = append(outages, fmt.Sprintf("%s %s", w.kind, w.d))
	}
	res.notes = fmt.Sprintf("outages: %s; %d deliveries, %d answered non-2xx; %d/%d dead letters listed (callback policy %d attempts); %d repeats; %d bad answers; settled in %s",
		strings.Join(outages, ", "), delivered, refused, listed, len(dead), receiverAttempts, repeats, bad, a.settled.Round(100*time.Millisecond))
	t.Logf("receiver outage: %s", res.notes)
}
