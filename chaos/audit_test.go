//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordView is GET /events/{id}, and an entry of GET /dead-letters.
type recordView struct {
	EventID   string `json:"event_id"`
	EventType string `json:"event_type"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
	Callback  struct {
		ID                 string `json:"id"`
		URL                string `json:"url"`
		Status             string `json:"status"`
		Attempts           int    `json:"attempts"`
		LastResponseStatus int    `json:"last_response_status"`
		LastError          string `json:"last_error"`
	} `json:"callback"`
	History []struct {
		Attempt int    `json:"attempt"`
		Outcome string `json:"outcome"`
	} `json:"history"`
	DeadLetter *struct {
		Kind     string `json:"kind"`
		FailedAt string `json:"failed_at"`
	} `json:"dead_letter"`
}

func (v recordView) String() string {
	return fmt.Sprintf("{status %s, attempts %d, last_error %q, callback {id %q, status %s, attempts %d, last_response_status %d, last_error %q}}",
		v.Status, v.Attempts, v.LastError, v.Callback.ID, v.Callback.Status, v.Callback.Attempts, v.Callback.LastResponseStatus, v.Callback.LastError)
}

func terminal(status string) bool { return status == "succeeded" || status == "failed" }

// expectation is how an accepted event must end.
type expectation struct {
	// callback is the callback status it must reach: "delivered", or
	// "failed" for a callback URL that always fails.
	callback string
	// recv is the receiver its callback goes to; nil is the harness's.
	recv *receiver
}

// receiverOf returns the receiver of an expectation.
func (h *harness) receiverOf(exp expectation) *receiver {
	if exp.recv != nil {
		return exp.recv
	}
	return h.recv
}

var (
	wantDelivered  = expectation{callback: "delivered"}
	wantDeadLetter = expectation{callback: "failed"}
)

// auditResult counts what the audit found.
type auditResult struct {
	accepted      int
	lost          int
	dupDeliveries int // deliveries beyond the first, per event
	dupProcessing int // forward requests beyond the first, per event
	failedEvents  int // events whose own status is failed
	settled       time.Duration
	views         map[string]recordView
}

// audit waits, up to drain, until every event in want has settled as
// expected, then checks and counts. It reports as test errors: every lost
// event (not terminal, no callback record, callback not in its expected
// status, or delivered but never received), every event with more than one
// callback id, and any delivery whose webhook-id is not the record's
// callback id.
func (h *harness) audit(t *testing.T, want map[string]expectation, drain time.Duration) auditResult {
	t.Helper()
	start := time.Now()
	end := start.Add(drain)
	res := auditResult{accepted: len(want), views: make(map[string]recordView, len(want))}

	// The receiver's tally is cheap: wait on it first.
	for time.Now().Before(end) {
		pending := 0
		for id, exp := range want {
			if exp.callback == "delivered" && !h.receiverOf(exp).hasDelivery(id) {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	settled := func(id string, v recordView) bool {
		exp := want[id]
		return terminal(v.Status) && v.Callback.ID != "" && v.Callback.Status == exp.callback &&
			(exp.callback != "delivered" || h.receiverOf(exp).hasDelivery(id))
	}
	unsettled := make(map[string]bool, len(want))
	for id := range want {
		unsettled[id] = true
	}
	var fetchErrs int
	var lastErr error
	for round := 0; ; round++ {
		views, errs, err := h.fetchRecords(keys(unsettled))
		fetchErrs += errs
		if err != nil {
			lastErr = err
		}
		for id, v := range views {
			res.views[id] = v
			if settled(id, v) {
				delete(unsettled, id)
			}
		}
		if len(unsettled) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	res.settled = time.Since(start)
	if fetchErrs > 0 {
		t.Logf("audit: %d record reads failed (last: %v)", fetchErrs, lastErr)
	}

	res.lost = len(unsettled)
	if res.lost > 0 {
		ids := keys(unsettled)
		t.Errorf("LOST: %d of %d accepted events did not settle within %s (terminal, one callback record, callback %s, received)",
			res.lost, len(want), drain, "as expected")
		for _, id := range ids[:min(len(ids), 10)] {
			r := h.receiverOf(want[id])
			d := r.deliveryOf(id)
			t.Errorf("  lost %s: want callback %s; record %v; receiver: %d deliveries, %d refused; target: %d requests",
				id, want[id].callback, res.views[id], d.n, r.rejectedOf(id), h.target.count(id))
		}
	}

	multi := 0
	for _, id := range keys(want) {
		v := res.views[id]
		d := h.receiverOf(want[id]).deliveryOf(id)
		if d.n > 1 {
			res.dupDeliveries += d.n - 1
		}
		if len(d.webhookIDs) > 1 {
			multi++
			if multi <= 10 {
				t.Errorf("%s: deliveries carry %d distinct callback ids %v, want one", id, len(d.webhookIDs), d.webhookIDs)
			}
		}
		if v.Callback.ID != "" && d.n > 0 && d.webhookIDs[v.Callback.ID] != d.n {
			t.Errorf("%s: deliveries carry webhook-ids %v, want only the record's callback id %q", id, d.webhookIDs, v.Callback.ID)
		}
		c := h.target.count(id)
		if c > 1 {
			res.dupProcessing += c - 1
		}
		if v.Status == "succeeded" && c == 0 {
			t.Errorf("%s: succeeded, but the forward target never received it", id)
		}
		if v.Status == "failed" {
			res.failedEvents++
		}
	}
	if multi > 0 {
		t.Errorf("%d events were delivered under more than one callback id", multi)
	}
	return res
}

// fetchRecords GETs /events/{id} for ids, eight at a time, and returns the
// records read, the number of failed reads and the last error.
func (h *harness) fetchRecords(ids []string) (map[string]recordView, int, error) {
	out := make(map[string]recordView, len(ids))
	var mu sync.Mutex // guards out, errs and lastErr
	var errs int
	var lastErr error
	ch := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range ch {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				code, body, err := h.get(ctx, "/events/"+url.PathEscape(id))
				cancel()
				var v recordView
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("GET /events/%s: %d %s", id, code, strings.TrimSpace(string(body)))
				}
				if err == nil {
					err = json.Unmarshal(body, &v)
				}
				mu.Lock()
				if err != nil {
					errs++
					lastErr = err
				} else {
					out[id] = v
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		ch <- id
	}
	close(ch)
	wg.Wait()
	return out, errs, lastErr
}

// deadLetters reads every page of GET /dead-letters, keyed by event id.
func (h *harness) deadLetters(t *testing.T) (map[string]recordView, error) {
	t.Helper()
	out := make(map[string]recordView)
	cursor := ""
	for page := 0; page < 100; page++ {
		path := "/dead-letters?limit=1000"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, body, err := h.get(ctx, path)
		cancel()
		if err != nil {
			return out, fmt.Errorf("GET %s: %w", path, err)
		}
		if code != http.StatusOK {
			return out, fmt.Errorf("GET %s: %d %s", path, code, strings.TrimSpace(string(body)))
		}
		var ans struct {
			DeadLetters []recordView `json:"dead_letters"`
			NextCursor  string       `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			return out, fmt.Errorf("GET %s: %w in %.200s", path, err, body)
		}
		if ans.DeadLetters == nil {
			return out, fmt.Errorf("GET %s: no \"dead_letters\" array in %.200s", path, body)
		}
		for _, v := range ans.DeadLetters {
			out[v.EventID] = v
		}
		if ans.NextCursor == "" || len(ans.DeadLetters) == 0 {
			return out, nil
		}
		cursor = ans.NextCursor
	}
	return out, fmt.Errorf("GET /dead-letters: more than 100 pages")
}

// keys returns the keys of m, sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// expectAll returns the expectation e for every id.
func expectAll(ids []string, e expectation) map[string]expectation {
	m := make(map[string]expectation, len(ids))
	for _, id := range ids {
		m[id] = e
	}
	return m
}

// logCount counts the lines of the instances' logs containing s.
func (h *harness) logCount(s string) int {
	n := 0
	for _, in := range h.insts {
		n += strings.Count(in.logText(), s)
	}
	return n
}
