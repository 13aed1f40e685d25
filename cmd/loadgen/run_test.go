package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer stands in for Boomerang: it answers POST /event with 202 and
// the event's id and, when the event has a success_url, POSTs the callback
// there cbDelay later.
type fakeServer struct {
	t         *testing.T
	srv       *httptest.Server
	client    *http.Client
	delay     time.Duration // before answering
	cbDelay   time.Duration // from answering to sending the callback
	dupFirst  int           // the callbacks of the first dupFirst events are sent twice
	failEvery int           // every failEvery-th request is answered 503 (0: never)

	callbacks sync.WaitGroup // callback senders in flight

	mu      sync.Mutex
	n       int             // guarded by mu; requests
	ids     map[string]bool // guarded by mu
	bodies  map[string]bool // guarded by mu
	repeats int             // guarded by mu; requests repeating an id or a body
	dups    int             // guarded by mu; callbacks sent twice
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{
		t:      t,
		client: &http.Client{Timeout: 5 * time.Second},
		ids:    map[string]bool{},
		bodies: map[string]bool{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveEvent))
	t.Cleanup(func() {
		f.srv.Close()
		f.callbacks.Wait()
		f.client.CloseIdleConnections()
	})
	return f
}

func (f *fakeServer) serveEvent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/event" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var ev struct {
		ID        string          `json:"id"`
		EventType string          `json:"event_type"`
		Payload   json.RawMessage `json:"payload"`
		Callback  *struct {
			SuccessURL string `json:"success_url"`
			FailURL    string `json:"fail_url"`
		} `json:"callback"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.EventType == "" {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.n++
	n := f.n
	if f.ids[ev.ID] || f.bodies[string(body)] {
		f.repeats++
	}
	f.ids[ev.ID], f.bodies[string(body)] = true, true
	dup := n <= f.dupFirst
	if dup {
		f.dups++
	}
	f.mu.Unlock()
	time.Sleep(f.delay)
	if f.failEvery > 0 && n%f.failEvery == 0 {
		http.Error(w, `{"error":"redis unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"event_id":%q,"status":"queued","status_url":"/callback?event_id=%s"}`, ev.ID, ev.ID)
	if ev.Callback != nil && ev.Callback.SuccessURL != "" {
		f.callbacks.Go(func() {
			time.Sleep(f.cbDelay)
			times := 1
			if dup {
				times = 2
			}
			for range times {
				f.sendCallback(ev.Callback.SuccessURL, ev.ID, ev.EventType)
			}
		})
	}
}

