//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The flow control of TestFlowControlIsolatesASickReceiver, as its
// callback block configures it.
const (
	flowTimeout   = 2 * time.Second
	flowCooldown  = 2 * time.Second
	flowThreshold = 5
	flowCap       = 16
	// sickFor is how long the sick receiver is down: it hangs for the first
	// half, then answers 500.
	sickFor = 20 * time.Second
)

// TestFlowControlIsolatesASickReceiver loads two instances with events
// whose callbacks go, half and half, to a healthy receiver and to one that
// hangs (then answers 500) for 20s. Per-destination flow control must keep
// the healthy receiver's callbacks flowing (delay p99 under 1s), open the
// sick destination's breaker and close it again once it recovers, send it
// no more than its in-flight cap and the breaker's probes while it is
// down, and deliver every callback to both, none lost.
func TestFlowControlIsolatesASickReceiver(t *testing.T) {
	res := report(t, "flow control: one of two receivers hangs, then 500s, for 20s")
	h := newHarness(t, options{instances: 2, start: 2, callbackAttempts: receiverAttempts,
		callbackExtra: fmt.Sprintf("  timeout: %s\n", flowTimeout),
		extra:         fmt.Sprintf("flow: {max_in_flight: %d, failure_threshold: %d, cooldown: %s}\n", flowCap, flowThreshold, flowCooldown)})
	sick := newReceiver(t)
	l := newLoader(t, h, "flow")
	load := sickFor + 10*time.Second
	rate := max(prof.rate/2, 50) // per receiver

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	states := watchDestination(ctx, h, sick.base)
	start := time.Now()
	posted := make(chan int, 1)
	go func() {
		interval := time.Second / time.Duration(rate)
		n := 0
		for ; time.Duration(n)*interval < load && ctx.Err() == nil; n++ {
			time.Sleep(time.Until(start.Add(time.Duration(n) * interval)))
			l.post(fmt.Sprintf("healthy-%d", n), "/ok")
			l.postTo(sick, fmt.Sprintf("sick-%d", n), "/ok")
		}
		posted <- n
	}()

	time.Sleep(5 * time.Second)
	down := time.Now()
	sick.setHang(true)
	time.Sleep(sickFor / 2)
	sick.setOK(500)
	sick.setHang(false)
	time.Sleep(sickFor / 2)
	sick.setOK(200)
	back := time.Now()
	n := <-posted
	l.wait()
	t.Logf("posted %d events to each receiver; the sick one was down from +%s to +%s", n,
		down.Sub(start).Round(time.Millisecond), back.Sub(start).Round(time.Millisecond))

	want := make(map[string]expectation)
	for _, id := range l.acceptedIDs() {
		exp := wantDelivered
		if strings.HasPrefix(id, "sick-") {
			exp.recv = sick
		}
		want[id] = exp
	}
	a := h.audit(t, want, prof.drain)
	cancel()
	seen := <-states

	// The healthy receiver did not notice: the delay from acceptance to its
	// callback, p99.
	var delays []time.Duration
	for id := range want {
		if strings.HasPrefix(id, "healthy-") {
			if d := h.recv.deliveryOf(id); d.n > 0 {
				delays = append(delays, d.first.Sub(l.acceptedAt(id)))
			}
		}
	}
	p99 := percentile(delays, 0.99)
	if p99 > time.Second {
		t.Errorf("healthy receiver's callback delay p99: got %s, want under 1s", p99)
	}

	// The breaker opened during the outage and closed after it.
	if !slices.Contains(seen, "open") {
		t.Errorf("the sick destination's breaker was never seen open; states seen: %v", seen)
	}
	if last := seen[len(seen)-1]; last != "closed" {
		t.Errorf("the sick destination's breaker ended %s, want closed; states seen: %v", last, seen)
	}

	// While down, the sick receiver got at most: the in-flight cap (the
	// deliveries that hang when it starts hanging), the deliveries that
	// take the slots freed by the first failures before the breaker opens
	// (fewer than the threshold), and the probes, one per cool-down at
	// most. Without flow control every delivery and retry would reach it.
	during := sick.arrivalsBetween(down, back)
	bound := flowCap + flowThreshold + int(sickFor/flowCooldown) + 2
	if during > bound {
		t.Errorf("requests to the sick receiver while it was down: got %d, want at most %d (cap %d + threshold %d + one probe per %s)",
			during, bound, flowCap, flowThreshold, flowCooldown)
	}

	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = a.accepted, a.lost, a.dupDeliveries, a.dupProcessing
	res.recovery = fmt.Sprintf("healthy p99 %s", p99.Round(time.Millisecond))
	res.notes = fmt.Sprintf("sick receiver down %s (hang, then 500): %d requests to it meanwhile (bound %d: cap, threshold, probes); breaker states seen %v; settled in %s",
		sickFor, during, bound, seen, a.settled.Round(100*time.Millisecond))
	t.Logf("flow control: %s", res.notes)
}

// watchDestination polls GET /destinations every 100ms until ctx ends, and
// then sends the sequence of states the destination of base went through
// (each change once).
func watchDestination(ctx context.Context, h *harness, base string) <-chan []string {
	out := make(chan []string, 1)
	go func() {
		var seen []string
		defer func() { out <- seen }()
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			code, body, err := h.get(rctx, "/destinations")
			cancel()
			if err == nil && code == 200 {
				var v struct {
					Destinations []struct {
						Name  string `json:"destination"`
						State string `json:"state"`
					} `json:"destinations"`
				}
				json.Unmarshal(body, &v)
				for _, d := range v.Destinations {
					if d.Name == base {
						if len(seen) == 0 || seen[len(seen)-1] != d.State {
							seen = append(seen, d.State)
						}
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return out
}

// percentile returns the p-quantile of ds (0 when empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, int(float64(len(ds))*p))]
}
