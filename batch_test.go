package boomerang_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// batchResult is one item of POST /events' answer.
type batchResult struct {
	Status    int             `json:"status"`
	EventID   string          `json:"event_id"`
	StatusURL string          `json:"status_url"`
	Event     json.RawMessage `json:"event"`
	Error     string          `json:"error"`
	Field     string          `json:"field"`
}

// postBatch sends body to POST /events and returns the status and results.
func postBatch(t *testing.T, h http.Handler, body string) (int, []batchResult, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body)))
	var out struct {
		Results []batchResult `json:"results"`
	}
	var raw map[string]any
	json.Unmarshal(w.Body.Bytes(), &out)
	json.Unmarshal(w.Body.Bytes(), &raw)
	return w.Code, out.Results, raw
}

// scriptCalls is a go-redis hook counting the scripts run (EVAL and
// EVALSHA), alone or in pipelines.
type scriptCalls struct{ n atomic.Int64 }

func (h *scriptCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}
func (h *scriptCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.count(c)
		}
		return next(ctx, cmds)
	}
}
func (h *scriptCalls) count(cmd redis.Cmder) {
	if n := cmd.Name(); n == "evalsha" || n == "eval" {
		h.n.Add(1)
	}
}

// POST /events answers each item as POST /event would have answered it
// alone, in order, and records the valid ones in one group commit: one
// enqueue script on a single node (one per partition on a cluster). A bad
// item refuses only itself.
func TestBatchIngest(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		cfg := testConfig(b)
		cfg.MaxBodyBytes = 2 << 10
		eng := newEngine(t, cfg)
		h := eng.Handler()
		if code, _ := post(t, h, `{"id":"old","event_type":"signup","payload":{"n":1}}`); code != http.StatusAccepted {
			t.Fatalf("POST /event old: got %d", code)
		}
		items := []string{
			`{"id":"b1","event_type":"signup","payload":{"n":1}}`,
			`{"id":"old","event_type":"signup","payload":{"n":1}}`,                             // a repeat: 200
			`{"id":"old","event_type":"signup","payload":{"n":2}}`,                             // the id with another body: 409
			`{"id":"b2","event_type":"bad type"}`,                                              // 400 naming event_type
			`{"id":"b3","event_type":"signup","payload":"` + strings.Repeat("x", 3<<10) + `"}`, // over max_body_bytes: 413
			`{"id":"b4","event_type":"signup","callback":{"success_url":"ftp://x"}}`,           // 400 naming the URL
			`{"event_type":"signup"}`,                                                          // 202 with a generated id
			`{"id":"b1","event_type":"signup","payload":{"n":1}}`,                              // b1 again in the same batch: a repeat
			`[1]`, // not an object
		}
		code, res, raw := postBatch(t, h, "["+strings.Join(items, ",")+"]")
		if code != http.StatusOK || len(res) != len(items) {
			t.Fatalf("POST /events: got %d with %d results (%v), want 200 with %d", code, len(res), raw, len(items))
		}
		want := []struct {
			status    int
			id, field string
		}{
			{202, "b1", ""}, {200, "old", ""}, {409, "old", ""}, {400, "", "event_type"}, {413, "", ""},
			{400, "", "callback.success_url"}, {202, "", ""}, {200, "b1", ""}, {400, "", "body"},
		}
		for i, w := range want {
			r := res[i]
			if r.Status != w.status || (w.id != "" && r.EventID != w.id) || r.Field != w.field {
				t.Errorf("item %d: got %+v, want status %d, id %q, field %q", i, r, w.status, w.id, w.field)
			}
			if r.Status >= 400 && r.Error == "" {
				t.Errorf("item %d: status %d with no error message", i, r.Status)
			}
		}
		if res[0].StatusURL != "/callback?event_id=b1" {
			t.Errorf("item 0: status_url %q", res[0].StatusURL)
		}
		var repeat struct {
			EventID string `json:"event_id"`
			Status  string `json:"status"`
		}
		if err := json.Unmarshal(res[1].Event, &repeat); err != nil || repeat.EventID != "old" || repeat.Status != "queued" {
			t.Errorf("item 1's record: got %s (%v), want old's record", res[1].Event, err)
		}
		gen := res[6].EventID
		if !strings.HasPrefix(gen, "evt_") {
			t.Errorf("item 6: got id %q, want a generated evt_ id", gen)
		}
		// What was recorded, and only that.
		ctx := context.Background()
		for _, id := range []string{"b1", gen} {
			if snap, err := eng.Store().Get(ctx, id); err != nil || snap.Record.Status != event.StatusQueued {
				t.Errorf("%s: got %+v (%v), want queued", id, snap.Record, err)
			}
		}
		for _, id := range []string{"b2", "b3", "b4"} {
			if _, err := eng.Store().Get(ctx, id); err == nil {
				t.Errorf("%s was refused but is recorded", id)
			}
		}
		body, _ := eng.Store().Body(ctx, "old")
		if !strings.Contains(string(body), `"n":1`) {
			t.Errorf("old's body changed to %s by the conflicting item", body)
		}

		// One group commit: a batch of new events spread over the
		// partitions is one enqueue script on a single node (at most one
		// per partition on a cluster).
		hook := &scriptCalls{}
		b.Client.AddHook(hook)
		var fresh []string
		for i := range 40 {
			fresh = append(fresh, fmt.Sprintf(`{"id":"g%d","event_type":"signup"}`, i))
		}
		if code, res, _ := postBatch(t, h, "["+strings.Join(fresh, ",")+"]"); code != http.StatusOK || len(res) != 40 || res[39].Status != http.StatusAccepted {
			t.Fatalf("POST /events of 40: got %d %+v", code, res)
		}
		scripts, maxScripts := hook.n.Load(), int64(1)
		if b.Name == "cluster" {
			// One per partition at most, each possibly twice: an EVALSHA
			// a node does not know yet is sent again as EVAL.
			maxScripts = 2 * 16
		}
		if scripts < 1 || scripts > maxScripts {
			t.Errorf("scripts run for a batch of 40: %d, want 1 to %d", scripts, maxScripts)
		}
	})
}

