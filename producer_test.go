package boomerang_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// idOf returns the id of an event the engine runs.
func idOf(msg event.EventMessage[json.RawMessage]) string {
	return msg.(*callback.CallbackEventMessage[json.RawMessage]).ID
}

// do sends a request to h and returns the status, the headers and the
// decoded answer.
func do(t *testing.T, h http.Handler, method, url, body string, header ...string) (int, http.Header, map[string]any) {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, url, nil)
	} else {
		r = httptest.NewRequest(method, url, strings.NewReader(body))
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, w.Result().Header, out
}

// A delayed event (deliver_at or delay) is recorded at once, queued, and
// does not run before its time; then it runs as any other.
func TestDelayedEvents(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		eng := newEngine(t, testConfig(b))
		var mu sync.Mutex
		ran := map[string]time.Time{}
		boomerang.Handle(eng, "later", func(_ context.Context, msg event.EventMessage[json.RawMessage]) error {
			mu.Lock()
			ran[idOf(msg)] = time.Now()
			mu.Unlock()
			return nil
		})
		// An accept route would settle at ingest; a delayed event waits.
		if err := eng.Accept("accepted"); err != nil {
			t.Fatal(err)
		}
		h := eng.Handler()
		start(t, eng)
		sent := time.Now()
		at := sent.Add(700 * time.Millisecond).UTC().Format(time.RFC3339Nano)
		for _, body := range []string{
			`{"id":"d-at","event_type":"later","deliver_at":"` + at + `"}`,
			`{"id":"d-delay","event_type":"later","delay":"700ms"}`,
			`{"id":"d-secs","event_type":"later","delay":0.7}`,
			`{"id":"d-past","event_type":"later","deliver_at":"2020-01-01T00:00:00Z"}`,
			`{"id":"d-accept","event_type":"accepted","delay":"700ms"}`,
		} {
			if code, out := post(t, h, body); code != http.StatusAccepted {
				t.Fatalf("POST %s: got %d %v", body, code, out)
			}
		}
		code, _, rec := do(t, h, "GET", "/callback?event_id=d-delay", "")
		if code != 200 || rec["status"] != "queued" || rec["deliver_at"] == nil || rec["next_attempt_at"] != rec["deliver_at"] {
			t.Fatalf("d-delay before its time: got %d %v, want queued with deliver_at = next_attempt_at", code, rec)
		}
		if snap, _ := eng.Store().Get(context.Background(), "d-accept"); snap.Record.Status != event.StatusQueued {
			t.Fatalf("a delayed event of an accept route: got %s at once, want queued until its time", snap.Record.Status)
		}
		for _, id := range []string{"d-at", "d-delay", "d-secs", "d-past", "d-accept"} {
			waitFor(t, eng.Store(), id, terminal)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range []string{"d-at", "d-delay", "d-secs"} {
			if d := ran[id].Sub(sent); d < 650*time.Millisecond {
				t.Errorf("%s ran %v after it was sent, before its 700ms", id, d)
			}
		}
		if d := ran["d-past"].Sub(sent); d > 500*time.Millisecond {
			t.Errorf("d-past (deliver_at in the past) ran %v after it was sent, want at once", d)
		}
	})
}

// deliver_at and delay are validated; a refused event is not recorded.
func TestDelayedEventsValidation(t *testing.T) {
	eng := newEngine(t, testConfig(redistest.Mini(t)))
	for _, tc := range []struct{ body, field string }{
		{`{"id":"v1","event_type":"t","deliver_at":"tomorrow"}`, "deliver_at"},
		{`{"id":"v2","event_type":"t","deliver_at":12}`, "deliver_at"},
		{`{"id":"v3","event_type":"t","delay":"soon"}`, "delay"},
		{`{"id":"v4","event_type":"t","delay":"-1s"}`, "delay"},
		{`{"id":"v5","event_type":"t","delay":"2400h"}`, "delay"},
		{`{"id":"v6","event_type":"t","delay":"1s","deliver_at":"2030-01-01T00:00:00Z"}`, "delay"},
		{`{"id":"v7","event_type":"t","deliver_at":"2099-01-01T00:00:00Z"}`, "deliver_at"},
		{`{"id":"v8","event_type":"t","ordering_key":"a b"}`, "ordering_key"},
	} {
		code, out := post(t, eng.Handler(), tc.body)
		if code != http.StatusBadRequest || out["field"] != tc.field {
			t.Errorf("%s: got %d %v, want 400 naming %s", tc.body, code, out, tc.field)
		}
	}
	if _, err := eng.Store().Get(context.Background(), "v1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused event is recorded: %v", err)
	}
}

