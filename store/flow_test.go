package store_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

const (
	sick    = "http://sick.test:8080"
	healthy = "http://healthy.test:8080"
)

// queueCallbacks records events whose callbacks to url are due at now,
// through the real path: enqueue, claim, finish with a pending callback.
func queueCallbacks(t *testing.T, s *store.Redis, now time.Time, url string, ids ...string) {
	t.Helper()
	ctx := context.Background()
	var evs []store.NewEvent
	for _, id := range ids {
		evs = append(evs, store.NewEvent{Record: store.Record{ID: id, EventType: "t", BodyHash: "h", SuccessURL: url + "/cb?token=x"}, Body: []byte("{}")})
	}
	if _, err := s.Enqueue(ctx, now, evs); err != nil {
		t.Fatal(err)
	}
	jobs, _, err := s.Events().Claim(ctx, now, lease, len(ids))
	if err != nil || len(jobs) != len(ids) {
		t.Fatalf("claim events: got %d, %v; want %d", len(jobs), err, len(ids))
	}
	var outs []store.Outcome
	for _, j := range jobs {
		rec := j.Record
		rec.Status = event.StatusSucceeded
		outs = append(outs, store.Outcome{Lease: j.Lease, Record: rec,
			Callback: &store.Callback{ID: "cb-" + j.ID, EventID: j.ID, Status: event.CallbackPending, URL: rec.SuccessURL, EventStatus: rec.Status}})
	}
	if errs, err := s.Events().Finish(ctx, now, outs); err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatalf("finish events: %v %v", errs, err)
	}
}

// claimIDs claims up to n callbacks at now and returns the jobs by id.
func claimIDs(t *testing.T, q store.CallbackQueue, now time.Time, n int) map[string]store.CallbackJob {
	t.Helper()
	jobs, _, err := q.Claim(context.Background(), now, lease, n)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.CallbackJob{}
	for _, j := range jobs {
		out[j.ID] = j
	}
	return out
}

// finishAll records an outcome of every job, with a flow outcome: "ok"
// delivers, anything else retries in a minute.
func finishAll(t *testing.T, q store.CallbackQueue, now time.Time, jobs map[string]store.CallbackJob, flow string) {
	t.Helper()
	var outs []store.CallbackOutcome
	for _, j := range jobs {
		cb := j.Callback
		cb.Status = event.CallbackDelivered
		if flow != store.FlowOK {
			cb.Status, cb.NextAttemptAt = event.CallbackRetrying, now.Add(time.Minute)
		}
		outs = append(outs, store.CallbackOutcome{Lease: j.Lease, Callback: cb, Flow: flow})
	}
	if errs, err := q.Finish(context.Background(), now, outs); err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatalf("finish callbacks: %v %v", errs, err)
	}
}