func (f *fakeServer) sendCallback(url, id, eventType string) {
	body := fmt.Sprintf(`{"event_id":%q,"event_type":%q,"status":"succeeded","attempts":1,"error":"","completed_at":%q}`,
		id, eventType, time.Now().UTC().Format(time.RFC3339Nano))
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		f.t.Errorf("callback url %q: %v", url, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", "cb_"+id+"_1")
	resp, err := f.client.Do(req)
	if err != nil {
		return // the receiver is gone: the run is over
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func (f *fakeServer) counts() (requests, repeats, dups int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.repeats, f.dups
}

func testConfig(url, mode string) Config {
	return Config{
		URL: url, Mode: mode, Conns: 2, Rate: 200, MaxInFlight: 64,
		Duration: time.Second, Timeout: 5 * time.Second,
		PayloadBytes: 200, EventType: "bench_event",
		ReceiverAddr: "127.0.0.1:0", Drain: 5 * time.Second,
	}
}

// checkCounts checks that every measured request has exactly one outcome.
func checkCounts(t *testing.T, res Result) {
	t.Helper()
	var non2xx int64
	for _, n := range res.Non2xx {
		non2xx += n
	}
	if res.Sent == 0 {
		t.Fatal("got 0 sent, want some")
	}
	if got := res.OK + non2xx + res.TransportErrors; got != res.Sent {
		t.Errorf("got 2xx %d + non-2xx %d + errors %d = %d, want sent %d", res.OK, non2xx, res.TransportErrors, got, res.Sent)
	}
	if got, want := int64(res.Latency.Count), res.OK+non2xx; got != want {
		t.Errorf("got %d latency samples, want %d", got, want)
	}
}

func TestRunEndToEnd(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		warmup    time.Duration
		delay     time.Duration
		dupFirst  int
		failEvery int
	}{
		{name: "rate", mode: modeRate},
		{name: "rate with warmup and duplicates", mode: modeRate, warmup: 300 * time.Millisecond, dupFirst: 5},
		{name: "rate with 503s", mode: modeRate, failEvery: 10},
		{name: "closed", mode: modeClosed, delay: 10 * time.Millisecond},
		{name: "closed with duplicates", mode: modeClosed, delay: 10 * time.Millisecond, dupFirst: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.delay, f.cbDelay, f.dupFirst, f.failEvery = tt.delay, 5*time.Millisecond, tt.dupFirst, tt.failEvery
			cfg := testConfig(f.srv.URL, tt.mode)
			cfg.Warmup, cfg.Callbacks = tt.warmup, true
			var progress bytes.Buffer
			cfg.Progress = &progress

			res, err := run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkCounts(t, res)
			if res.Interrupted || res.TransportErrors != 0 || res.Dropped != 0 {
				t.Errorf("got interrupted %v, %d errors %v, %d dropped; want none", res.Interrupted, res.TransportErrors, res.ErrorSamples, res.Dropped)
			}
			if tt.mode == modeRate {
				if math.Abs(res.AchievedRPS-cfg.Rate) > 0.2*cfg.Rate {
					t.Errorf("got %.1f req/s, want %.0f ±20%%", res.AchievedRPS, cfg.Rate)
				}
				if want := int64(cfg.Rate * cfg.Duration.Seconds()); res.Sent != want {
					t.Errorf("got %d sent, want %d (rate × duration)", res.Sent, want)
				}
			} else if res.AchievedRPS < 20 || res.AchievedRPS > 2/tt.delay.Seconds()*1.2 {
				t.Errorf("got %.1f req/s, want up to %d conns / %v", res.AchievedRPS, cfg.Conns, tt.delay)
			}
			if got, want := res.Non2xx["503"], int64(0); tt.failEvery == 0 && got != want {
				t.Errorf("got %d 503s, want %d", got, want)
			}
			if tt.failEvery > 0 && res.Non2xx["503"] == 0 {
				t.Errorf("got no 503s, want about 1 in %d", tt.failEvery)
			}

			cb := res.Callbacks
			if cb == nil {
				t.Fatal("got no callback result")
			}
			if cb.Accepted != res.OK {
				t.Errorf("got %d accepted, want %d (every 2xx)", cb.Accepted, res.OK)
			}
			if cb.Lost != 0 || cb.Received != cb.Accepted {
				t.Errorf("got %d received, %d lost of %d accepted; want all received", cb.Received, cb.Lost, cb.Accepted)
			}
			if cb.Unmatched != 0 || cb.Malformed != 0 {
				t.Errorf("got %d unmatched, %d malformed callbacks; want 0", cb.Unmatched, cb.Malformed)
			}
			if got := cb.Statuses["succeeded"]; got != cb.Received {
				t.Errorf("got %d succeeded callbacks, want %d", got, cb.Received)
			}
			requests, repeats, dups := f.counts()
			if got, want := cb.Duplicates, int64(dups); got != want || (tt.dupFirst > 0) != (got > 0) {
				t.Errorf("got %d duplicates, want %d", got, want)
			}
			if repeats != 0 {
				t.Errorf("got %d requests repeating an id or body, want 0", repeats)
			}
			if tt.warmup == 0 && int64(requests) != res.Sent {
				t.Errorf("server got %d requests, want sent %d", requests, res.Sent)
			}
			if tt.warmup > 0 && int64(requests) <= res.Sent {
				t.Errorf("server got %d requests, want more than the %d measured (warmup)", requests, res.Sent)
			}
			if cb.Delay.Count != uint64(cb.Received) || cb.Delay.P50 < 4 || cb.Delay.P50 > 500 {
				t.Errorf("got delay %+v, want %d samples around 5ms", cb.Delay, cb.Received)
			}
			if cb.SustainedEPS <= 0 || cb.SustainedEPS > res.AchievedRPS*1.2 {
				t.Errorf("got sustained %.1f events/s, want near %.1f", cb.SustainedEPS, res.AchievedRPS)
			}
			if !strings.Contains(progress.String(), "callbacks=") {
				t.Errorf("got progress %q, want lines with callbacks=", progress.String())
			}
		})
	}
}

// TestRunRateChargesStalls checks that rate mode keeps sending on schedule
// while the server stalls: a server that holds every request arriving in its
// first 300ms until then must show that in the latency of all of them, not
// only of the few in flight when the stall began, as a closed-loop
// generator would. TestDoMeasuresFromSchedule checks the other half of
// avoiding coordinated omission, timing from the schedule.
func TestRunRateChargesStalls(t *testing.T) {
	var stallUntil time.Time
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		once.Do(func() { stallUntil = time.Now().Add(300 * time.Millisecond) })
		time.Sleep(time.Until(stallUntil))
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL, modeRate)
	cfg.MaxInFlight = 1000
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, res)
	// 60 of 200 requests are scheduled in the stall; the earliest 20 of
	// them wait 200-300ms.
	if res.Latency.P90 < 150 || res.Latency.Max < 250 {
		t.Errorf("got p90 %.1fms, max %.1fms; want >= 150ms, >= 250ms", res.Latency.P90, res.Latency.Max)
	}
	if res.Dropped != 0 || res.PeakInFlight < 50 {
		t.Errorf("got %d dropped, peak in flight %d; want 0, >= 50", res.Dropped, res.PeakInFlight)
	}
}