// DELETE /events/{id} cancels an event that has not started: it never
// runs and no callback is sent; an event that ran is a 409, an unknown one
// a 404. A canceled event can be retried by an operator.
func TestCancel(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		eng := newEngine(t, testConfig(b))
		recv := fakes.NewReceiver(t)
		var mu sync.Mutex
		ran := map[string]int{}
		boomerang.Handle(eng, "job", func(_ context.Context, msg event.EventMessage[json.RawMessage]) error {
			mu.Lock()
			ran[idOf(msg)]++
			mu.Unlock()
			return nil
		})
		h := eng.Handler()
		cb := `"callback":{"success_url":"` + recv.URL + `/ok","fail_url":"` + recv.URL + `/fail"}`
		for _, body := range []string{
			`{"id":"c-later","event_type":"job","delay":"1h",` + cb + `}`,
			`{"id":"c-now","event_type":"job",` + cb + `}`,
		} {
			if code, out := post(t, h, body); code != http.StatusAccepted {
				t.Fatalf("POST: got %d %v", code, out)
			}
		}
		code, _, out := do(t, h, "DELETE", "/events/c-later", "")
		if code != http.StatusOK || out["status"] != "canceled" || out["completed_at"] == nil {
			t.Fatalf("DELETE c-later: got %d %v, want 200 canceled", code, out)
		}
		if code, _, out := do(t, h, "DELETE", "/events/c-later", ""); code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "canceled") {
			t.Errorf("DELETE c-later again: got %d %v, want 409 saying it is canceled", code, out)
		}
		if code, _, _ := do(t, h, "DELETE", "/events/c-none", ""); code != http.StatusNotFound {
			t.Errorf("DELETE an unknown id: got %d, want 404", code)
		}
		start(t, eng)
		waitFor(t, eng.Store(), "c-now", func(s store.Snapshot) bool { return s.Callback != nil && s.Callback.Status == event.CallbackDelivered })
		if code, _, out := do(t, h, "DELETE", "/events/c-now", ""); code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "succeeded") {
			t.Errorf("DELETE a succeeded event: got %d %v, want 409", code, out)
		}
		// Canceled: terminal, no callback, listed by status.
		snap, err := eng.Store().Get(context.Background(), "c-later")
		if err != nil || snap.Record.Status != event.StatusCanceled || snap.Callback != nil {
			t.Fatalf("c-later: got %+v %+v (%v), want canceled with no callback", snap.Record, snap.Callback, err)
		}
		if code, _, out := do(t, h, "GET", "/callback?status=canceled", ""); code != 200 || !strings.Contains(fmt.Sprint(out["events"]), "c-later") {
			t.Errorf("GET /callback?status=canceled: got %d %v", code, out)
		}
		for _, c := range recv.Got() {
			if c.Body.EventID == "c-later" {
				t.Errorf("a callback was sent for the canceled event: %+v", c)
			}
		}
		// An operator may run it after all.
		if code, _, out := do(t, h, "POST", "/events/c-later/retry", ""); code != http.StatusAccepted {
			t.Fatalf("retry c-later: got %d %v", code, out)
		}
		waitFor(t, eng.Store(), "c-later", func(s store.Snapshot) bool { return s.Record.Status == event.StatusSucceeded })
		mu.Lock()
		defer mu.Unlock()
		if ran["c-later"] != 1 {
			t.Errorf("c-later ran %d times, want once (after the retry)", ran["c-later"])
		}
	})
}