func keys(m map[string]store.CallbackJob) []string {
	out := make([]string, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func destination(t *testing.T, s *store.Redis, now time.Time, name string) store.Destination {
	t.Helper()
	ds, err := s.Destinations(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("destination %s not listed in %+v", name, ds)
	return store.Destination{}
}

// The breaker: failures open it, an open destination's deliveries are
// deferred (not attempted, not blocking others), one probe goes out after
// the cool-down, and its success closes the breaker.
func TestFlowBreaker(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		q := s.Callbacks().WithFlow(store.Flow{Default: store.Limits{FailureThreshold: 3, Cooldown: 10 * time.Second}})

		queueCallbacks(t, s, t0, sick, "s1", "s2", "s3")
		finishAll(t, q, t0, claimIDs(t, q, t0, 10), store.FlowFailed)
		if d := destination(t, s, t0, sick); d.State != "open" || d.ConsecutiveFailures != 3 || !d.NextProbeAt.Equal(t0.Add(10*time.Second)) {
			t.Fatalf("after 3 failures: got %+v, want open until t0+10s", d)
		}

		// Retries coming due, and new deliveries to both destinations.
		at := t0.Add(time.Minute)
		queueCallbacks(t, s, at, sick, "s4", "s5")
		queueCallbacks(t, s, at, healthy, "h1", "h2")
		// The sick destination's breaker was open until t0+10s: at t0+1m it
		// is half-open, so one of its deliveries goes out as the probe.
		got := claimIDs(t, q, at, 10)
		var probes []string
		for id := range got {
			if id[0] == 's' {
				probes = append(probes, id)
			}
		}
		if len(probes) != 1 || got["h1"].ID == "" || got["h2"].ID == "" {
			t.Fatalf("half-open claim: got %v, want h1, h2 and one probe to the sick destination", keys(got))
		}
		snap := get(t, s, "s4")
		if probes[0] == "s4" {
			snap = get(t, s, "s5")
		}
		if snap.Waiting == nil || snap.Waiting.Reason != "half-open" {
			t.Errorf("a delivery deferred behind the probe: got waiting %+v, want half-open", snap.Waiting)
		}
		// The probe fails: open again for the cool-down, and nothing to the
		// sick destination is claimed meanwhile, however many are due.
		finishAll(t, q, at, map[string]store.CallbackJob{probes[0]: got[probes[0]]}, store.FlowFailed)
		finishAll(t, q, at, map[string]store.CallbackJob{"h1": got["h1"], "h2": got["h2"]}, store.FlowOK)
		queueCallbacks(t, s, at.Add(time.Second), healthy, "h3")
		h3 := claimIDs(t, q, at.Add(time.Second), 10)
		if !slices.Equal(keys(h3), []string{"h3"}) {
			t.Fatalf("claim while open: got %v, want only h3", keys(h3))
		}
		finishAll(t, q, at.Add(time.Second), h3, store.FlowOK)
		waiter := "s4" // one that was not the probe
		if probes[0] == "s4" {
			waiter = "s5"
		}
		snap = get(t, s, waiter)
		// Deliveries deferred to the end of the cool-down come back spread
		// over at most a second after it.
		if w := snap.Waiting; w == nil || w.Reason != "open" || w.Until.Before(at.Add(10*time.Second)) || w.Until.After(at.Add(11*time.Second)) {
			t.Errorf("%s while open: got waiting %+v, want open until the cool-down ends (+ up to 1s)", waiter, snap.Waiting)
		}
		if snap.Callback.Attempts != 0 {
			t.Errorf("%s while open: got %d attempts, want 0 (a deferral is no attempt)", waiter, snap.Callback.Attempts)
		}

		// After the cool-down one probe goes out; it succeeds and closes the
		// breaker; then everything due flows.
		later := at.Add(11 * time.Second)
		got = claimIDs(t, q, later, 10)
		if len(got) != 1 {
			t.Fatalf("second probe: got %v, want one delivery", keys(got))
		}
		finishAll(t, q, later, got, store.FlowOK)
		if d := destination(t, s, later, sick); d.State != "closed" || d.ConsecutiveFailures != 0 {
			t.Fatalf("after a good probe: got %+v, want closed", d)
		}
		rest := claimIDs(t, q, later.Add(2*time.Minute), 10)
		if len(rest) != 4 { // s1, s2, s3 (their retries) and the other of s4, s5
			t.Errorf("after closing: got %v, want the 4 other sick deliveries", keys(rest))
		}
	})
}

// MaxInFlight caps a destination's deliveries in flight; the others wait,
// and a delivery whose sender died stops counting when its lease expires.
func TestFlowMaxInFlight(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		q := s.Callbacks().WithFlow(store.Flow{Default: store.Limits{MaxInFlight: 2}})
		queueCallbacks(t, s, t0, sick, "c1", "c2", "c3", "c4", "c5")
		queueCallbacks(t, s, t0, healthy, "h1")

		first := claimIDs(t, q, t0, 10)
		if len(first) != 3 || first["h1"].ID == "" {
			t.Fatalf("claim: got %v, want 2 of the capped destination and h1", keys(first))
		}
		if d := destination(t, s, t0, sick); d.InFlight != 2 {
			t.Errorf("in flight: got %d, want 2", d.InFlight)
		}
		if got := claimIDs(t, q, t0.Add(time.Second), 10); len(got) != 0 {
			t.Fatalf("claim at the cap: got %v, want none", keys(got))
		}
		// One finishes: one more may go.
		var one map[string]store.CallbackJob
		for id, j := range first {
			if id != "h1" {
				one = map[string]store.CallbackJob{id: j}
				break
			}
		}
		finishAll(t, q, t0.Add(time.Second), one, store.FlowOK)
		if got := claimIDs(t, q, t0.Add(2*time.Second), 10); len(got) != 1 {
			t.Fatalf("claim after one finished: got %v, want 1", keys(got))
		}
		// The two in flight are never finished (their sender died): once
		// their leases expire they no longer count, and their deliveries are
		// claimable again.
		afterLease := t0.Add(2*time.Second + lease + time.Second)
		got := claimIDs(t, q, afterLease, 10)
		delete(got, "h1") // its lease expired too
		if len(got) != 2 {
			t.Errorf("claim after the leases expired: got %v, want 2 of the capped destination", keys(got))
		}
	})
}

