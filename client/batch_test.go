package client_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/boomerang-events/boomerang/client"
	"github.com/boomerang-events/boomerang/event"
)

// sentIDs returns the ids of a batch's JSON array.
func sentIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var evs []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &evs); err != nil {
		t.Fatalf("request body %q: %v", body, err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

func TestSendBatch(t *testing.T) {
	srv := serve(t, testConfig())
	ct := &countingTransport{}
	c := newClient(t, srv.URL, client.Config{HTTPClient: &http.Client{Transport: ct}, Retry: fastRetry})
	seen := client.Event{ID: "batch-seen", EventType: "ok", Payload: json.RawMessage(`{"name":"ann"}`)}
	if _, err := c.Send(t.Context(), seen); err != nil {
		t.Fatalf("Send: %v", err)
	}
	ct.n.Store(0)
	other := seen
	other.Payload = json.RawMessage(`{"name":"bob"}`)
	evs := []client.Event{
		{EventType: "ok"},        // new, id generated
		seen,                     // repeat
		other,                    // conflict
		{EventType: "no spaces"}, // refused
		{ID: "batch-new", EventType: "ok"},
	}
	want := []struct {
		status int
		field  string
		is     error
	}{{202, "", nil}, {200, "", nil}, {409, "", client.ErrConflict}, {400, "event_type", nil}, {202, "", nil}}

	results, err := c.SendBatch(t.Context(), evs)
	if err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	if n := ct.n.Load(); n != 1 {
		t.Errorf("got %d requests, want 1", n)
	}
	if len(results) != len(evs) {
		t.Fatalf("got %d results, want %d", len(results), len(evs))
	}
	for i, r := range results {
		w := want[i]
		if r.Status != w.status {
			t.Errorf("item %d: got status %d (%v), want %d", i, r.Status, r.Err, w.status)
			continue
		}
		switch {
		case evs[i].ID != "" && r.EventID != evs[i].ID:
			t.Errorf("item %d: got EventID %q, want %q", i, r.EventID, evs[i].ID)
		case evs[i].ID == "" && event.ValidateID(r.EventID) != nil:
			t.Errorf("item %d: got EventID %q, want a generated id", i, r.EventID)
		}
		if w.status >= 300 {
			var apiErr *client.APIError
			if !errors.As(r.Err, &apiErr) || apiErr.StatusCode != w.status || apiErr.Field != w.field {
				t.Errorf("item %d: got Err %v, want an *APIError of %d naming %q", i, r.Err, w.status, w.field)
			}
			if w.is != nil && !errors.Is(r.Err, w.is) {
				t.Errorf("item %d: got Err %v, want errors.Is %v", i, r.Err, w.is)
			}
			continue
		}
		if r.Err != nil {
			t.Errorf("item %d: got Err %v, want nil", i, r.Err)
		}
		if want := srv.URL + "/callback?event_id=" + r.EventID; r.StatusURL != want {
			t.Errorf("item %d: got StatusURL %q, want %q", i, r.StatusURL, want)
		}
		if repeat := w.status == 200; repeat != (r.Record != nil) || repeat && r.Record.EventID != r.EventID {
			t.Errorf("item %d: got Record %+v, want the record for a 200 only", i, r.Record)
		}
	}
}

// After a 503 that marks some items 503, only those are sent again, with
// the same ids and bytes; the decided ones keep their result.
func TestSendBatchRetriesOnlyUndecided(t *testing.T) {
	srv := serve(t, testConfig())
	fr, f := newFront(t, srv.Config.Handler, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > 1 {
			return false
		}
		var evs []map[string]any
		json.NewDecoder(r.Body).Decode(&evs)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"error": "event store unavailable", "results": []map[string]any{
			{"status": 400, "error": "payload: refused by the test", "field": "payload"},
			{"status": 503, "event_id": evs[1]["id"], "error": "outcome unknown"},
			{"status": 503, "event_id": evs[2]["id"], "error": "outcome unknown"},
		}})
		return true
	})
	c := newClient(t, fr.URL, client.Config{Retry: fastRetry})
	results, err := c.SendBatch(t.Context(), []client.Event{{EventType: "ok"}, {EventType: "ok"}, {ID: "batch-third", EventType: "ok"}})
	if err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	first, second := sentIDs(t, reqs[0]), sentIDs(t, reqs[1])
	if len(first) != 3 || len(second) != 2 || second[0] != first[1] || second[1] != first[2] {
		t.Errorf("got ids %q then %q, want the last two sent again", first, second)
	}
	var items []json.RawMessage
	json.Unmarshal(reqs[0], &items)
	if len(items) == 3 && string(reqs[1]) != "["+string(items[1])+","+string(items[2])+"]" {
		t.Errorf("got %s again, want the bytes of %s", reqs[1], reqs[0])
	}
	for i, want := range []int{400, 202, 202} {
		if results[i].Status != want || results[i].EventID != first[i] {
			t.Errorf("item %d: got %d %s (%v), want %d %s", i, results[i].Status, results[i].EventID, results[i].Err, want, first[i])
		}
	}
}

