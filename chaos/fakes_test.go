//go:build chaos

package chaos

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// readAll reads and closes a response body.
func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// answerFunc answers one forward request for event id, attempt (the
// Boomerang-Attempt header).
type answerFunc func(id string, attempt int, w http.ResponseWriter, r *http.Request)

// target is the forward target: it counts requests per event id (the
// Idempotency-Key header) and answers as the scenario scripts it, 200 by
// default.
type target struct {
	*httptest.Server

	mu     sync.Mutex // guards perID, total and answer
	perID  map[string]int
	total  int
	answer answerFunc
}

func newTarget(t *testing.T) *target {
	tg := &target{perID: make(map[string]int)}
	tg.Server = httptest.NewServer(http.HandlerFunc(tg.serve))
	cleanup(t, "closing the target", func() {
		tg.CloseClientConnections()
		tg.Close()
	})
	return tg
}

func (tg *target) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	id := r.Header.Get("Idempotency-Key")
	attempt, _ := strconv.Atoi(r.Header.Get("Boomerang-Attempt"))
	tg.mu.Lock()
	tg.perID[id]++
	tg.total++
	answer := tg.answer
	tg.mu.Unlock()
	if answer == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	answer(id, attempt, w, r)
}

// setAnswer scripts the target's answers from now on.
func (tg *target) setAnswer(f answerFunc) {
	tg.mu.Lock()
	tg.answer = f
	tg.mu.Unlock()
}

// count returns the requests received for event id.
func (tg *target) count(id string) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.perID[id]
}

// requests returns the total of requests received.
func (tg *target) requests() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.total
}

// delivery is what the receiver got for one event id, answered 2xx.
type delivery struct {
	n          int
	webhookIDs map[string]int // webhook-id header -> deliveries
	statuses   map[string]int // body status -> deliveries
	attempts   map[int]int    // body attempts -> deliveries
	first      time.Time
}

// receiver is the callback receiver. /ok answers okStatus (200 unless set,
// 503 during an outage), /always500 always answers 500. It counts
// deliveries (answered 2xx) per event id from the JSON body and per
// webhook-id header, and rejections (anything else) per event id. It can be
// stopped and started again on the same address.
type receiver struct {
	addr string
	base string

	mu        sync.Mutex // guards everything below
	srv       *http.Server
	okStatus  int
	events    map[string]*delivery
	rejected  map[string]int // event id -> requests not answered 2xx
	byPath    map[string]int // path -> requests
	webhooks  map[string]int // webhook-id -> deliveries
	delivered int
	refused   int
	hang      chan struct{} // not nil: /ok hangs until it is closed or the request ends
	arrivals  []time.Time   // of every request
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{okStatus: http.StatusOK, events: make(map[string]*delivery), rejected: make(map[string]int),
		byPath: make(map[string]int), webhooks: make(map[string]int)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.base = "http://" + r.addr
	r.serveOn(ln)
	cleanup(t, "stopping the receiver", r.stop)
	return r
}

func (r *receiver) serveOn(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the receiver's listener and connections: deliveries get
// connection errors until start.
func (r *receiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// start listens again on the receiver's address.
func (r *receiver) start() error {
	var ln net.Listener
	var err error
	for range 50 { // the address can take a moment to be free again
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			r.serveOn(ln)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.Join(errors.New("receiver: listen again"), err)
}

// setHang makes /ok hang from now on (on) until setHang(false): each
// request waits until then or until its sender gives up, and is answered
// 500.
func (r *receiver) setHang(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case on && r.hang == nil:
		r.hang = make(chan struct{})
	case !on && r.hang != nil:
		close(r.hang)
		r.hang = nil
	}
}

// arrivalsBetween counts the requests that arrived in [from, to).
func (r *receiver) arrivalsBetween(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, at := range r.arrivals {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// setOK makes /ok answer code from now on.
func (r *receiver) setOK(code int) {
	r.mu.Lock()
	r.okStatus = code
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var body struct {
		EventID  string `json:"event_id"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	}
	json.Unmarshal(b, &body)
	webhookID := req.Header.Get("webhook-id")

	r.mu.Lock()
	r.arrivals = append(r.arrivals, time.Now())
	if hang := r.hang; hang != nil && req.URL.Path == "/ok" {
		r.mu.Unlock()
		select {
		case <-hang:
		case <-req.Context().Done():
		}
		r.mu.Lock()
		r.rejected[body.EventID]++
		r.refused++
		r.mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	r.byPath[req.URL.Path]++
	code := http.StatusNotFound
	switch req.URL.Path {
	case "/ok":
		code = r.okStatus
	case "/always500":
		code = http.StatusInternalServerError
	}
	if code/100 == 2 {
		d := r.events[body.EventID]
		if d == nil {
			d = &delivery{webhookIDs: map[string]int{}, statuses: map[string]int{}, attempts: map[int]int{}, first: time.Now()}
			r.events[body.EventID] = d
		}
		d.n++
		d.webhookIDs[webhookID]++
		d.statuses[body.Status]++
		d.attempts[body.Attempts]++
		r.webhooks[webhookID]++
		r.delivered++
	} else {
		r.rejected[body.EventID]++
		r.refused++
	}
	r.mu.Unlock()
	w.WriteHeader(code)
}

// deliveryOf returns a copy of what was delivered for event id (n == 0:
// nothing yet).
func (r *receiver) deliveryOf(id string) delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.events[id]
	if d == nil {
		return delivery{}
	}
	c := delivery{n: d.n, first: d.first, webhookIDs: map[string]int{}, statuses: map[string]int{}, attempts: map[int]int{}}
	for k, v := range d.webhookIDs {
		c.webhookIDs[k] = v
	}
	for k, v := range d.statuses {
		c.statuses[k] = v
	}
	for k, v := range d.attempts {
		c.attempts[k] = v
	}
	return c
}

// delivered reports whether event id got at least one delivery.
func (r *receiver) hasDelivery(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[id] != nil
}

// rejectedOf returns the requests for event id not answered 2xx.
func (r *receiver) rejectedOf(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rejected[id]
}

// totals returns the deliveries and the refused requests so far.
func (r *receiver) totals() (delivered, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.delivered, r.refused
}
