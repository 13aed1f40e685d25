package boomerang_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
)

// hook is one request a hookRecorder got.
type hook struct {
	method, path, contentType string
	query                     url.Values
	header                    http.Header
	body                      []byte
}

// hookRecorder is a callback receiver that answers 200 and records every
// request, by the event id it names (in its query, its JSON body or its
// CloudEvent's subject); requests to /refuse are answered 500 and not
// recorded.
type hookRecorder struct {
	*httptest.Server
	mu  sync.Mutex // guards got
	got map[string]hook
}

func newHookRecorder(t *testing.T) *hookRecorder {
	r := &hookRecorder{got: map[string]hook{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.URL.Path == "/refuse" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var named struct {
			EventID string `json:"event_id"`
			Subject string `json:"subject"`
		}
		json.Unmarshal(body, &named)
		id := req.URL.Query().Get("event_id") + named.EventID + named.Subject
		r.mu.Lock()
		r.got[id] = hook{req.Method, req.URL.Path, req.Header.Get("Content-Type"), req.URL.Query(), req.Header.Clone(), body}
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

// wait returns the request of event id, or fails t after 10s.
func (r *hookRecorder) wait(t *testing.T, id string) hook {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		h, ok := r.got[id]
		r.mu.Unlock()
		if ok {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("no callback of event %s after 10s", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Through the HTTP API of a running engine: an event's callback.method
// GET, its route's WithCallback and the configuration's callback.format
// decide how its callback is sent, the most specific first, on the
// workers' path and on the settled-at-ingest path alike.
func TestCallbackMethodAndFormat(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		sec := "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
		cfg := testConfig(b)
		cfg.Callback.Format = event.CallbackCloudEvents
		cfg.Callback.SigningSecrets = []string{sec}
		eng := newEngine(t, cfg)
		// legacy: settled at ingest, its receivers want GET.
		if err := eng.Accept("legacy", boomerang.WithCallback(callback.Options{Method: event.CallbackGET})); err != nil {
			t.Fatal(err)
		}
		// modern: run by the workers, failing for ids that start with "f".
		err := boomerang.Handle(eng, "modern", func(_ context.Context, msg event.EventMessage[json.RawMessage]) error {
			if m := msg.(*callback.CallbackEventMessage[json.RawMessage]); strings.HasPrefix(m.ID, "f") {
				return boomerang.Permanent(errors.New("no such user"))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		start(t, eng)
		api := httptest.NewServer(eng.Handler())
		t.Cleanup(api.Close)
		rcv := newHookRecorder(t)

		send := func(id, typ, options string) {
			t.Helper()
			body := `{"id":"` + id + `","event_type":"` + typ + `","payload":{"user_id":"12345"},"callback":{"success_url":"` +
				rcv.URL + `/ok?token=s3&x=1","fail_url":"` + rcv.URL + `/fail"` + options + `}}`
			resp, err := http.Post(api.URL+"/event", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST /event %s: got %d, want 202", id, resp.StatusCode)
			}
		}
		send("get-1", "modern", `,"method":"GET"`)   // the event's GET, over the configuration's cloudevents
		send("fget-2", "modern", `,"method":"GET"`)  // the same, for a failed event
		send("legacy-3", "legacy", ``)               // the route's GET
		send("post-4", "legacy", `,"method":"POST"`) // the event's POST over the route's GET: a CloudEvent (configuration)
		send("json-5", "modern", `,"format":"json"`) // the event's json over the configuration's cloudevents
		send("ce-6", "modern", ``)                   // the configuration's cloudevents

		wh, _ := standardwebhooks.NewWebhook(sec)
		for _, tc := range []struct {
			id, path, status string
		}{{"get-1", "/ok", "succeeded"}, {"fget-2", "/fail", "failed"}, {"legacy-3", "/ok", "succeeded"}} {
			h := rcv.wait(t, tc.id)
			q := h.query
			if h.method != http.MethodGet || h.path != tc.path || len(h.body) != 0 || h.contentType != "" {
				t.Errorf("%s: got %s %s with %d bytes of %q, want GET %s without a body", tc.id, h.method, h.path, len(h.body), h.contentType, tc.path)
			}
			if q.Get("event_id") != tc.id || q.Get("status") != tc.status || q.Get("attempts") != "1" {
				t.Errorf("%s: got query %v, want event_id %s, status %s, attempts 1", tc.id, q, tc.id, tc.status)
			}
			if tc.path == "/ok" && (q.Get("token") != "s3" || q.Get("x") != "1") {
				t.Errorf("%s: got query %v, want the URL's own token and x kept", tc.id, q)
			}
			if err := wh.Verify(nil, h.header); err != nil {
				t.Errorf("%s: signature over the empty body: %v", tc.id, err)
			}
		}
		for _, tc := range []struct {
			id, contentType string
		}{{"post-4", callback.CloudEventsContentType}, {"json-5", "application/json"}, {"ce-6", callback.CloudEventsContentType}} {
			h := rcv.wait(t, tc.id)
			if h.method != http.MethodPost || h.contentType != tc.contentType {
				t.Errorf("%s: got %s %q, want POST %q", tc.id, h.method, h.contentType, tc.contentType)
			}
			if err := wh.Verify(h.body, h.header); err != nil {
				t.Errorf("%s: signature over the body: %v", tc.id, err)
			}
			if tc.contentType == callback.CloudEventsContentType {
				var ce struct {
					ID, Type, Subject string
				}
				if json.Unmarshal(h.body, &ce); ce.ID != h.header.Get("webhook-id") || ce.Type != "boomerang.event.succeeded" || ce.Subject != tc.id {
					t.Errorf("%s: got CloudEvent %s, want id the webhook-id, type boomerang.event.succeeded, subject %s", tc.id, h.body, tc.id)
				}
			}
		}
	})
}

// A route that asks for GET with cloudevents is refused when registered,
// naming the field; so is a configuration that does.
func TestCallbackOptionsRefused(t *testing.T) {
	eng := newEngine(t, boomerang.Config{Logger: quiet})
	err := eng.Accept("x", boomerang.WithCallback(callback.Options{Method: event.CallbackGET, Format: event.CallbackCloudEvents}))
	if err == nil || !strings.Contains(err.Error(), "callback.format") {
		t.Errorf("route: got %v, want an error naming callback.format", err)
	}
	err = eng.Accept("y", boomerang.WithCallback(callback.Options{Method: "get"}))
	if err == nil || !strings.Contains(err.Error(), "callback.method") {
		t.Errorf("route: got %v, want an error naming callback.method", err)
	}
	for _, tc := range []struct {
		cb   boomerang.CallbackConfig
		want string
	}{
		{boomerang.CallbackConfig{Method: event.CallbackGET, Format: event.CallbackCloudEvents}, "callback.format: cloudevents needs method POST"},
		{boomerang.CallbackConfig{Method: "PUT"}, `callback.method: must be GET or POST, got "PUT"`},
		{boomerang.CallbackConfig{CloudEventsSource: "a b"}, "callback.cloudevents_source: must be"},
	} {
		if err := (boomerang.Config{Callback: tc.cb}).Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.cb, err, tc.want)
		}
	}
}
