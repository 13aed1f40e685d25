package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/client"
	"github.com/boomerang-events/boomerang/event"
)

// fastRetry keeps retrying tests quick.
var fastRetry = client.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: 10 * time.Millisecond}

func newClient(t *testing.T, baseURL string, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(baseURL, cfg)
	if err != nil {
		t.Fatalf("New(%q): %v", baseURL, err)
	}
	return c
}

// countingTransport is an http.RoundTripper that counts the requests it
// passes to http.DefaultTransport.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// sentID returns the "id" of an event's JSON.
func sentID(t *testing.T, body []byte) string {
	t.Helper()
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("request body %q: %v", body, err)
	}
	return ev.ID
}

func TestSend(t *testing.T) {
	srv := serve(t, testConfig())
	ctx := t.Context()
	tests := []struct {
		name   string
		before *client.Event // sent first, when set
		ev     client.Event
		repeat bool   // want a 200
		status int    // want an *APIError of this status; 0 for none
		field  string // and this field
		is     error  // and errors.Is this
	}{
		{name: "new, id generated", ev: client.Event{EventType: "ok", Payload: map[string]string{"name": "ann"}}},
		{name: "new, id given", ev: client.Event{ID: "send-new", EventType: "ok"}},
		{name: "repeat", before: &client.Event{ID: "send-repeat", EventType: "ok", Payload: json.RawMessage(`{"name":"bob"}`)},
			ev: client.Event{ID: "send-repeat", EventType: "ok", Payload: json.RawMessage(`{"name":"bob"}`)}, repeat: true},
		{name: "conflict", before: &client.Event{ID: "send-conflict", EventType: "ok", Payload: json.RawMessage(`{"name":"bob"}`)},
			ev: client.Event{ID: "send-conflict", EventType: "ok", Payload: json.RawMessage(`{"name":"eve"}`)}, status: 409, is: client.ErrConflict},
		{name: "bad event type", ev: client.Event{EventType: "no spaces"}, status: 400, field: "event_type"},
		{name: "bad id", ev: client.Event{ID: "a/b", EventType: "ok"}, status: 400, field: "id"},
		{name: "bad callback URL", ev: client.Event{EventType: "ok", Callback: &client.Callback{SuccessURL: "ftp://example.com/"}},
			status: 400, field: "callback.success_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := &countingTransport{}
			c := newClient(t, srv.URL, client.Config{HTTPClient: &http.Client{Transport: ct}, Retry: fastRetry})
			if tt.before != nil {
				if _, err := c.Send(ctx, *tt.before); err != nil {
					t.Fatalf("first Send: %v", err)
				}
				ct.n.Store(0)
			}
			res, err := c.Send(ctx, tt.ev)
			if n := ct.n.Load(); n != 1 || res.Attempts != 1 {
				t.Errorf("got %d requests (Attempts %d), want 1", n, res.Attempts)
			}
			switch {
			case tt.ev.ID != "" && res.EventID != tt.ev.ID:
				t.Errorf("got EventID %q, want %q", res.EventID, tt.ev.ID)
			case tt.ev.ID == "" && event.ValidateID(res.EventID) != nil:
				t.Errorf("got EventID %q, want a generated id", res.EventID)
			}
			if tt.status != 0 {
				var apiErr *client.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("got error %v, want an *APIError", err)
				}
				if apiErr.StatusCode != tt.status || apiErr.Field != tt.field {
					t.Errorf("got status %d field %q, want %d %q (%v)", apiErr.StatusCode, apiErr.Field, tt.status, tt.field, err)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("got %v, want errors.Is %v", err, tt.is)
				}
				if !strings.HasPrefix(err.Error(), "client: send "+res.EventID+": HTTP ") {
					t.Errorf("got message %q, want it to name the operation, the id and the status", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if want := srv.URL + "/callback?event_id=" + res.EventID; res.StatusURL != want {
				t.Errorf("got StatusURL %q, want %q", res.StatusURL, want)
			}
			if res.Repeat != tt.repeat {
				t.Fatalf("got Repeat %v, want %v", res.Repeat, tt.repeat)
			}
			if tt.repeat && (res.Record == nil || res.Record.EventID != res.EventID || res.Record.EventType != "ok") {
				t.Errorf("got Record %+v, want the record of %s", res.Record, res.EventID)
			}
			if !tt.repeat && res.Record != nil {
				t.Errorf("got Record %+v for a new event, want nil", res.Record)
			}
		})
	}
}

// A 503 is retried with the same id, whether the server recorded the event
// before its answer was lost (the retry is a repeat) or not.
func TestSendRetries503WithTheSameID(t *testing.T) {
	srv := serve(t, testConfig())
	api := srv.Config.Handler
	unavailable := func(w http.ResponseWriter, id string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"error": "event store unavailable: outcome unknown", "event_id": id})
	}
	tests := []struct {
		name       string
		recordIt   bool // the first request reaches the server, its answer is lost
		wantRepeat bool
	}{
		{"not recorded", false, false},
		{"recorded, answer lost", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr, f := newFront(t, api, func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n > 1 {
					return false
				}
				if tt.recordIt {
					rec := httptest.NewRecorder()
					api.ServeHTTP(rec, r)
					if rec.Code != http.StatusAccepted {
						t.Errorf("first request: got %d %s, want 202", rec.Code, rec.Body)
					}
				}
				unavailable(w, "")
				return true
			})
			c := newClient(t, fr.URL, client.Config{Retry: fastRetry})
			res, err := c.Send(t.Context(), client.Event{EventType: "ok", Payload: map[string]int{"n": 1}})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 2 || res.Attempts != 2 {
				t.Fatalf("got %d requests (Attempts %d), want 2", len(reqs), res.Attempts)
			}
			first, second := sentID(t, reqs[0]), sentID(t, reqs[1])
			if first == "" || first != second || first != res.EventID {
				t.Errorf("got ids %q then %q (result %q), want one id", first, second, res.EventID)
			}
			if string(reqs[0]) != string(reqs[1]) {
				t.Errorf("got bodies %s then %s, want the same bytes", reqs[0], reqs[1])
			}
			if res.Repeat != tt.wantRepeat {
				t.Errorf("got Repeat %v, want %v", res.Repeat, tt.wantRepeat)
			}
		})
	}
}