// GET /callback?event_id=ID&wait=N answers once the event is terminal,
// signalled through Redis: the waiter is on an instance that runs nothing,
// the event runs on another. POST /event with Prefer: wait=N answers 200
// with the outcome when it comes within N seconds, else 202.
func TestWaitForOutcome(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		api := newEngine(t, testConfig(b)) // serves the API, runs nothing
		worker := newEngine(t, testConfig(b))
		release := make(chan struct{})
		boomerang.Handle(worker, "slow", func(ctx context.Context, _ event.EventMessage[json.RawMessage]) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
		boomerang.Handle(worker, "quick", func(context.Context, event.EventMessage[json.RawMessage]) error { return nil })
		release2 := make(chan struct{})
		defer close(release2)
		boomerang.Handle(worker, "stuck", func(ctx context.Context, _ event.EventMessage[json.RawMessage]) error {
			select {
			case <-release2:
			case <-ctx.Done():
			}
			return nil
		})
		start(t, worker)
		h := api.Handler()

		if code, out := post(t, h, `{"id":"w1","event_type":"slow"}`); code != http.StatusAccepted {
			t.Fatalf("POST w1: got %d %v", code, out)
		}
		type answer struct {
			code int
			out  map[string]any
			took time.Duration
		}
		got := make(chan answer, 1)
		go func() {
			t0 := time.Now()
			code, _, out := do(t, h, "GET", "/callback?event_id=w1&wait=20", "")
			got <- answer{code, out, time.Since(t0)}
		}()
		time.Sleep(300 * time.Millisecond)
		select {
		case a := <-got:
			t.Fatalf("the wait answered before the event ended: %+v", a)
		default:
		}
		released := time.Now()
		close(release)
		a := <-got
		if a.code != 200 || a.out["status"] != "succeeded" {
			t.Fatalf("GET ?wait=20: got %d %v, want the succeeded record", a.code, a.out)
		}
		if late := time.Since(released); late > 3*time.Second {
			t.Errorf("the wait answered %v after the event ended", late)
		}

		// Prefer: wait on POST /event: the outcome in the answer.
		code, hdr, out := do(t, h, "POST", "/event", `{"id":"w2","event_type":"quick"}`, "Prefer", "wait=10")
		if code != http.StatusOK || out["status"] != "succeeded" || hdr.Get("Preference-Applied") != "wait=10" {
			t.Fatalf("POST Prefer: wait=10: got %d %v %v, want 200 succeeded with Preference-Applied", code, out, hdr)
		}
		// Not done in time: 202, as without the preference, after about N.
		t0 := time.Now()
		code, _, out = do(t, h, "POST", "/event", `{"id":"w3","event_type":"stuck"}`, "Prefer", "respond-async, wait=1")
		if took := time.Since(t0); code != http.StatusAccepted || out["event_id"] != "w3" || took < 900*time.Millisecond || took > 5*time.Second {
			t.Errorf("POST Prefer: wait=1 for an event that takes longer: got %d %v after %v, want 202 after about 1s", code, out, took)
		}
		// A canceled event ends a wait too.
		post(t, h, `{"id":"w4","event_type":"quick","delay":"1h"}`)
		go func() {
			code, _, out := do(t, h, "GET", "/callback?event_id=w4&wait=20", "")
			got <- answer{code, out, 0}
		}()
		time.Sleep(200 * time.Millisecond)
		do(t, h, "DELETE", "/events/w4", "")
		select {
		case a := <-got:
			if a.out["status"] != "canceled" {
				t.Errorf("waiting on a canceled event: got %v", a.out)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("a wait on an event canceled meanwhile did not end within 5s")
		}
		if code, _, out := do(t, h, "GET", "/callback?event_id=w1&wait=soon", ""); code != 400 || out["field"] != "wait" {
			t.Errorf("wait=soon: got %d %v, want 400 naming wait", code, out)
		}
	})
}