// Rate admits Burst deliveries at once, then Rate a second; a 429's pause
// defers every delivery to the destination.
func TestFlowRateAndPause(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		q := s.Callbacks().WithFlow(store.Flow{Default: store.Limits{Rate: 2, Burst: 2}})
		var ids []string
		for i := range 6 {
			ids = append(ids, fmt.Sprintf("r%d", i))
		}
		queueCallbacks(t, s, t0, sick, ids...)
		got := claimIDs(t, q, t0, 10)
		if len(got) != 2 {
			t.Fatalf("burst: got %v, want 2", keys(got))
		}
		finishAll(t, q, t0, got, store.FlowPause(5*time.Second))
		if got := claimIDs(t, q, t0.Add(4*time.Second), 10); len(got) != 0 {
			t.Fatalf("claim while paused: got %v, want none", keys(got))
		}
		if d := destination(t, s, t0.Add(4*time.Second), sick); !d.PausedUntil.Equal(t0.Add(5 * time.Second)) {
			t.Errorf("paused until: got %v, want t0+5s", d.PausedUntil)
		}
		// After the pause the bucket has refilled to its burst, no more.
		if got := claimIDs(t, q, t0.Add(6*time.Second), 10); len(got) != 2 {
			t.Fatalf("after the pause: got %v, want the burst of 2", keys(got))
		}
		if got := claimIDs(t, q, t0.Add(6500*time.Millisecond), 10); len(got) != 1 {
			t.Errorf("half a second later at 2/s: got %v, want 1", keys(got))
		}
	})
}

// The error rate over the window opens the breaker without consecutive
// failures.
func TestFlowErrorRate(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		q := s.Callbacks().WithFlow(store.Flow{Default: store.Limits{ErrorRate: 0.5, MinRequests: 4, Window: time.Minute, Cooldown: time.Minute}})
		for i, flow := range []string{store.FlowOK, store.FlowFailed, store.FlowOK, store.FlowFailed} {
			id := fmt.Sprintf("e%d", i)
			at := t0.Add(time.Duration(i) * time.Second)
			queueCallbacks(t, s, at, sick, id)
			finishAll(t, q, at, claimIDs(t, q, at, 1), flow)
		}
		if d := destination(t, s, t0.Add(4*time.Second), sick); d.State != "open" {
			t.Errorf("after 2 of 4 failed: got %+v, want open", d)
		}
	})
}