// A 503's Retry-After is waited for, cut to MaxInterval.
func TestSendHonoursRetryAfter(t *testing.T) {
	srv := serve(t, testConfig())
	tests := []struct {
		name        string
		max         time.Duration
		least, most time.Duration
	}{
		{"waited", 0, 900 * time.Millisecond, 3 * time.Second},
		{"cut to MaxInterval", 20 * time.Millisecond, 0, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr, f := newFront(t, srv.Config.Handler, func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusServiceUnavailable)
					return true
				}
				return false
			})
			c := newClient(t, fr.URL, client.Config{Retry: client.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: tt.max}})
			if _, err := c.Send(t.Context(), client.Event{EventType: "ok"}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			at := f.times()
			if len(at) != 2 {
				t.Fatalf("got %d requests, want 2", len(at))
			}
			if d := at[1].Sub(at[0]); d < tt.least || d > tt.most {
				t.Errorf("got %s between the attempts, want %s to %s", d, tt.least, tt.most)
			}
		})
	}
}

// Transport errors that may pass are retried with the same id.
func TestSendRetriesNetworkErrors(t *testing.T) {
	srv := serve(t, testConfig())
	tests := []struct {
		name      string
		intercept func(w http.ResponseWriter, r *http.Request)
	}{
		{"connection closed", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			conn.Close()
		}},
		{"request timeout", func(w http.ResponseWriter, r *http.Request) {
			select { // until the client's Timeout gives up
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
				t.Error("the client did not time out the request within 5s")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr, f := newFront(t, srv.Config.Handler, func(n int, w http.ResponseWriter, r *http.Request) bool {
				if n == 1 {
					tt.intercept(w, r)
					return true
				}
				return false
			})
			c := newClient(t, fr.URL, client.Config{Retry: fastRetry, Timeout: 200 * time.Millisecond})
			res, err := c.Send(t.Context(), client.Event{EventType: "ok"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 2 || res.Attempts != 2 {
				t.Fatalf("got %d requests (Attempts %d), want 2", len(reqs), res.Attempts)
			}
			if a, b := sentID(t, reqs[0]), sentID(t, reqs[1]); a == "" || a != b {
				t.Errorf("got ids %q then %q, want one id", a, b)
			}
		})
	}
}

// A refused connection is retried until the attempts are spent; the error
// says so and the result still names the id to send again with.
func TestSendConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	ct := &countingTransport{}
	c := newClient(t, "http://"+addr, client.Config{HTTPClient: &http.Client{Transport: ct}, Retry: fastRetry})
	res, err := c.Send(t.Context(), client.Event{EventType: "ok"})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v, want connection refused", err)
	}
	if n := ct.n.Load(); n != 3 || res.Attempts != 3 {
		t.Errorf("got %d requests (Attempts %d), want 3", n, res.Attempts)
	}
	if !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("got %q, want it to say 3 attempts", err)
	}
	if event.ValidateID(res.EventID) != nil {
		t.Errorf("got EventID %q, want the generated id", res.EventID)
	}
}

