//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// answer is one HTTP answer to POST /event (code 0: a transport error).
type answer struct {
	inst       int
	code       int
	sent, recv time.Time
}

// loader posts events round-robin over the instances. A transport error or
// a 503 moves the same event (same id, same body) to the next instance after
// a short backoff, up to maxTries; the event is accepted once any instance
// answers 2xx. Every answer is logged for the scenario to analyse.
type loader struct {
	t        *testing.T
	h        *harness
	client   *http.Client
	scenario string
	maxTries int
	rr       atomic.Uint64 // round-robin counter
	wg       sync.WaitGroup

	mu       sync.Mutex // guards everything below
	accepted map[string]acceptance
	gaveUp   []string
	answers  []answer
	repeats  int // 200 answers: a retry after an answer was lost
	bad      int // 409 and other unexpected answers
}

// acceptance is when and where an event was accepted.
type acceptance struct {
	inst int
	at   time.Time
}

func newLoader(t *testing.T, h *harness, scenario string) *loader {
	l := &loader{t: t, h: h, scenario: scenario, maxTries: 12, accepted: make(map[string]acceptance)}
	l.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
	}}
	t.Cleanup(l.client.CloseIdleConnections)
	return l
}

// eventBody is the JSON of an event with callbacks to callbackPath on the
// receiver at base.
func (l *loader) eventBody(base, id, callbackPath string) []byte {
	cb := base + callbackPath
	b, _ := json.Marshal(map[string]any{
		"id":         id,
		"event_type": "chaos.load",
		"timestamp":  time.Now().UTC().Format(time.RFC3339Nano),
		"payload":    map[string]any{"scenario": l.scenario, "id": id},
		"metadata":   map[string]string{"source": "chaos", "scenario": l.scenario},
		"callback":   map[string]string{"success_url": cb, "fail_url": cb},
	})
	return b
}

// post submits one event, with callbacks to the harness's receiver, in the
// background; wait waits for all of them.
func (l *loader) post(id, callbackPath string) { l.postTo(l.h.recv, id, callbackPath) }

// postTo submits one event with callbacks to r in the background.
func (l *loader) postTo(r *receiver, id, callbackPath string) {
	body := l.eventBody(r.base, id, callbackPath)
	l.wg.Go(func() { l.submit(id, body) })
}

// wait waits until every posted event is accepted or given up.
func (l *loader) wait() { l.wg.Wait() }

// run posts events with ids prefix-0, prefix-1, ... at rate per second for
// d (or until ctx ends), with callbacks to /ok, and returns how many it
// posted. It does not wait for the last ones to be answered.
func (l *loader) run(ctx context.Context, prefix string, rate int, d time.Duration) int {
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	n := 0
	for ; ; n++ {
		at := start.Add(time.Duration(n) * interval)
		if at.Sub(start) >= d {
			break
		}
		if wait := time.Until(at); wait > 0 {
			select {
			case <-ctx.Done():
				return n
			case <-time.After(wait):
			}
		}
		l.post(fmt.Sprintf("%s-%d", prefix, n), "/ok")
	}
	return n
}

// submit posts the event until an instance accepts it, or gives up.
func (l *loader) submit(id string, body []byte) {
	insts := l.h.insts
	first := int(l.rr.Add(1)) % len(insts)
	backoff := 50 * time.Millisecond
	for try := range l.maxTries {
		i := (first + try) % len(insts)
		sent := time.Now()
		code, msg := l.postOnce(insts[i].base, body)
		recv := time.Now()
		l.mu.Lock()
		l.answers = append(l.answers, answer{inst: i, code: code, sent: sent, recv: recv})
		switch {
		case code == http.StatusAccepted || code == http.StatusOK:
			if code == http.StatusOK {
				l.repeats++
			}
			l.accepted[id] = acceptance{inst: i, at: recv}
			l.mu.Unlock()
			return
		case code == 0 || code == http.StatusServiceUnavailable:
			l.mu.Unlock()
		case code == http.StatusConflict:
			l.bad++
			l.mu.Unlock()
			l.t.Errorf("POST %s to %s: 409 Conflict for a repeat of the same body: %s", id, insts[i].name, msg)
			return
		default:
			l.bad++
			l.mu.Unlock()
			l.t.Errorf("POST %s to %s: unexpected %d: %s", id, insts[i].name, code, msg)
			return
		}
		// Jittered, growing backoff before the next instance.
		time.Sleep(backoff/2 + rand.N(backoff))
		backoff = min(2*backoff, time.Second)
	}
	l.mu.Lock()
	l.gaveUp = append(l.gaveUp, id)
	l.mu.Unlock()
}

// postOnce posts body and returns the status (0 on a transport error) and
// the answer or error text.
func (l *loader) postOnce(base string, body []byte) (int, string) {
	req, err := http.NewRequest(http.MethodPost, base+"/event", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	b, err := readAll(resp)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// acceptedIDs returns the ids accepted so far, sorted.
func (l *loader) acceptedIDs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.accepted))
	for id := range l.accepted {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// acceptedAt returns when event id was accepted (zero: it was not).
func (l *loader) acceptedAt(id string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted[id].at
}

// answersCopy returns the answers logged so far.
func (l *loader) answersCopy() []answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]answer(nil), l.answers...)
}

// codes summarises the answers per instance, such as "i0: 202×812 503×40 err×3".
func (l *loader) codes() string {
	per := make([]map[int]int, len(l.h.insts))
	for i := range per {
		per[i] = map[int]int{}
	}
	for _, a := range l.answersCopy() {
		per[a.inst][a.code]++
	}
	var b bytes.Buffer
	for i, m := range per {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s:", l.h.insts[i].name)
		keys := make([]int, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		for _, k := range keys {
			if k == 0 {
				fmt.Fprintf(&b, " err×%d", m[k])
			} else {
				fmt.Fprintf(&b, " %d×%d", k, m[k])
			}
		}
	}
	return b.String()
}

// stats returns the counts of repeats (200), given-up events and bad
// answers.
func (l *loader) stats() (repeats, gaveUp, bad int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.repeats, len(l.gaveUp), l.bad
}