// The waiters of an instance are bounded: past max_waiters a request is
// answered at once, as if it had not asked to wait.
func TestWaitersAreBounded(t *testing.T) {
	cfg := testConfig(redistest.Mini(t))
	cfg.MaxWaiters = 1
	eng := newEngine(t, cfg)
	h := eng.Handler()
	post(t, h, `{"id":"b1","event_type":"t","delay":"1h"}`)
	first := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		do(t, h, "GET", "/callback?event_id=b1&wait=2", "")
		first <- time.Since(t0)
	}()
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	code, _, out := do(t, h, "GET", "/callback?event_id=b1&wait=2", "")
	if took := time.Since(t0); code != 200 || out["status"] != "queued" || took > time.Second {
		t.Errorf("a second waiter at max_waiters 1: got %d %v after %v, want the record at once", code, out, took)
	}
	if took := <-first; took < 1900*time.Millisecond {
		t.Errorf("the first waiter answered after %v, want its 2s wait", took)
	}
}

// Events with one ordering_key run one at a time, in acceptance order, the
// next starting only once the one before ended, retries included; another
// key is not held up by a key whose head keeps failing. A held event's
// record says what it waits for, and canceling one lets the next go.
func TestOrderingKey(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		cfg := testConfig(b)
		cfg.Workers = 8
		eng := newEngine(t, cfg)
		var mu sync.Mutex
		type span struct{ start, end time.Time }
		runs := map[string][]span{} // by event id, each attempt
		order := map[string][]string{}
		fails := map[string]int{"a-1": 2} // a-1 fails twice, then succeeds
		boomerang.Handle(eng, "ord", func(_ context.Context, msg event.EventMessage[json.RawMessage]) error {
			id := idOf(msg)
			key := msg.GetMetadata()["key"]
			mu.Lock()
			order[key] = append(order[key], id)
			fail := fails[id] > 0
			fails[id]--
			mu.Unlock()
			t0 := time.Now()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			runs[id] = append(runs[id], span{t0, time.Now()})
			mu.Unlock()
			if fail {
				return errors.New("not yet")
			}
			return nil
		}, boomerang.WithRetry(boomerang.RetryPolicy{MaxAttempts: 5, InitialInterval: 300 * time.Millisecond, MaxInterval: time.Second, RandomizationFactor: -1}))
		h := eng.Handler()
		var items []string
		for i := range 6 {
			for _, key := range []string{"a", "b", "c"} {
				items = append(items, fmt.Sprintf(`{"id":"%s-%d","event_type":"ord","ordering_key":"k-%s","metadata":{"key":"%s"}}`, key, i, key, key))
			}
		}
		if code, res, raw := postBatch(t, h, "["+strings.Join(items, ",")+"]"); code != 200 || len(res) != len(items) || res[len(res)-1].Status != 202 {
			t.Fatalf("POST /events: got %d %v", code, raw)
		}
		// Before the workers run: a-2 waits for a-0, the head.
		if code, _, out := do(t, h, "GET", "/callback?event_id=a-2", ""); code != 200 || out["waiting_for"] != "a-0" || out["ordering_key"] != "k-a" {
			t.Fatalf("a-2 before Run: got %d %v, want waiting_for a-0", code, out)
		}
		if code, _, out := do(t, h, "GET", "/callback?event_id=a-0", ""); code != 200 || out["waiting_for"] != nil {
			t.Fatalf("a-0, the head: got %d %v, want no waiting_for", code, out)
		}
		if code, _, out := do(t, h, "DELETE", "/events/b-3", ""); code != 200 || out["status"] != "canceled" {
			t.Fatalf("cancel the held b-3: got %d %v", code, out)
		}
		start(t, eng)
		for _, key := range []string{"a", "b", "c"} {
			waitFor(t, eng.Store(), key+"-5", terminal)
		}
		mu.Lock()
		defer mu.Unlock()
		want := map[string][]string{
			"a": {"a-0", "a-1", "a-1", "a-1", "a-2", "a-3", "a-4", "a-5"},
			"b": {"b-0", "b-1", "b-2", "b-4", "b-5"},
			"c": {"c-0", "c-1", "c-2", "c-3", "c-4", "c-5"},
		}
		for key, w := range want {
			if fmt.Sprint(order[key]) != fmt.Sprint(w) {
				t.Errorf("key %s: attempts in the order %v, want %v", key, order[key], w)
			}
			// Each event starts only after the one before it ended.
			for i := 1; i < len(w); i++ {
				if w[i] == w[i-1] {
					continue
				}
				prev, cur := runs[w[i-1]], runs[w[i]]
				if len(prev) == 0 || len(cur) == 0 || cur[0].start.Before(prev[len(prev)-1].end) {
					t.Errorf("key %s: %s started before %s ended", key, w[i], w[i-1])
				}
			}
		}
		// b and c were not held up by a's retries (300ms, then 600ms).
		if a2, cEnd := runs["a-2"][0].start, runs["c-5"][0].end; !cEnd.Before(a2) {
			t.Errorf("c-5 ended at %v, after a-2 started (%v): key c was held up by key a's retries", cEnd, a2)
		}
	})
}

