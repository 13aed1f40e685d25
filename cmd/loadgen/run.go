package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/boomerang-events/boomerang/internal/loopback"
)

// Result is the outcome of one run. Counts and latencies are of the
// requests sent in the measured window (after the warmup); in rate mode a
// request belongs to the window its scheduled time falls in.
type Result struct {
	Mode            string  `json:"mode"`
	URL             string  `json:"url"`
	Conns           int     `json:"conns,omitempty"`
	Rate            float64 `json:"rate,omitempty"`
	MaxInFlight     int     `json:"max_inflight,omitempty"`
	PayloadBytes    int     `json:"payload_bytes"`
	WarmupSeconds   float64 `json:"warmup_s"`
	DurationSeconds float64 `json:"duration_s"` // the measured window; shorter when interrupted
	Interrupted     bool    `json:"interrupted,omitempty"`

	Sent            int64            `json:"sent"`
	OK              int64            `json:"ok_2xx"`
	Non2xx          map[string]int64 `json:"non_2xx"` // by status code
	TransportErrors int64            `json:"transport_errors"`
	ErrorSamples    map[string]int64 `json:"error_samples,omitempty"` // a few distinct transport errors, with counts
	// Dropped counts rate-mode requests that were due while MaxInFlight
	// requests were in flight, so were never sent. Any is a failed run: the
	// server (or the load generator) could not keep up with the rate.
	Dropped      int64 `json:"dropped"`
	PeakInFlight int64 `json:"peak_inflight"`
	// AchievedRPS is the responses (any status) completed inside the
	// measured window, per second of it: the server's throughput.
	AchievedRPS float64 `json:"achieved_rps"`
	// Latency is from the scheduled send time in rate mode (so a server
	// that falls behind is charged for the queueing it causes), from the
	// actual send in closed mode, to the end of the response body.
	Latency Summary `json:"latency"`
	// SendLag (rate mode) is how late after its scheduled time each request
	// was handed to the HTTP client: large values mean the load generator
	// itself could not keep up. It is included in Latency.
	SendLag   *Summary        `json:"send_lag,omitempty"`
	Callbacks *CallbackResult `json:"callbacks,omitempty"`
}

// CallbackResult is the end-to-end part of a run with --callbacks.
type CallbackResult struct {
	ReceiverURL string `json:"receiver_url"`
	Accepted    int64  `json:"accepted"` // measured requests answered 202 with an event_id
	Received    int64  `json:"received"` // of those, called back by the end of the drain
	Lost        int64  `json:"lost"`     // accepted, and no callback by the end of the drain
	// Duplicates counts callbacks for an event already called back, or
	// with a webhook-id already seen.
	Duplicates int64 `json:"duplicates"`
	// Unmatched counts callbacks for event ids never seen accepted (their
	// 202 was lost, or they came from somewhere else).
	Unmatched int64 `json:"unmatched"`
	Malformed int64 `json:"malformed"` // callbacks without a JSON body naming event_id
	// Arrived is every callback request the receiver got, the warmup's
	// events and duplicates included: the work the server did over the
	// whole run, what CPU per event divides by.
	Arrived  int64            `json:"arrived"`
	Statuses map[string]int64 `json:"statuses"` // the status field of the received callbacks
	// TailSeconds is the time from the end of the load to the last
	// callback of a measured event.
	TailSeconds float64 `json:"tail_s"`
	// SustainedEPS is Accepted / (duration + TailSeconds): the rate at which
	// events were taken in and called back.
	SustainedEPS float64 `json:"sustained_eps"`
	// Delay is from reading the 202 to the callback's arrival.
	Delay Summary `json:"delay"`
}

// Summary describes a latency distribution, in milliseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