// Limits per destination override the default.
func TestFlowPerDestination(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	q := s.Callbacks().WithFlow(store.Flow{
		Default:        store.Limits{MaxInFlight: 1},
		PerDestination: map[string]store.Limits{store.DestinationOf(healthy + "/any/path"): {MaxInFlight: 3}},
	})
	queueCallbacks(t, s, t0, sick, "s1", "s2", "s3")
	queueCallbacks(t, s, t0, healthy, "h1", "h2", "h3")
	got := claimIDs(t, q, t0, 10)
	var nsick, nhealthy int
	for id := range got {
		if id[0] == 's' {
			nsick++
		} else {
			nhealthy++
		}
	}
	if nsick != 1 || nhealthy != 3 {
		t.Errorf("got %d sick and %d healthy, want 1 and 3", nsick, nhealthy)
	}
}

func TestDestinationOf(t *testing.T) {
	for raw, want := range map[string]string{
		"http://Example.com/cb?x=1":       "http://example.com:80",
		"https://example.com/cb":          "https://example.com:443",
		"https://example.com:8443/a/b":    "https://example.com:8443",
		"http://[::1]:9000/cb":            "http://[::1]:9000",
		"HTTP://user@127.0.0.1:9/cb#frag": "http://127.0.0.1:9",
	} {
		if got := store.DestinationOf(raw); got != want {
			t.Errorf("DestinationOf(%q): got %q, want %q", raw, got, want)
		}
	}
}

// Idle destinations are forgotten, unless something of theirs is in
// flight or their breaker is open.
func TestPruneDestinations(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		q := s.Callbacks().WithFlow(store.Flow{Default: store.Limits{MaxInFlight: 10, FailureThreshold: 1, Cooldown: time.Hour}})
		ctx := context.Background()
		queueCallbacks(t, s, t0, healthy, "h1")
		finishAll(t, q, t0, claimIDs(t, q, t0, 10), store.FlowOK) // idle and closed
		queueCallbacks(t, s, t0, sick, "s1")
		finishAll(t, q, t0, claimIDs(t, q, t0, 10), store.FlowFailed) // open for an hour
		queueCallbacks(t, s, t0, "http://busy.test:80", "b1")
		claimIDs(t, q, t0, 10) // in flight until the lease ends

		later := t0.Add(10 * time.Second)
		n, err := s.PruneDestinations(ctx, later, 5*time.Second)
		if err != nil || n != 1 {
			t.Fatalf("prune: got %d, %v; want the idle closed destination only", n, err)
		}
		ds, _ := s.Destinations(ctx, later)
		var names []string
		for _, d := range ds {
			names = append(names, d.Name)
		}
		slices.Sort(names)
		if want := []string{"http://busy.test:80", sick}; !slices.Equal(names, want) {
			t.Errorf("destinations left: got %v, want %v", names, want)
		}
	})
}

// A process's share of one destination (Flow.Local) leaves what would go
// past it due and untouched (not leased, no attempt counted), whatever the
// global limits, for a claim that has room.
func TestFlowLocalShare(t *testing.T) {
	b := redistest.Mini(t)
	s := newStore(t, b)
	// What this process has in flight, as its dispatcher would count it:
	// one to the sick destination already, plus what the claims lease.
	here := map[string]int{store.DestinationOf(sick): 1}
	q := s.Callbacks().WithFlow(store.Flow{Local: 2, LocalInFlight: func() map[string]int { return maps.Clone(here) }})
	queueCallbacks(t, s, t0, sick, "s1", "s2", "s3")
	queueCallbacks(t, s, t0, healthy, "h1", "h2", "h3")
	got := map[string]store.CallbackJob{}
	for range 20 { // a claim may stop at this process's share; the next ones go on
		for id, j := range claimIDs(t, q, t0, 10) {
			got[id] = j
			here[store.DestinationOf(j.Callback.URL)]++
		}
	}
	var nsick int
	for id := range got {
		if id[0] == 's' {
			nsick++
		}
	}
	if nsick != 1 || len(got) != 3 {
		t.Errorf("got %v, want 1 more of the destination with 1 of 2 in flight here, and 2 of the other", keys(got))
	}
	var left []string
	for _, id := range []string{"s1", "s2", "s3"} {
		if got[id].ID != "" {
			continue
		}
		left = append(left, id)
		if snap := get(t, s, id); snap.Waiting != nil || snap.Callback.Attempts != 0 {
			t.Errorf("delivery %s past the share: got waiting %+v after %d attempts, want neither", id, snap.Waiting, snap.Callback.Attempts)
		}
	}
	// Once this process's deliveries to it end, the rest go out.
	here = map[string]int{}
	for range 5 {
		for id := range claimIDs(t, q, t0.Add(time.Second), 10) {
			got[id] = store.CallbackJob{}
		}
	}
	for _, id := range left {
		if _, ok := got[id]; !ok {
			t.Errorf("delivery %s: not claimed once the share had room", id)
		}
	}
}

