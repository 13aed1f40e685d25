//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// getRecord reads event id from one instance.
func (h *harness) getRecord(in *instance, id string) (recordView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.base+"/events/"+url.PathEscape(id), nil)
	if err != nil {
		return recordView{}, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return recordView{}, err
	}
	body, err := readAll(resp)
	if err != nil {
		return recordView{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return recordView{}, fmt.Errorf("%s GET /events/%s: %d %s", in.name, id, resp.StatusCode, body)
	}
	var v recordView
	return v, json.Unmarshal(body, &v)
}

// waitUntil polls cond every 20ms until it holds or d passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestFencing freezes (SIGSTOP) instance A while it holds the lease of
// events whose first forward request the target keeps open. Instance B
// takes them over when the lease expires (attempt 2, answered 200 at once),
// records them succeeded and delivers their callbacks. Then A thaws and its
// attempts 1 are answered 200, in two halves that test the two fences:
//
//   - the first half is answered while A is frozen and its link to Redis
//     (a gate, a TCP proxy) is held shut: on waking, A reads the 200s and
//     submits the stale outcomes before its lease renewal can reach Redis
//     to learn the lease is gone, so the finish script's fence has to
//     refuse them;
//   - the second half is answered once A is awake and connected: its
//     renewal finds the leases gone and cancels the jobs.
//
// Either way A records nothing and sends no callback: the records stay as
// B wrote them (succeeded in 2 attempts, one callback id), the receiver
// gets B's callback exactly once, and A's log reports the lost leases.
func TestFencing(t *testing.T) {
	res := report(t, "fencing: frozen lease holder")
	singleRedisOnly(t, res, "a gate proxies its one connection to it")
	h := newHarness(t, options{instances: 2, start: 1, gateFirst: true})
	begin := time.Now()
	phase := func(what string) { t.Logf("+%s %s", time.Since(begin).Round(time.Millisecond), what) }
	A, B := h.insts[0], h.insts[1]

	ids := make([]string, prof.fenceEvents)
	release := make(map[string]chan struct{}, len(ids))
	var releaseOnce sync.Map // id -> *sync.Once
	for i := range ids {
		ids[i] = fmt.Sprintf("fence-%d", i)
		release[ids[i]] = make(chan struct{})
		releaseOnce.Store(ids[i], new(sync.Once))
	}
	free := func(id string) {
		o, _ := releaseOnce.Load(id)
		o.(*sync.Once).Do(func() { close(release[id]) })
	}
	t.Cleanup(func() { // before the target closes: no handler stays blocked
		for _, id := range ids {
			free(id)
		}
	})
	h.target.setAnswer(func(id string, attempt int, w http.ResponseWriter, r *http.Request) {
		if ch := release[id]; ch != nil && attempt == 1 {
			select {
			case <-ch:
				w.WriteHeader(http.StatusOK)
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	})

	l := newLoader(t, h, "fence")
	for _, id := range ids {
		l.post(id, "/ok")
	}
	l.wait()
	if got := len(l.acceptedIDs()); got != len(ids) {
		t.Fatalf("accepted %d of %d events (answers: %s)", got, len(ids), l.codes())
	}
	allSeen := func(n int) func() bool {
		return func() bool {
			for _, id := range ids {
				if h.target.count(id) < n {
					return false
				}
			}
			return true
		}
	}
	if !waitUntil(10*time.Second, allSeen(1)) {
		t.Fatal("A's first attempts never all reached the target")
	}

	phase("A holds every event; freezing A")
	if err := A.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	t.Cleanup(func() { A.signal(syscall.SIGCONT) })
	if err := B.start(); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(lease+15*time.Second, allSeen(2)) {
		t.Fatalf("B never took the events over after A's lease expired")
	}
	takeover := time.Since(frozen)
	phase("B took every event over")
	// A renews every lease/3, so its lease ran out between 2/3 of a lease
	// and a lease after it froze.
	if takeover < lease*2/3-50*time.Millisecond {
		t.Errorf("B took over %s after A froze, before A's lease (%s, renewed every %s) could have expired", takeover, lease, lease/3)
	}
	before := make(map[string]recordView, len(ids))
	done := waitUntil(15*time.Second, func() bool {
		for _, id := range ids {
			v, err := h.getRecord(B, id)
			if err != nil || v.Status != "succeeded" || v.Callback.Status != "delivered" || !h.recv.hasDelivery(id) {
				return false
			}
			before[id] = v
		}
		return true
	})
	if !done {
		t.Fatalf("B did not record the events succeeded with their callbacks delivered")
	}

	phase("B recorded them, callbacks delivered; answering A's attempts")
	// First half: answered while A is frozen and cut off from Redis.
	var first, second []string
	for i, id := range ids {
		if i%2 == 0 {
			first = append(first, id)
		} else {
			second = append(second, id)
		}
	}
	h.gate.set(false)
	for _, id := range first {
		free(id)
	}
	time.Sleep(300 * time.Millisecond) // the 200s reach A's sockets
	if err := A.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // A reads them and submits its outcomes, held by the gate
	h.gate.set(true)
	// Second half: answered once A is awake and its renewal went through.
	time.Sleep(lease / 2)
	for _, id := range second {
		free(id)
	}
	// Time for A to renew, record, and dispatch whatever it would.
	time.Sleep(2 * lease)

	phase("checking")
	for _, in := range []*instance{A, B} {
		if !in.alive() {
			t.Errorf("%s is not running", in.name)
		}
	}
	dupDeliveries, dupProcessing, lost := 0, 0, 0
	for _, id := range ids {
		was := before[id]
		wrong := false
		for _, in := range []*instance{A, B} {
			v, err := h.getRecord(in, id)
			if err != nil {
				t.Errorf("%s: %v", id, err)
				continue
			}
			if v.Status != "succeeded" || v.Attempts != 2 || v.Callback.ID != was.Callback.ID || v.Callback.Status != "delivered" {
				wrong = true
				t.Errorf("%s via %s: got %v, want B's record: succeeded in 2 attempts, callback %q delivered", id, in.name, v, was.Callback.ID)
			}
		}
		if wrong {
			lost++
		}
		d := h.recv.deliveryOf(id)
		if d.n != 1 || d.webhookIDs[was.Callback.ID] != 1 || d.attempts[2] != 1 {
			t.Errorf("%s: receiver got %d deliveries (webhook-ids %v, attempts %v, statuses %v), want exactly B's: one of %q with attempts 2",
				id, d.n, d.webhookIDs, d.attempts, d.statuses, was.Callback.ID)
		}
		dupDeliveries += max(d.n-1, 0)
		if n := h.target.count(id); n != 2 {
			t.Errorf("%s: the target got %d requests, want 2 (A's frozen attempt and B's)", id, n)
		}
		dupProcessing += max(h.target.count(id)-1, 0)
	}

	logA := A.logText()
	whileRunning := countLines(logA, "lease lost while running")
	atFinish := countLines(logA, "lease lost before the outcome was recorded")
	for _, id := range ids {
		if !hasLine(logA, "lease lost", "id="+id) {
			t.Errorf("A's log does not mention the lost lease of %s (\"lease lost\" ... id=%s)", id, id)
		}
	}
	// The first half must have reached the finish script's fence, or this
	// run did not test it.
	for _, id := range first {
		if !hasLine(logA, "lease lost before the outcome was recorded", "id="+id) {
			t.Errorf("%s: A's log has no \"lease lost before the outcome was recorded\" for it: the finish fence was not exercised", id)
		}
	}
	t.Logf("A's log: %d \"lease lost while running\", %d \"lease lost before the outcome was recorded\"", whileRunning, atFinish)

	res.accepted, res.lost, res.dupDeliveries, res.dupProcessing = len(ids), lost, dupDeliveries, dupProcessing
	res.recovery = fmt.Sprintf("%s (takeover)", takeover.Round(time.Millisecond))
	res.notes = fmt.Sprintf("%d events; duplicate processing is A's frozen attempt, by design; A logged %d lost leases while running, %d refused at finish",
		len(ids), whileRunning, atFinish)
	t.Logf("fencing: %s", res.notes)
}

// hasLine reports whether a line of text contains both a and b; b must end
// the line or be followed by a space.
func hasLine(text, a, b string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, a) && (strings.HasSuffix(line, b) || strings.Contains(line, b+" ")) {
			return true
		}
	}
	return false
}

// countLines counts the lines of text containing s.
func countLines(text, s string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