// When Run ends (the process is stopping), waiting requests are answered
// at once with the record as it is, so they do not hold up the shutdown.
func TestWaitEndsAtShutdown(t *testing.T) {
	eng := newEngine(t, testConfig(redistest.Mini(t)))
	stop := start(t, eng)
	h := eng.Handler()
	post(t, h, `{"id":"s1","event_type":"t","delay":"1h"}`)
	got := make(chan time.Duration, 1)
	go func() {
		t0 := time.Now()
		do(t, h, "GET", "/callback?event_id=s1&wait=20", "")
		got <- time.Since(t0)
	}()
	time.Sleep(300 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case took := <-got:
		if took > 5*time.Second {
			t.Errorf("the wait ended %v after it began, want soon after Run ended", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting request still waits 10s after Run ended")
	}
	// Later requests do not wait.
	t0 := time.Now()
	if code, _, out := do(t, h, "GET", "/callback?event_id=s1&wait=20", ""); code != 200 || out["status"] != "queued" || time.Since(t0) > 2*time.Second {
		t.Errorf("a wait after Run ended: got %d %v after %v, want the record at once", code, out, time.Since(t0))
	}
}

// With Redis down, a request that asks to wait is answered 503 at once
// (nothing to wait on, nothing known), not held for its wait; once Redis
// is back, waiting works again.
func TestWaitWithRedisDown(t *testing.T) {
	b := redistest.Mini(t)
	cfg := testConfig(b)
	cfg.RequestTimeout = 500 * time.Millisecond
	eng := newEngine(t, cfg)
	h := eng.Handler()
	post(t, h, `{"id":"r1","event_type":"t","delay":"1h"}`)
	b.Mini.SetError("LOADING")
	t0 := time.Now()
	code, hdr, _ := do(t, h, "GET", "/callback?event_id=r1&wait=10", "")
	if took := time.Since(t0); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || took > 3*time.Second {
		t.Errorf("waiting with Redis down: got %d (Retry-After %q) after %v, want 503 at once", code, hdr.Get("Retry-After"), took)
	}
	b.Mini.SetError("")
	got := make(chan int, 1)
	go func() {
		code, _, out := do(t, h, "GET", "/callback?event_id=r1&wait=10", "")
		if out["status"] != "canceled" {
			code = -code
		}
		got <- code
	}()
	time.Sleep(200 * time.Millisecond)
	do(t, h, "DELETE", "/events/r1", "")
	select {
	case code := <-got:
		if code != http.StatusOK {
			t.Errorf("waiting after Redis came back: got %d, want 200 with the canceled record", code)
		}
	case <-time.After(5 * time.Second):
		t.Error("a wait after Redis came back did not end with the cancel")
	}
}
