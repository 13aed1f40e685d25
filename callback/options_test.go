package callback_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// request is what a recorder saw of one request.
type request struct {
	method   string
	rawQuery string
	header   http.Header
	body     []byte
}

// recorder is a callback receiver that answers the scripted statuses in
// turn (the last one repeats; 200 when none) and records every request.
type recorder struct {
	*httptest.Server
	statuses []int

	mu  sync.Mutex // guards got
	got []request
}

func newRecorder(t *testing.T, statuses ...int) *recorder {
	r := &recorder{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, request{req.Method, req.URL.RawQuery, req.Header.Clone(), body})
		code := http.StatusOK
		if len(r.statuses) > 0 {
			code = r.statuses[min(len(r.got), len(r.statuses))-1]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

// runDispatcher runs a dispatcher of st with cfg (private networks
// allowed, quick polls and retries) until the test ends.
func runDispatcher(t *testing.T, st *store.Redis, cfg callback.Config) {
	t.Helper()
	cfg.AllowPrivateNetworks, cfg.Logger, cfg.PollInterval = true, quiet, 5*time.Millisecond
	cfg.Retry = callback.RetryPolicy{MaxAttempts: 3, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond}
	d, err := callback.NewDispatcher(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A GET callback carries the outcome as event_id, status and attempts
// added to the URL's own query (kept as written; a parameter of one of
// those names is replaced), no body, and the signature headers over the
// empty body. Its answers are classified as a POST's are.
func TestDispatcherGET(t *testing.T) {
	sec := secret('g')
	tests := []struct {
		name         string
		status       event.Status
		answers      []int
		wantStatus   event.CallbackStatus
		wantRequests int
	}{
		{"succeeded", event.StatusSucceeded, []int{204}, event.CallbackDelivered, 1},
		{"failed", event.StatusFailed, []int{200}, event.CallbackDelivered, 1},
		{"503 is retried", event.StatusSucceeded, []int{503, 200}, event.CallbackDelivered, 2},
		{"410 is permanent", event.StatusSucceeded, []int{410}, event.CallbackFailed, 1},
		{"redirect is not followed", event.StatusSucceeded, []int{302}, event.CallbackFailed, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := store.New(redistest.Mini(t).Client, store.Config{Prefix: "test", Logger: quiet})
			rcv := newRecorder(t, tc.answers...)
			finishedAs(t, st, "e1", rcv.URL+"/hook?token=a%2Bb&status=stale&x=1", tc.status, callback.Options{Method: event.CallbackGET})
			runDispatcher(t, st, callback.Config{SigningSecrets: []string{sec}})

			cb := waitCallback(t, st, "e1")
			if cb.Status != tc.wantStatus {
				t.Errorf("callback: got %s (%q), want %s", cb.Status, cb.LastError, tc.wantStatus)
			}
			got := rcv.requests()
			if len(got) != tc.wantRequests {
				t.Fatalf("requests: got %d, want %d", len(got), tc.wantRequests)
			}
			wantQuery := "token=a%2Bb&x=1&attempts=1&event_id=e1&status=" + tc.status.String()
			wh, _ := standardwebhooks.NewWebhook(sec)
			for _, r := range got {
				if r.method != http.MethodGet {
					t.Errorf("method: got %s, want GET", r.method)
				}
				if r.rawQuery != wantQuery {
					t.Errorf("query: got %s, want %s", r.rawQuery, wantQuery)
				}
				if len(r.body) != 0 || r.header.Get("Content-Type") != "" {
					t.Errorf("got a body %q of type %q, want none", r.body, r.header.Get("Content-Type"))
				}
				if r.header.Get("webhook-id") != cb.ID || r.header.Get("webhook-signature") == "" {
					t.Errorf("headers: got webhook-id %q, signature %q; want %q and a signature", r.header.Get("webhook-id"), r.header.Get("webhook-signature"), cb.ID)
				}
				if err := wh.Verify([]byte{}, r.header); err != nil {
					t.Errorf("signature over the empty body: %v", err)
				}
			}
		})
	}
}

// The method and format of a delivery are the event's, else its route's,
// else the dispatcher's; a format named more specifically than a GET makes
// a POST of it, a GET named more specifically makes the format moot.
func TestDispatcherResolvesOptions(t *testing.T) {
	get, post := event.CallbackGET, event.CallbackPOST
	ce, js := event.CallbackCloudEvents, event.CallbackJSON
	tests := []struct {
		name            string
		ev, route, cfg  callback.Options
		wantMethod      string
		wantContentType string // "" for a GET
	}{
		{"defaults", callback.Options{}, callback.Options{}, callback.Options{}, "POST", "application/json"},
		{"config GET", callback.Options{}, callback.Options{}, callback.Options{Method: get}, "GET", ""},
		{"config cloudevents", callback.Options{}, callback.Options{}, callback.Options{Format: ce}, "POST", callback.CloudEventsContentType},
		{"route GET over config", callback.Options{}, callback.Options{Method: get}, callback.Options{Method: post}, "GET", ""},
		{"route cloudevents over config json", callback.Options{}, callback.Options{Format: ce}, callback.Options{Format: js}, "POST", callback.CloudEventsContentType},
		{"event POST over route GET", callback.Options{Method: post}, callback.Options{Method: get}, callback.Options{}, "POST", "application/json"},
		{"event GET over config cloudevents", callback.Options{Method: get}, callback.Options{}, callback.Options{Format: ce}, "GET", ""},
		{"event cloudevents over config GET", callback.Options{Format: ce}, callback.Options{}, callback.Options{Method: get}, "POST", callback.CloudEventsContentType},
		{"route cloudevents over config GET", callback.Options{}, callback.Options{Format: ce}, callback.Options{Method: get}, "POST", callback.CloudEventsContentType},
		{"route GET over config cloudevents", callback.Options{}, callback.Options{Method: get}, callback.Options{Format: ce}, "GET", ""},
		{"event json, route GET", callback.Options{Format: js}, callback.Options{Method: get}, callback.Options{}, "GET", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := store.New(redistest.Mini(t).Client, store.Config{Prefix: "test", Logger: quiet})
			rcv := newRecorder(t)
			finishedAs(t, st, "e1", rcv.URL, event.StatusSucceeded, tc.ev)
			var asked []string
			var mu sync.Mutex
			runDispatcher(t, st, callback.Config{Method: tc.cfg.Method, Format: tc.cfg.Format,
				RouteOptions: func(eventType string) callback.Options {
					mu.Lock()
					asked = append(asked, eventType)
					mu.Unlock()
					return tc.route
				}})
			if cb := waitCallback(t, st, "e1"); cb.Status != event.CallbackDelivered {
				t.Fatalf("callback: got %s (%q), want delivered", cb.Status, cb.LastError)
			}
			got := rcv.requests()
			if len(got) != 1 {
				t.Fatalf("requests: got %d, want 1", len(got))
			}
			if got[0].method != tc.wantMethod || got[0].header.Get("Content-Type") != tc.wantContentType {
				t.Errorf("got %s with Content-Type %q, want %s with %q", got[0].method, got[0].header.Get("Content-Type"), tc.wantMethod, tc.wantContentType)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(asked) == 0 || asked[0] != "user_created" {
				t.Errorf("RouteOptions asked for %q, want the event's type user_created", asked)
			}
		})
	}
}

func TestNewDispatcherRefusesBadOptions(t *testing.T) {
	st, _ := store.New(redistest.Mini(t).Client, store.Config{Prefix: "test", Logger: quiet})
	for _, tc := range []struct {
		name string
		cfg  callback.Config
		want string
	}{
		{"method", callback.Config{Method: "PUT"}, "callback.method"},
		{"format", callback.Config{Format: "xml"}, "callback.format"},
		{"GET with cloudevents", callback.Config{Method: event.CallbackGET, Format: event.CallbackCloudEvents}, "callback.format"},
		{"source", callback.Config{CloudEventsSource: "two words"}, "cloudevents source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := callback.NewDispatcher(st, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

// A cloudevents callback is a structured-mode CloudEvent whose id is the
// webhook-id, whose data is the JSON a json callback sends, signed over
// its own body.
func TestDispatcherCloudEvents(t *testing.T) {
	sec := secret('c')
	for _, tc := range []struct {
		status   event.Status
		wantType string
	}{
		{event.StatusSucceeded, "boomerang.event.succeeded"},
		{event.StatusFailed, "boomerang.event.failed"},
	} {
		t.Run(tc.status.String(), func(t *testing.T) {
			st, _ := store.New(redistest.Mini(t).Client, store.Config{Prefix: "test", Logger: quiet})
			rcv := newRecorder(t)
			finishedAs(t, st, "e1", rcv.URL, tc.status, callback.Options{Format: event.CallbackCloudEvents})
			runDispatcher(t, st, callback.Config{SigningSecrets: []string{sec}, CloudEventsSource: "/boomerang/eu-1"})
			cb := waitCallback(t, st, "e1")
			got := rcv.requests()
			if len(got) != 1 {
				t.Fatalf("requests: got %d, want 1", len(got))
			}
			r := got[0]
			if r.method != http.MethodPost || r.header.Get("Content-Type") != "application/cloudevents+json" {
				t.Errorf("got %s %q, want POST application/cloudevents+json", r.method, r.header.Get("Content-Type"))
			}
			var ce struct {
				SpecVersion     string           `json:"specversion"`
				ID              string           `json:"id"`
				Source          string           `json:"source"`
				Type            string           `json:"type"`
				Subject         string           `json:"subject"`
				Time            time.Time        `json:"time"`
				DataContentType string           `json:"datacontenttype"`
				Data            callback.Payload `json:"data"`
			}
			if err := json.Unmarshal(r.body, &ce); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			want := callback.Payload{EventID: "e1", EventType: "user_created", Status: tc.status, Attempts: 1, Error: cb.EventError, CompletedAt: cb.CompletedAt}
			if ce.SpecVersion != "1.0" || ce.ID != cb.ID || ce.ID != r.header.Get("webhook-id") || ce.Source != "/boomerang/eu-1" ||
				ce.Type != tc.wantType || ce.Subject != "e1" || !ce.Time.Equal(cb.CompletedAt) || ce.DataContentType != "application/json" ||
				ce.Data.EventID != want.EventID || ce.Data.EventType != want.EventType || ce.Data.Status != want.Status ||
				ce.Data.Attempts != want.Attempts || ce.Data.Error != want.Error || !ce.Data.CompletedAt.Equal(want.CompletedAt) {
				t.Errorf("got %s\nwant id %s (the webhook-id), type %s, subject e1, time %s, data %+v", r.body, cb.ID, tc.wantType, cb.CompletedAt, want)
			}
			if tc.status == event.StatusFailed && ce.Data.Error == "" {
				t.Error("data of a failed event: got no error")
			}
			wh, _ := standardwebhooks.NewWebhook(sec)
			if err := wh.Verify(r.body, r.header); err != nil {
				t.Errorf("signature over the CloudEvent: %v", err)
			}
		})
	}
}

// The CloudEvents SDK's own HTTP receiver, as the callback URL, takes a
// cloudevents callback as a valid CloudEvent (it refuses, with a 4xx, one
// that is not) with the right attributes and data.
func TestCloudEventsReceiver(t *testing.T) {
	p, err := cloudevents.NewHTTP()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan cloudevents.Event, 4)
	h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, func(e cloudevents.Event) {
		got <- e
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	st, _ := store.New(redistest.Mini(t).Client, store.Config{Prefix: "test", Logger: quiet})
	finishedAs(t, st, "evt-7", srv.URL+"/ce", event.StatusFailed, callback.Options{Method: event.CallbackPOST, Format: event.CallbackCloudEvents})
	runDispatcher(t, st, callback.Config{})
	cb := waitCallback(t, st, "evt-7")
	if cb.Status != event.CallbackDelivered {
		t.Fatalf("callback: got %s (%q), want delivered", cb.Status, cb.LastError)
	}
	var e cloudevents.Event
	select {
	case e = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the SDK's receiver got no event")
	}
	if err := e.Validate(); err != nil {
		t.Errorf("invalid CloudEvent: %v", err)
	}
	if e.SpecVersion() != "1.0" || e.ID() != cb.ID || e.Source() != callback.DefaultCloudEventsSource || e.Type() != "boomerang.event.failed" ||
		e.Subject() != "evt-7" || !e.Time().Equal(cb.CompletedAt) || e.DataContentType() != "application/json" {
		t.Errorf("got %s\nwant id %s, source %s, type boomerang.event.failed, subject evt-7, time %s", e, cb.ID, callback.DefaultCloudEventsSource, cb.CompletedAt)
	}
	var data callback.Payload
	if err := e.DataAs(&data); err != nil {
		t.Fatal(err)
	}
	if data.EventID != "evt-7" || data.Status != event.StatusFailed || data.Attempts != 1 || data.Error != "no such user" {
		t.Errorf("data: got %+v, want evt-7 failed after 1 attempt with its error", data)
	}
}