// After a transport error the whole batch is sent again, as it was.
func TestSendBatchRetriesNetworkErrors(t *testing.T) {
	srv := serve(t, testConfig())
	fr, f := newFront(t, srv.Config.Handler, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n > 1 {
			return false
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		return true
	})
	c := newClient(t, fr.URL, client.Config{Retry: fastRetry})
	results, err := c.SendBatch(t.Context(), []client.Event{{EventType: "ok"}, {EventType: "ok"}})
	if err != nil {
		t.Fatalf("SendBatch: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || string(reqs[0]) != string(reqs[1]) {
		t.Fatalf("got requests %q, want the same batch twice", reqs)
	}
	for i, r := range results {
		if r.Status != 202 {
			t.Errorf("item %d: got %d (%v), want 202", i, r.Status, r.Err)
		}
	}
}

// When SendBatch gives up, the undecided events say so, with their ids.
func TestSendBatchGivesUp(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		tries      int32
		is         error
		itemStatus int
	}{
		{"503 every time", 503, `{"error":"unavailable","results":[{"status":503,"error":"outcome unknown"},{"status":503,"error":"outcome unknown"}]}`,
			3, client.ErrUnavailable, 503},
		{"401", 401, `{"error":"missing or unknown API key"}`, 1, client.ErrUnauthorized, 0},
		{"200 with too few results", 200, `{"results":[{"status":202}]}`, 1, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer fake.Close()
			c := newClient(t, fake.URL, client.Config{Retry: fastRetry})
			results, err := c.SendBatch(t.Context(), []client.Event{{EventType: "ok"}, {ID: "given", EventType: "ok"}})
			if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("got %v, want an error matching %v", err, tt.is)
			}
			if got := n.Load(); got != tt.tries {
				t.Errorf("got %d requests, want %d", got, tt.tries)
			}
			if len(results) != 2 || results[1].EventID != "given" || event.ValidateID(results[0].EventID) != nil {
				t.Fatalf("got %+v, want two results with their ids", results)
			}
			for i, r := range results {
				if r.Status != tt.itemStatus || r.Err == nil {
					t.Errorf("item %d: got status %d, Err %v; want %d and an error", i, r.Status, r.Err, tt.itemStatus)
				}
			}
		})
	}
}

func TestSendBatchEmpty(t *testing.T) {
	ct := &countingTransport{}
	c := newClient(t, "http://127.0.0.1:1", client.Config{HTTPClient: &http.Client{Transport: ct}})
	results, err := c.SendBatch(t.Context(), nil)
	if err != nil || len(results) != 0 || ct.n.Load() != 0 {
		t.Errorf("got %v, %v after %d requests; want nothing sent", results, err, ct.n.Load())
	}
}