// Only 502, 503 and 504 are retried.
func TestSendRetriesByStatus(t *testing.T) {
	tests := []struct {
		status int
		tries  int32
		is     error
	}{
		{400, 1, nil},
		{401, 1, client.ErrUnauthorized},
		{404, 1, client.ErrNotFound},
		{409, 1, client.ErrConflict},
		{413, 1, nil},
		{429, 1, nil},
		{500, 1, nil},
		{502, 3, nil},
		{503, 3, client.ErrUnavailable},
		{504, 3, nil},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			var n atomic.Int32
			fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				w.WriteHeader(tt.status)
				w.Write([]byte(`{"error":"no"}`))
			}))
			defer fake.Close()
			c := newClient(t, fake.URL, client.Config{Retry: fastRetry})
			_, err := c.Send(t.Context(), client.Event{EventType: "ok"})
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status || apiErr.Message != "no" {
				t.Fatalf("got %v, want an *APIError of %d saying no", err, tt.status)
			}
			if got := n.Load(); got != tt.tries {
				t.Errorf("got %d requests, want %d", got, tt.tries)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("got %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

// The call's ctx bounds the retries.
func TestSendStopsWithContext(t *testing.T) {
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer fake.Close()
	c := newClient(t, fake.URL, client.Config{Retry: client.RetryPolicy{MaxAttempts: 1000, InitialInterval: 20 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Send(ctx, client.Event{EventType: "ok"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("got %v, want the deadline and the last 503", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send returned after %s, want about 300ms", d)
	}
}

func TestAPIKey(t *testing.T) {
	cfg := testConfig()
	cfg.Auth.APIKeys = []string{"key-one-0123456789"}
	srv := serve(t, cfg)
	tests := []struct {
		key     string
		wantErr error
	}{
		{"", client.ErrUnauthorized},
		{"key-two-0123456789", client.ErrUnauthorized},
		{"key-one-0123456789", nil},
	}
	for _, tt := range tests {
		c := newClient(t, srv.URL, client.Config{APIKey: tt.key})
		if _, err := c.Send(t.Context(), client.Event{EventType: "ok"}); !errors.Is(err, tt.wantErr) {
			t.Errorf("key %q: got %v, want %v", tt.key, err, tt.wantErr)
		}
	}
}

func TestEventJSON(t *testing.T) {
	ts := time.Date(2024, 8, 20, 5, 21, 19, 0, time.UTC)
	tests := []struct {
		name string
		ev   client.Event
		want string
	}{
		{"zero fields left out", client.Event{EventType: "t"}, `{"event_type":"t"}`},
		{"every field", client.Event{
			ID: "e1", EventType: "t", Timestamp: ts, Payload: json.RawMessage(`{"a":1}`), Metadata: map[string]string{"k": "v"},
			Callback:    &client.Callback{SuccessURL: "http://s", FailURL: "http://f", Method: "GET", Format: "json"},
			OrderingKey: "user-1", DeliverAt: ts.Add(time.Hour), Delay: 90 * time.Second,
		}, `{"id":"e1","event_type":"t","timestamp":"2024-08-20T05:21:19Z","payload":{"a":1},"metadata":{"k":"v"},` +
			`"callback":{"success_url":"http://s","fail_url":"http://f","method":"GET","format":"json"},` +
			`"ordering_key":"user-1","deliver_at":"2024-08-20T06:21:19Z","delay":"1m30s"}`},
		{"callback URLs only", client.Event{EventType: "t", Callback: &client.Callback{SuccessURL: "http://s"}},
			`{"event_type":"t","callback":{"success_url":"http://s"}}`},
		{"delay under a second", client.Event{EventType: "t", Delay: 1500 * time.Millisecond}, `{"event_type":"t","delay":"1.5s"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		url  string
		cfg  client.Config
		ok   bool
	}{
		{"http", "http://127.0.0.1:8080", client.Config{}, true},
		{"https with a path", "https://example.com/boomerang/", client.Config{}, true},
		{"no scheme", "127.0.0.1:8080", client.Config{}, false},
		{"other scheme", "ftp://example.com", client.Config{}, false},
		{"no host", "http://", client.Config{}, false},
		{"query", "http://example.com/?a=1", client.Config{}, false},
		{"negative timeout", "http://example.com", client.Config{Timeout: -1}, false},
		{"negative attempts", "http://example.com", client.Config{Retry: client.RetryPolicy{MaxAttempts: -1}}, false},
		{"negative interval", "http://example.com", client.Config{Retry: client.RetryPolicy{InitialInterval: -1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.New(tt.url, tt.cfg)
			if (err == nil) != tt.ok {
				t.Errorf("New(%q): got %v, want ok %v", tt.url, err, tt.ok)
			}
		})
	}
}

// A base URL with a path prefixes every route, the status URL too.
func TestBaseURLPath(t *testing.T) {
	srv := serve(t, testConfig())
	mux := http.NewServeMux()
	mux.Handle("/boomerang/", http.StripPrefix("/boomerang", srv.Config.Handler))
	prefixed := httptest.NewServer(mux)
	defer prefixed.Close()
	c := newClient(t, prefixed.URL+"/boomerang/", client.Config{})
	res, err := c.Send(t.Context(), client.Event{EventType: "ok"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if want := prefixed.URL + "/boomerang/callback?event_id=" + res.EventID; res.StatusURL != want {
		t.Errorf("got StatusURL %q, want %q", res.StatusURL, want)
	}
}