// TestDoMeasuresFromSchedule checks the latency of a rate-mode request runs
// from its scheduled time, however late it was actually sent.
func TestDoMeasuresFromSchedule(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	r := &runner{
		cfg:      testConfig(srv.URL, modeRate),
		client:   srv.Client(),
		eventURL: srv.URL + "/event",
		bodies:   newBodies("x", 10, ""),
		non2xx:   map[int]int64{},
		end:      time.Now().Add(time.Hour),
	}
	if !r.do(context.Background(), time.Now().Add(-time.Second), true) {
		t.Fatal("got a transport error")
	}
	if got := r.latency.Max(); got < time.Second || got > 2*time.Second {
		t.Errorf("got latency %v, want just over 1s (from the schedule)", got)
	}
	if !r.do(context.Background(), time.Time{}, true) { // closed mode: from the send
		t.Fatal("got a transport error")
	}
	if got := r.latency.Quantile(0.5); got > 500*time.Millisecond {
		t.Errorf("got closed-mode latency %v, want well under 1s", got)
	}
}

func TestRunDropsAtInFlightCap(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	// Hold the first requests until the 300ms of load are over.
	timer := time.AfterFunc(400*time.Millisecond, func() { close(release) })
	t.Cleanup(func() { timer.Stop() })
	cfg := testConfig(srv.URL, modeRate)
	cfg.Duration, cfg.MaxInFlight = 300*time.Millisecond, 4
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, res)
	if res.Sent != 4 || res.Dropped != 60-4 || res.PeakInFlight != 4 {
		t.Errorf("got sent %d, dropped %d, peak in flight %d; want 4, 56, 4", res.Sent, res.Dropped, res.PeakInFlight)
	}
}

func TestRunTransportErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens: every connection is refused
	for _, mode := range []string{modeClosed, modeRate} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig(url, mode)
			cfg.Duration = 200 * time.Millisecond
			res, err := run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkCounts(t, res)
			if res.TransportErrors != res.Sent || len(res.ErrorSamples) == 0 {
				t.Errorf("got %d errors (%v) of %d sent, want all", res.TransportErrors, res.ErrorSamples, res.Sent)
			}
			if mode == modeClosed && res.Sent > int64(cfg.Conns)*int64(cfg.Duration/errorPause+1) {
				t.Errorf("got %d sent, want senders pausing %v after each error", res.Sent, errorPause)
			}
		})
	}
}

func TestRunInterrupted(t *testing.T) {
	f := newFakeServer(t)
	cfg := testConfig(f.srv.URL, modeRate)
	cfg.Duration, cfg.Callbacks = time.Minute, true
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("run took %v after the interrupt, want it to stop", elapsed)
	}
	if !res.Interrupted || res.DurationSeconds > 1 {
		t.Errorf("got interrupted %v after %.1fs, want true after ~0.3s", res.Interrupted, res.DurationSeconds)
	}
}

func TestBodies(t *testing.T) {
	b := newBodies("user_created", 200, "http://127.0.0.1:9/cb")
	seen := map[string]bool{}
	for seq := uint64(1); seq <= 100; seq++ {
		body := b.build(seq, time.Now())
		var ev struct {
			ID        string            `json:"id"`
			EventType string            `json:"event_type"`
			Timestamp time.Time         `json:"timestamp"`
			Payload   json.RawMessage   `json:"payload"`
			Metadata  map[string]string `json:"metadata"`
			Callback  struct {
				SuccessURL string `json:"success_url"`
				FailURL    string `json:"fail_url"`
			} `json:"callback"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		if ev.ID != b.id(seq) || ev.EventType != "user_created" || ev.Timestamp.IsZero() {
			t.Errorf("got id %q type %q time %v, want %q user_created now", ev.ID, ev.EventType, ev.Timestamp, b.id(seq))
		}
		if ev.Callback.SuccessURL != "http://127.0.0.1:9/cb" || ev.Callback.FailURL != ev.Callback.SuccessURL {
			t.Errorf("got callback %+v, want both URLs http://127.0.0.1:9/cb", ev.Callback)
		}
		if n := len(ev.Payload); n < 190 || n > 210 {
			t.Errorf("got payload of %d bytes, want about 200", n)
		}
		if seen[string(body)] || seen[ev.ID] {
			t.Errorf("body %d repeats an earlier id or body", seq)
		}
		seen[string(body)], seen[ev.ID] = true, true
	}
	if got := b.build(1, time.Now()); bytes.Contains(got, []byte("callback")) != true {
		t.Errorf("got %s, want a callback", got)
	}
	if got := newBodies("x", 0, "").build(1, time.Now()); bytes.Contains(got, []byte("callback")) {
		t.Errorf("got %s, want no callback without a receiver", got)
	}
}