// Giving back a lease that another process took over meanwhile leaves that
// process's delivery counted in flight.
func TestFlowReleaseOfALeaseTakenOver(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		s := newStore(t, b)
		q := s.Callbacks().WithFlow(store.Flow{Default: store.Limits{MaxInFlight: 1}})
		ctx := context.Background()
		queueCallbacks(t, s, t0, sick, "s1")
		first := claimIDs(t, q, t0, 1)["s1"]
		afterLease := t0.Add(lease + time.Second)
		second := claimIDs(t, q, afterLease, 1)["s1"] // the first holder's lease expired
		if second.ID == "" || second.Token == first.Token {
			t.Fatalf("takeover: got %+v, want s1 under a new token", second)
		}
		if n, err := q.Release(ctx, afterLease, []store.Lease{first.Lease}); err != nil || n != 0 {
			t.Fatalf("release of the stale lease: got %d, %v; want 0", n, err)
		}
		if d := destination(t, s, afterLease, sick); d.InFlight != 1 {
			t.Errorf("in flight after the stale release: got %d, want 1 (the second holder's)", d.InFlight)
		}
		if n, err := q.Release(ctx, afterLease, []store.Lease{second.Lease}); err != nil || n != 1 {
			t.Fatalf("release of the held lease: got %d, %v; want 1", n, err)
		}
		if d := destination(t, s, afterLease, sick); d.InFlight != 0 {
			t.Errorf("in flight after its release: got %d, want 0", d.InFlight)
		}
	})
}

// A claim says when it left due deliveries for want of room in this
// process's share of their destination (the time it returns is now), so
// the pool claims again as soon as running deliveries make room; a claim
// that emptied the queue returns zero.
func TestClaimSaysWhenItLeftDueWork(t *testing.T) {
	s := newStore(t, redistest.Mini(t))
	ctx := context.Background()
	here := map[string]int{}
	q := s.Callbacks().WithFlow(store.Flow{Local: 2, LocalInFlight: func() map[string]int { return maps.Clone(here) }})
	queueCallbacks(t, s, t0, sick, "s1", "s2", "s3")
	jobs, next, err := q.Claim(ctx, t0, lease, 10)
	if err != nil || len(jobs) != 2 || !next.Equal(t0) {
		t.Fatalf("claim with room for 2 of 3: got %d jobs, next %v, %v; want 2 and now", len(jobs), next, err)
	}
	here[store.DestinationOf(sick)] = 2
	if jobs, next, err := q.Claim(ctx, t0.Add(time.Second), lease, 10); err != nil || len(jobs) != 0 || next.IsZero() {
		t.Fatalf("claim with no room: got %d jobs, next %v, %v; want none, and a time to look again", len(jobs), next, err)
	}
	here[store.DestinationOf(sick)] = 0
	if jobs, next, err := q.Claim(ctx, t0.Add(2*time.Second), lease, 10); err != nil || len(jobs) != 1 || !next.IsZero() {
		t.Fatalf("claim of the last: got %d jobs, next %v, %v; want 1 and zero", len(jobs), next, err)
	}
}
