package main

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// tracker is the callback receiver: it matches each callback to the event
// accepted with its event_id and measures the delay from the 202 to the
// callback's arrival. A callback may arrive before the loadgen has read the
// 202 that announced its event; the delay is then counted as zero.
type tracker struct {
	start time.Time // accept and arrival times are durations since start

	arrived   atomic.Int64 // every callback, for the progress line
	malformed atomic.Int64 // callbacks without a JSON body naming event_id

	mu         sync.Mutex
	events     map[string]tracked  // guarded by mu; by event id
	webhookIDs map[string]struct{} // guarded by mu; every webhook-id seen
	accepted   int64               // guarded by mu; measured events accepted
	received   int64               // guarded by mu; measured events called back
	duplicates int64               // guarded by mu
	lastAt     time.Duration       // guarded by mu; arrival of the last callback of a measured event
	statuses   map[string]int64    // guarded by mu; status field of measured events' callbacks
	delays     histogram
}

// tracked is what the tracker knows of one event.
type tracked struct {
	acceptAt, callbackAt time.Duration
	status               string // the callback's status field
	accepted, called     bool
	measured             bool // accepted in the measured window
}

func newTracker(start time.Time) *tracker {
	return &tracker{
		start:      start,
		events:     make(map[string]tracked, 1<<16),
		webhookIDs: make(map[string]struct{}, 1<<16),
		statuses:   map[string]int64{},
	}
}

// accept records that event id was answered 202 at time at (since start).
func (t *tracker) accept(id string, at time.Duration, measured bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.events[id]
	if e.accepted { // the server gave out one id twice: keep the first
		return
	}
	e.accepted, e.acceptAt, e.measured = true, at, measured
	t.events[id] = e
	if measured {
		t.accepted++
		if e.called {
			t.settle(e)
		}
	}
}

// callback records a callback for event id, with its webhook-id header and
// status field, that arrived at time at (since start). A callback is a
// duplicate when its event was already called back or its webhook-id was
// already seen.
func (t *tracker) callback(id, webhookID, status string, at time.Duration) {
	t.arrived.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	dup := false
	if webhookID != "" {
		if _, ok := t.webhookIDs[webhookID]; ok {
			dup = true
		} else {
			t.webhookIDs[webhookID] = struct{}{}
		}
	}
	e := t.events[id]
	if dup || e.called {
		t.duplicates++
		return
	}
	e.called, e.callbackAt, e.status = true, at, status
	t.events[id] = e
	if e.accepted && e.measured {
		t.settle(e)
	}
}

// settle counts a measured event that has both its 202 and its callback.
// t.mu is held.
func (t *tracker) settle(e tracked) {
	t.received++
	t.statuses[e.status]++
	t.delays.Record(e.callbackAt - e.acceptAt)
	t.lastAt = max(t.lastAt, e.callbackAt)
}

// pending returns the number of measured events accepted and not yet
// called back.
func (t *tracker) pending() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.accepted - t.received
}

// ServeHTTP receives a callback: a POST whose JSON body names event_id.
func (t *tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Since(t.start)
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var cb struct {
		EventID string `json:"event_id"`
		Status  string `json:"status"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&cb); err != nil || cb.EventID == "" {
		t.malformed.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	t.callback(cb.EventID, r.Header.Get("webhook-id"), cb.Status, at)
	w.WriteHeader(http.StatusOK)
}

// result summarises the callbacks once the drain is over. loadEnd is when
// the load stopped and window the measured duration.
func (t *tracker) result(loadEnd time.Time, window time.Duration) *CallbackResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	var unmatched int64
	for _, e := range t.events {
		if e.called && !e.accepted {
			unmatched++
		}
	}
	statuses := make(map[string]int64, len(t.statuses))
	for k, v := range t.statuses {
		statuses[k] = v
	}
	res := &CallbackResult{
		Accepted:   t.accepted,
		Received:   t.received,
		Lost:       t.accepted - t.received,
		Duplicates: t.duplicates,
		Unmatched:  unmatched,
		Malformed:  t.malformed.Load(),
		Arrived:    t.arrived.Load(),
		Statuses:   statuses,
		Delay:      summarize(&t.delays),
	}
	var tail time.Duration
	if t.received > 0 {
		tail = max(t.start.Add(t.lastAt).Sub(loadEnd), 0)
	}
	res.TailSeconds = tail.Seconds()
	if d := (window + tail).Seconds(); d > 0 {
		res.SustainedEPS = float64(t.accepted) / d
	}
	return res
}