// The request as a whole: an array of 1 to max_batch_events events, within
// max_batch_bytes; else 400 or 413 naming the body, and nothing recorded.
func TestBatchIngestLimits(t *testing.T) {
	cfg := testConfig(redistest.Mini(t))
	cfg.MaxBatchEvents = 3
	cfg.MaxBodyBytes = 1 << 10
	cfg.MaxBatchBytes = 4 << 10
	eng := newEngine(t, cfg)
	h := eng.Handler()
	ev := func(i int) string { return fmt.Sprintf(`{"id":"l%d","event_type":"t"}`, i) }
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"not an array", ev(1), http.StatusBadRequest},
		{"empty", `[]`, http.StatusBadRequest},
		{"malformed", `[` + ev(1) + `,`, http.StatusBadRequest},
		{"too many", `[` + ev(1) + `,` + ev(2) + `,` + ev(3) + `,` + ev(4) + `]`, http.StatusRequestEntityTooLarge},
		{"too large", `[{"id":"l9","event_type":"t","payload":"` + strings.Repeat("x", 5<<10) + `"}]`, http.StatusRequestEntityTooLarge},
	} {
		code, _, raw := postBatch(t, h, tc.body)
		if code != tc.code || raw["error"] == nil {
			t.Errorf("%s: got %d %v, want %d with an error", tc.name, code, raw, tc.code)
		}
		if tc.code == http.StatusBadRequest && raw["field"] != "body" {
			t.Errorf("%s: field %v, want body", tc.name, raw["field"])
		}
	}
	for i := 1; i <= 4; i++ {
		if _, err := eng.Store().Get(context.Background(), fmt.Sprintf("l%d", i)); err == nil {
			t.Errorf("l%d recorded by a refused request", i)
		}
	}
	if code, res, _ := postBatch(t, h, `[`+ev(1)+`,`+ev(2)+`,`+ev(3)+`]`); code != http.StatusOK || len(res) != 3 || res[2].Status != http.StatusAccepted {
		t.Errorf("3 events at max_batch_events 3: got %d %+v", code, res)
	}
}

// When Redis does not answer, the batch is a 503 whose items say 503 with
// their event_id (send them again: a repeat is recognised), and the
// invalid ones still say why.
func TestBatchIngestStoreDown(t *testing.T) {
	b := redistest.Mini(t)
	cfg := testConfig(b)
	eng := newEngine(t, cfg)
	b.Mini.SetError("down")
	code, res, raw := postBatch(t, eng.Handler(), `[{"id":"d1","event_type":"t"},{"id":"d2","event_type":""}]`)
	if code != http.StatusServiceUnavailable || len(res) != 2 || res[0].Status != 503 || res[0].EventID != "d1" || res[1].Status != 400 {
		t.Fatalf("got %d %v, want 503 with d1 503 and item 1 400", code, raw)
	}
	b.Mini.SetError("")
	if code, res, _ := postBatch(t, eng.Handler(), `[{"id":"d1","event_type":"t"}]`); code != http.StatusOK || res[0].Status != http.StatusAccepted {
		t.Fatalf("after Redis came back: got %d %+v", code, res)
	}
}