func summarize(h *histogram) Summary {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Summary{
		Count: h.Count(),
		Mean:  ms(h.Mean()),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}

// Waits of the run itself.
const (
	errorPause       = 10 * time.Millisecond // closed mode: pause of a sender after a transport error
	drainPoll        = 10 * time.Millisecond
	maxErrorSamples  = 8
	maxResponseBytes = 1 << 20
)

// runner is the state of one run.
type runner struct {
	cfg      Config
	client   *http.Client
	eventURL string
	bodies   *bodies
	tracker  *tracker // nil without callbacks

	start        time.Time // the load starts
	measureStart time.Time // the warmup ends
	end          time.Time // no request is sent or scheduled from here on

	seq atomic.Uint64

	// Every phase, for the progress line.
	allSent, allOK, allErrors, allDone atomic.Int64
	inFlight, peakInFlight             atomic.Int64

	// The measured window.
	sent, ok, transportErrors, dropped, doneInWindow atomic.Int64
	latency, sendLag                                 histogram

	mu         sync.Mutex
	non2xx     map[int]int64    // guarded by mu
	errSamples map[string]int64 // guarded by mu
}

// run sends the load cfg describes and returns its result. When ctx ends
// early the run stops, and the result covers what was measured until then.
func run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	r := &runner{
		cfg:        cfg,
		eventURL:   strings.TrimSuffix(cfg.URL, "/") + "/event",
		non2xx:     map[int]int64{},
		errSamples: map[string]int64{},
	}
	conns := cfg.Conns
	if cfg.Mode == modeRate {
		conns = cfg.MaxInFlight
	}
	tr := &http.Transport{
		Proxy:               nil, // never a proxy: the traffic stays on loopback
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: loopback.Only}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	r.client = &http.Client{
		Transport:     tr,
		Timeout:       cfg.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	var res Result
	var ln net.Listener
	callbackURL := ""
	if cfg.Callbacks {
		var err error
		if ln, err = net.Listen("tcp", cfg.ReceiverAddr); err != nil {
			return Result{}, fmt.Errorf("callback receiver: %w", err)
		}
		callbackURL = "http://" + ln.Addr().String() + "/cb"
	}
	r.bodies = newBodies(cfg.EventType, cfg.PayloadBytes, callbackURL)
	r.start = time.Now()
	if ln != nil {
		r.tracker = newTracker(r.start)
		recv := serveReceiver(ln, r.tracker)
		defer recv.stop()
	}
	r.measureStart = r.start.Add(cfg.Warmup)
	r.end = r.measureStart.Add(cfg.Duration)

	stopProgress := r.startProgress(ctx)
	if cfg.Mode == modeRate {
		r.rateLoad(ctx)
	} else {
		r.closedLoad(ctx)
	}
	loadEnd := r.end
	if now := time.Now(); ctx.Err() != nil && now.Before(r.end) {
		loadEnd = now
		res.Interrupted = true
	}
	if r.tracker != nil {
		r.drain(ctx, cfg.Drain)
	}
	stopProgress()
	if ctx.Err() != nil {
		res.Interrupted = true
	}

	window := max(loadEnd.Sub(r.measureStart), 0)
	res.Mode, res.URL, res.PayloadBytes = cfg.Mode, cfg.URL, cfg.PayloadBytes
	if cfg.Mode == modeRate {
		res.Rate, res.MaxInFlight = cfg.Rate, cfg.MaxInFlight
		lag := summarize(&r.sendLag)
		res.SendLag = &lag
	} else {
		res.Conns = cfg.Conns
	}
	res.WarmupSeconds = cfg.Warmup.Seconds()
	res.DurationSeconds = window.Seconds()
	res.Sent = r.sent.Load()
	res.OK = r.ok.Load()
	res.TransportErrors = r.transportErrors.Load()
	res.Dropped = r.dropped.Load()
	res.PeakInFlight = r.peakInFlight.Load()
	if window > 0 {
		res.AchievedRPS = float64(r.doneInWindow.Load()) / window.Seconds()
	}
	res.Latency = summarize(&r.latency)
	r.mu.Lock()
	res.Non2xx = make(map[string]int64, len(r.non2xx))
	for code, n := range r.non2xx {
		res.Non2xx[strconv.Itoa(code)] = n
	}
	if len(r.errSamples) > 0 {
		res.ErrorSamples = r.errSamples
	}
	r.mu.Unlock()
	if r.tracker != nil {
		res.Callbacks = r.tracker.result(loadEnd, window)
		res.Callbacks.ReceiverURL = callbackURL
	}
	return res, nil
}

// closedLoad runs cfg.Conns senders, each sending its next request as soon
// as the previous one is answered, until r.end.
func (r *runner) closedLoad(ctx context.Context) {
	var wg sync.WaitGroup
	for range r.cfg.Conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(r.end) {
					return
				}
				if !r.do(ctx, time.Time{}, !now.Before(r.measureStart)) {
					sleep(ctx, errorPause) // do not spin on a refused connection
				}
			}
		})
	}
	wg.Wait()
}

// rateLoad schedules request i at r.start + i/rate until r.end. A due
// request goes to an idle sender, or to a new one while fewer than
// MaxInFlight exist; otherwise it is dropped and counted. Latency is
// measured from the scheduled time, so when the server falls behind the
// wait of the requests queued behind it is counted (no coordinated
// omission).
func (r *runner) rateLoad(ctx context.Context) {
	interval := float64(time.Second) / r.cfg.Rate
	jobs := make(chan time.Time) // unbuffered: a send succeeds only if a sender is idle
	var wg sync.WaitGroup
	senders := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := int64(0); ctx.Err() == nil; i++ {
		at := r.start.Add(time.Duration(float64(i) * interval))
		if !at.Before(r.end) {
			break
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
			if ctx.Err() != nil {
				break
			}
		}
		select {
		case jobs <- at:
		default:
			if senders < r.cfg.MaxInFlight {
				senders++
				wg.Go(func() { r.sender(ctx, at, jobs) })
			} else if !at.Before(r.measureStart) {
				r.dropped.Add(1)
			}
		}
	}
	close(jobs)
	wg.Wait()
}

// sender sends the request due at first, then every one it receives from
// jobs until jobs is closed.
func (r *runner) sender(ctx context.Context, first time.Time, jobs <-chan time.Time) {
	for at, ok := first, true; ok; at, ok = <-jobs {
		measured := !at.Before(r.measureStart)
		if measured {
			r.sendLag.Record(time.Since(at))
		}
		r.do(ctx, at, measured)
	}
}

// do sends one event and records its outcome. Latency runs from scheduled,
// or from the send when scheduled is zero. It reports false on a
// transport error.
func (r *runner) do(ctx context.Context, scheduled time.Time, measured bool) bool {
	seq := r.seq.Add(1)
	now := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.eventURL, bytes.NewReader(r.bodies.build(seq, now)))
	if err != nil { // cannot happen: the URL was checked
		r.allErrors.Add(1)
		if measured {
			r.sent.Add(1)
			r.transportErrors.Add(1)
			r.sampleError(err)
		}
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	if scheduled.IsZero() {
		scheduled = now
	}
	storeMax(&r.peakInFlight, r.inFlight.Add(1))
	defer r.inFlight.Add(-1)
	r.allSent.Add(1)
	if measured {
		r.sent.Add(1)
	}

	resp, err := r.client.Do(req)
	var eventID string
	if err == nil {
		eventID, err = readAnswer(resp, r.tracker != nil)
	}
	done := time.Now()
	r.allDone.Add(1)
	if !done.Before(r.measureStart) && done.Before(r.end) {
		r.doneInWindow.Add(1)
	}
	if err != nil {
		r.allErrors.Add(1)
		if measured {
			r.transportErrors.Add(1)
			r.sampleError(err)
		}
		return false
	}
	if measured {
		r.latency.Record(done.Sub(scheduled))
	}
	if resp.StatusCode/100 == 2 {
		r.allOK.Add(1)
		if measured {
			r.ok.Add(1)
		}
	} else if measured {
		r.mu.Lock()
		r.non2xx[resp.StatusCode]++
		r.mu.Unlock()
	}
	if r.tracker != nil && resp.StatusCode == http.StatusAccepted && eventID != "" {
		r.tracker.accept(eventID, done.Sub(r.start), measured)
	}
	return true
}

// readAnswer reads and closes the body; for a 202 and wantID it returns
// the event_id it names.
func readAnswer(resp *http.Response, wantID bool) (string, error) {
	defer resp.Body.Close()
	if !wantID || resp.StatusCode != http.StatusAccepted {
		_, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return "", err
	}
	var ans struct {
		EventID string `json:"event_id"`
	}
	json.Unmarshal(b, &ans) // a 202 without an event_id is not counted as accepted
	return ans.EventID, nil
}

func (r *runner) sampleError(err error) {
	msg := err.Error()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.errSamples[msg]; ok || len(r.errSamples) < maxErrorSamples {
		r.errSamples[msg]++
	} else {
		r.errSamples["(other)"]++
	}
}

// drain waits, at most d, until every measured accepted event was called
// back.
func (r *runner) drain(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for r.tracker.pending() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		sleep(ctx, drainPoll)
	}
}

// startProgress prints a progress line to cfg.Progress every second until
// the returned function is called; that function waits for it to stop.
func (r *runner) startProgress(ctx context.Context) (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	last, lastAt := int64(0), r.start
	line := func(now time.Time, phase string) {
		n := r.allDone.Load()
		rps := float64(n-last) / max(now.Sub(lastAt).Seconds(), 1e-3)
		last, lastAt = n, now
		s := fmt.Sprintf("%6.1fs %-6s sent=%d ok=%d errors=%d rps=%.0f inflight=%d",
			now.Sub(r.start).Seconds(), phase, r.allSent.Load(), r.allOK.Load(), r.allErrors.Load(), rps, r.inFlight.Load())
		if d := r.dropped.Load(); d > 0 {
			s += fmt.Sprintf(" DROPPED=%d", d)
		}
		if r.tracker != nil {
			s += fmt.Sprintf(" callbacks=%d", r.tracker.arrived.Load())
		}
		fmt.Fprintln(w, s)
	}
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				line(time.Now(), "end")
				return
			case now := <-t.C:
				mid := lastAt.Add(now.Sub(lastAt) / 2) // the phase of the second just past
				phase := "load"
				switch {
				case mid.Before(r.measureStart):
					phase = "warmup"
				case !mid.Before(r.end):
					phase = "drain"
				}
				line(now, phase)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// receiver is the callback receiver's HTTP server.
type receiver struct {
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// serveReceiver serves h at /cb on ln until stop.
func serveReceiver(ln net.Listener, h http.Handler) *receiver {
	mux := http.NewServeMux()
	mux.Handle("/cb", h)
	rc := &receiver{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute},
		done: make(chan struct{}),
	}
	go func() {
		defer close(rc.done)
		rc.srv.Serve(ln) // ErrServerClosed once stop shuts it down
	}()
	return rc
}

// stop shuts the receiver down, closing connections still busy after 2s,
// and waits for it.
func (rc *receiver) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if rc.srv.Shutdown(ctx) != nil {
		rc.srv.Close()
	}
	<-rc.done
}

// storeMax raises m to v if v is larger.
func storeMax(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
