package boomerang_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/redistest"
)

// The keys of the contract test's API.
const (
	userKey  = "user-key-0123456789"
	adminKey = "admin-key-0123456789"
)

// TestOpenAPIContract drives every operation of handler/openapi.json, with
// every status it lists, against a running engine (and one whose Redis is
// down, for the 503s), and validates each request and each answer with
// the description (kin-openapi, OpenAPI 3.1 with JSON Schema 2020-12). It
// fails when the description lists an operation and status the test never
// produced, so the description cannot drift from the code.
func TestOpenAPIContract(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		recv := newHookRecorder(t)

		cfg := testConfig(b)
		cfg.Auth = boomerang.AuthConfig{APIKeys: []string{userKey}, AdminKeys: []string{adminKey}}
		cfg.MaxBodyBytes = boomerang.MinMaxBodyBytes
		cfg.MaxBatchEvents = 5
		eng := newEngine(t, cfg)
		if err := eng.Accept("ok"); err != nil {
			t.Fatal(err)
		}
		err := boomerang.Handle(eng, "fails", func(context.Context, event.EventMessage[json.RawMessage]) error {
			return boomerang.Permanent(errors.New("no such user"))
		})
		if err != nil {
			t.Fatal(err)
		}
		start(t, eng)
		up := httptest.NewServer(eng.Handler())
		t.Cleanup(up.Close)

		// An engine whose Redis is gone: every request that needs it is a 503.
		db := redistest.Mini(t)
		dcfg := testConfig(db)
		dcfg.Auth = cfg.Auth
		dcfg.IngestTimeout, dcfg.RequestTimeout = 100*time.Millisecond, 100*time.Millisecond
		deng := newEngine(t, dcfg)
		db.Mini.Close()
		down := httptest.NewServer(deng.Handler())
		t.Cleanup(down.Close)

		c := newContract(t, up.URL, down.URL)
		user, admin := bearer(userKey), bearer(adminKey)
		okCallback := `"callback":{"success_url":"` + recv.URL + `/ok","fail_url":"` + recv.URL + `/ok"}`
		failCallback := `"callback":{"success_url":"` + recv.URL + `/refuse","fail_url":"` + recv.URL + `/refuse"}`

		// POST /event
		okEvent := `{"id":"c-ok","event_type":"ok","timestamp":"2024-08-20T05:21:19Z","payload":{"user_id":"12345"},` +
			`"metadata":{"source":"user_service","gone":null},` + okCallback + `}`
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: okEvent, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"id":"c-fail","event_type":"fails",` + okCallback + `}`, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"id":"c-cbfail","event_type":"ok",` + failCallback + `}`, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: withKey(user, "Idempotency-Key", "c-poll"), body: `{"event_type":"ok"}`, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"id":"c-gzip","event_type":"ok"}`, gzip: true, want: 202})
		c.waitStatus(t, up.URL, "c-ok", func(r record) bool { return r.Callback.Status == "delivered" })
		c.waitStatus(t, up.URL, "c-poll", func(r record) bool { return r.Status == "succeeded" })
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: okEvent, want: 200})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"id":"c-ok","event_type":"ok"}`, want: 409})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"payload":{}}`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"event_type":"ok","callback":{"success_url":"http://169.254.169.254/"}}`, want: 400})
		// How the callback is sent: GET, or a CloudEvent; a bad value, and
		// GET with cloudevents, are 400s the description refuses too.
		getCallback := `"callback":{"success_url":"` + recv.URL + `/ok","method":"GET","format":null}`
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"id":"c-get","event_type":"ok",` + getCallback + `}`, want: 202})
		ceCallback := `"callback":{"success_url":"` + recv.URL + `/ok","method":"POST","format":"cloudevents"}`
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"id":"c-ce","event_type":"ok",` + ceCallback + `}`, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"event_type":"ok","callback":{"success_url":"` + recv.URL + `/ok","method":"PUT"}}`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"event_type":"ok","callback":{"success_url":"` + recv.URL + `/ok","format":"xml"}}`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user,
			body: `{"event_type":"ok","callback":{"success_url":"` + recv.URL + `/ok","method":"GET","format":"cloudevents"}}`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user,
			body: `{"event_type":"ok","payload":"` + strings.Repeat("x", 2*boomerang.MinMaxBodyBytes) + `"}`, want: 413})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: withKey(user, "Content-Type", "text/plain"), body: `{"event_type":"ok"}`, want: 415, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: withKey(user, "Content-Encoding", "br"), body: `{"event_type":"ok"}`, want: 415, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", body: `{"event_type":"ok"}`, want: 401, invalid: true})
		c.do(t, call{method: "POST", url: down.URL + "/event", header: user, body: `{"id":"c-down","event_type":"ok"}`, want: 503})

		// POST /event with CloudEvents: structured mode, then binary mode.
		structured := withKey(user, "Content-Type", "application/cloudevents+json")
		ceEvent := `{"specversion":"1.0","id":"c-cloud","source":"/users","type":"ok","subject":"user/42","time":"2024-08-20T05:21:19Z",` +
			`"datacontenttype":"application/json","data":{"user_id":"42"},"tenant":"acme","attempt":2,"replay":false,"trace":null,` +
			`"callbacksuccessurl":"` + recv.URL + `/ok","callbackfailurl":"` + recv.URL + `/ok"}`
		c.do(t, call{method: "POST", url: up.URL + "/event", header: structured, body: ceEvent, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: structured, body: ceEvent, want: 200})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: structured, body: strings.Replace(ceEvent, `"42"}`, `"43"}`, 1), want: 409})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: structured,
			body: `{"specversion":"1.0","id":"c-cloud-bad","source":"/users","type":"com.example/user created"}`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: structured,
			body: `{"specversion":"1.0","id":"c-cloud-bad","source":"/users","type":"ok","data_base64":"aGk="}`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: structured,
			body: `{"specversion":"1.0","id":"c-cloud-bad","type":"ok"}`, want: 400, invalid: true})
		binary := func(h map[string]string) map[string]string {
			for name, v := range map[string]string{"ce-specversion": "1.0", "ce-source": "/users", "ce-type": "ok", "ce-subject": "user/42",
				"ce-time": "2024-08-20T05:21:19Z", "ce-tenant": "acme", "ce-callbacksuccessurl": recv.URL + "/ok"} {
				if _, ok := h[name]; !ok {
					h = withKey(h, name, v)
				}
			}
			return h
		}
		c.do(t, call{method: "POST", url: up.URL + "/event", header: binary(withKey(user, "ce-id", "c-cloud-bin")), body: `{"user_id":"42"}`, binaryData: true, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: binary(withKey(user, "ce-id", "c-cloud-bin")), body: `{"user_id":"42"}`, binaryData: true, want: 200})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: binary(withKey(withKey(user, "ce-id", "c-cloud-bad"), "ce-specversion", "0.3")),
			body: `{}`, binaryData: true, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: binary(withKey(withKey(user, "ce-id", "c-cloud-bad"), "Content-Type", "text/plain")),
			body: `hello`, want: 415, invalid: true})
		// CloudEvents batch mode, on POST /event and POST /events alike:
		// one result per item.
		ceBatch := withKey(user, "Content-Type", "application/cloudevents-batch+json")
		c.do(t, call{method: "POST", url: up.URL + "/event", header: ceBatch, body: `[` + ceEvent + `,` + strings.Replace(ceEvent, "c-cloud", "c-cloud-b1", 1) + `]`, want: 200})
		c.do(t, call{method: "POST", url: up.URL + "/events", header: ceBatch, body: `[` + strings.Replace(ceEvent, "c-cloud", "c-cloud-b2", 1) + `]`, want: 200})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: ceBatch, body: `[]`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/events", header: structured, body: ceEvent, want: 415, invalid: true})
		c.waitStatus(t, up.URL, "c-cloud", func(r record) bool { return r.Callback.Status == "delivered" })

		// POST /events: one result per item; the request as a whole. A
		// batch holding an invalid item does not match the description
		// (its items are Events), yet is answered 200: the item's result
		// is the 400.
		c.do(t, call{method: "POST", url: up.URL + "/events", header: user, invalid: true,
			body: `[{"id":"c-b1","event_type":"ok"},` + okEvent + `,{"id":"c-ok","event_type":"ok"},{"event_type":"no such"},` +
				`{"event_type":"ok","payload":"` + strings.Repeat("x", 2*boomerang.MinMaxBodyBytes) + `"}]`, want: 200})
		c.do(t, call{method: "POST", url: up.URL + "/events", header: user, body: `{"event_type":"ok"}`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/events", header: user, body: `[]`, want: 400, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/events", header: user, body: `[` + strings.Repeat(`{"event_type":"ok"},`, 5) + `{"event_type":"ok"}]`, want: 413})
		c.do(t, call{method: "POST", url: up.URL + "/events", header: withKey(user, "Content-Type", "text/plain"), body: `[{"event_type":"ok"}]`, want: 415, invalid: true})
		c.do(t, call{method: "POST", url: up.URL + "/events", body: `[{"event_type":"ok"}]`, want: 401, invalid: true})
		c.do(t, call{method: "POST", url: down.URL + "/events", header: user, body: `[{"id":"c-down","event_type":"ok"},{"event_type":""}]`, want: 503, invalid: true})

		// Producer features: a delayed event, canceled; an ordered one;
		// waiting for the outcome.
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"id":"c-later","event_type":"ok","delay":"1h","ordering_key":"k1"}`, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: user, body: `{"id":"c-next","event_type":"ok","ordering_key":"k1"}`, want: 202})
		c.do(t, call{method: "GET", url: up.URL + "/callback?event_id=c-next", header: user, want: 200})
		c.do(t, call{method: "DELETE", url: up.URL + "/events/c-later", header: user, want: 200})
		c.do(t, call{method: "DELETE", url: up.URL + "/events/c-later", header: user, want: 409})
		c.do(t, call{method: "DELETE", url: up.URL + "/events/c-none", header: user, want: 404})
		c.do(t, call{method: "DELETE", url: up.URL + "/events/c-later", want: 401, invalid: true})
		c.do(t, call{method: "DELETE", url: down.URL + "/events/c-later", header: user, want: 503})
		c.do(t, call{method: "GET", url: up.URL + "/callback?event_id=c-next&wait=5", header: user, want: 200})
		c.do(t, call{method: "POST", url: up.URL + "/event", header: withKey(user, "Prefer", "wait=5"), body: `{"id":"c-wait","event_type":"fails"}`, want: 200})

		// GET /callback, one record and the listing; POST /callback
		c.do(t, call{method: "GET", url: up.URL + "/callback?event_id=c-ok", header: user, want: 200})
		page := c.do(t, call{method: "GET", url: up.URL + "/callback?limit=1&status=succeeded", header: user, want: 200})
		var list struct {
			Events     []record `json:"events"`
			NextCursor string   `json:"next_cursor"`
		}
		if err := json.Unmarshal(page, &list); err != nil || len(list.Events) != 1 || list.NextCursor == "" {
			t.Fatalf("GET /callback?limit=1: got %s (%v), want one record and a next_cursor", page, err)
		}
		c.do(t, call{method: "GET", url: up.URL + "/callback?limit=10&cursor=" + list.NextCursor, header: user, want: 200})
		c.do(t, call{method: "GET", url: up.URL + "/callback?status=done", header: user, want: 400, invalid: true})
		// The listing by event type keeps only that type's records.
		fails := c.do(t, call{method: "GET", url: up.URL + "/callback?event_type=fails", header: user, want: 200})
		if !bytes.Contains(fails, []byte(`"event_id":"c-fail"`)) || bytes.Contains(fails, []byte(`"event_type":"ok"`)) {
			t.Errorf("GET /callback?event_type=fails: got %s, want c-fail and no event of type ok", fails)
		}
		c.do(t, call{method: "GET", url: up.URL + "/callback?event_type=no%20such", header: user, want: 400, invalid: true})
		// The listing by time range; a bad bound is a 400 naming it.
		c.do(t, call{method: "GET", url: up.URL + "/callback?since=2026-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B01:00", header: user, want: 200})
		c.do(t, call{method: "GET", url: up.URL + "/callback?since=yesterday", header: user, want: 400, invalid: true})
		c.do(t, call{method: "GET", url: up.URL + "/callback?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", header: user, want: 400})
		c.do(t, call{method: "GET", url: up.URL + "/callback?limit=0", header: user, want: 400, invalid: true})
		c.do(t, call{method: "GET", url: up.URL + "/callback?cursor=nonsense", header: user, want: 400})
		c.do(t, call{method: "GET", url: up.URL + "/callback?event_id=c-none", header: user, want: 404})
		c.do(t, call{method: "GET", url: up.URL + "/callback?event_id=c-ok", want: 401, invalid: true})
		c.do(t, call{method: "GET", url: down.URL + "/callback?event_id=c-ok", header: user, want: 503})
		got := recv.wait(t, "c-ok")
		c.do(t, call{method: "POST", url: up.URL + "/callback", header: map[string]string{"webhook-id": got.header.Get("webhook-id")}, body: string(got.body), want: 200})

		// GET /events/{id}
		if ev := c.do(t, call{method: "GET", url: up.URL + "/events/c-ok", header: user, want: 200}); !bytes.Contains(ev, []byte(`"payload":{"user_id":"12345"}`)) {
			t.Errorf("GET /events/c-ok: got %s, want the payload", ev)
		}
		c.do(t, call{method: "GET", url: up.URL + "/events/c-none", header: user, want: 404})
		c.do(t, call{method: "GET", url: up.URL + "/events/c-ok", header: bearer("wrong-key-0123456789"), want: 401, invalid: true})
		c.do(t, call{method: "GET", url: down.URL + "/events/c-ok", header: user, want: 503})

		// GET /dead-letters: an event that failed and a callback that did.
		c.waitStatus(t, up.URL, "c-fail", func(r record) bool { return r.Status == "failed" && r.Callback.Status == "delivered" })
		c.waitStatus(t, up.URL, "c-cbfail", func(r record) bool { return r.Callback.Status == "failed" })
		dead := c.do(t, call{method: "GET", url: up.URL + "/dead-letters?limit=10", header: user, want: 200})
		for _, kind := range []string{`"kind":"event"`, `"kind":"callback"`} {
			if !bytes.Contains(dead, []byte(kind)) {
				t.Errorf("GET /dead-letters: got %s, want a dead letter with %s", dead, kind)
			}
		}
		c.do(t, call{method: "GET", url: up.URL + "/dead-letters?event_type=fails", header: user, want: 200})
		for _, kind := range []string{"event", "callback"} {
			other := map[string]string{"event": "callback", "callback": "event"}[kind]
			got := c.do(t, call{method: "GET", url: up.URL + "/dead-letters?kind=" + kind, header: user, want: 200})
			if !bytes.Contains(got, []byte(`"kind":"`+kind+`"`)) || bytes.Contains(got, []byte(`"kind":"`+other+`"`)) {
				t.Errorf("GET /dead-letters?kind=%s: got %s, want only dead letters of kind %s", kind, got, kind)
			}
		}
		c.do(t, call{method: "GET", url: up.URL + "/dead-letters?kind=both", header: user, want: 400, invalid: true})
		c.do(t, call{method: "GET", url: up.URL + "/dead-letters?event_type=no%20such", header: user, want: 400, invalid: true})
		c.do(t, call{method: "GET", url: up.URL + "/dead-letters?limit=5000", header: user, want: 400, invalid: true})
		c.do(t, call{method: "GET", url: up.URL + "/dead-letters", want: 401, invalid: true})
		c.do(t, call{method: "GET", url: down.URL + "/dead-letters", header: user, want: 503})

		// GET /destinations
		dests := c.do(t, call{method: "GET", url: up.URL + "/destinations", header: user, want: 200})
		if !bytes.Contains(dests, []byte(`"destination":"http://127.0.0.1:`)) {
			t.Errorf("GET /destinations: got %s, want the receiver's destination", dests)
		}
		c.do(t, call{method: "GET", url: up.URL + "/destinations", want: 401, invalid: true})
		c.do(t, call{method: "GET", url: down.URL + "/destinations", header: user, want: 503})

		// GET /metrics
		metrics := c.do(t, call{method: "GET", url: up.URL + "/metrics", header: user, want: 200})
		if !bytes.Contains(metrics, []byte("boomerang_events_accepted_total")) {
			t.Errorf("GET /metrics: got no boomerang_events_accepted_total in %.200s", metrics)
		}
		c.do(t, call{method: "GET", url: up.URL + "/metrics", want: 401, invalid: true})

		// POST /events/{id}/retry
		c.do(t, call{method: "POST", url: up.URL + "/events/c-fail/retry", header: admin, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/events/c-ok/retry", header: admin, want: 409})
		c.do(t, call{method: "POST", url: up.URL + "/events/c-none/retry", header: admin, want: 404})
		c.do(t, call{method: "POST", url: up.URL + "/events/c-fail/retry", header: user, want: 401, invalid: true})
		c.do(t, call{method: "POST", url: down.URL + "/events/c-fail/retry", header: admin, want: 503})

		// POST /callback/{event_id}/redeliver
		c.do(t, call{method: "POST", url: up.URL + "/callback/c-ok/redeliver", header: admin, want: 202})
		c.do(t, call{method: "POST", url: up.URL + "/callback/c-poll/redeliver", header: admin, want: 409})
		c.do(t, call{method: "POST", url: up.URL + "/callback/c-none/redeliver", header: admin, want: 404})
		c.do(t, call{method: "POST", url: up.URL + "/callback/c-ok/redeliver", header: user, want: 401, invalid: true})
		c.do(t, call{method: "POST", url: down.URL + "/callback/c-ok/redeliver", header: admin, want: 503})

		// POST /dead-letters/retry and /redeliver: c-fail is queued again
		// above; c-cbfail's callback failed.
		for _, op := range []string{"retry", "redeliver"} {
			url := up.URL + "/dead-letters/" + op
			c.do(t, call{method: "POST", url: url, header: admin, body: `{"ids":["c-fail","c-none"]}`, want: 200})
			c.do(t, call{method: "POST", url: url, header: admin, body: `{"filter":{"event_type":"ok","kind":"callback"}}`, want: 200})
			c.do(t, call{method: "POST", url: url, header: admin, body: `{"filter":{}}`, want: 200})
			c.do(t, call{method: "POST", url: url, header: admin, body: `{"ids":[]}`, want: 400, invalid: true})
			c.do(t, call{method: "POST", url: url, header: admin, body: `{"filter":{},"cursor":"nonsense"}`, want: 400})
			c.do(t, call{method: "POST", url: url, header: user, body: `{"ids":["c-fail"]}`, want: 401, invalid: true})
			c.do(t, call{method: "POST", url: down.URL + "/dead-letters/" + op, header: admin, body: `{"ids":["c-fail"]}`, want: 503})
		}

		// Health, and the description itself.
		for _, method := range []string{"GET", "HEAD"} {
			c.do(t, call{method: method, url: up.URL + "/healthz", want: 200})
			c.do(t, call{method: method, url: up.URL + "/readyz", want: 200})
			c.do(t, call{method: method, url: down.URL + "/readyz", want: 503})
		}
		served := c.do(t, call{method: "GET", url: up.URL + "/openapi.json", want: 200})
		if !bytes.Equal(served, handler.OpenAPI()) {
			t.Errorf("GET /openapi.json: got %d bytes, want handler.OpenAPI()", len(served))
		}

		c.checkCovered(t)
	})
}

// contract sends requests and validates them, and their answers, with the
// OpenAPI description, recording which operation and status each produced.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	opts    *openapi3filter.Options
	covered map[string]bool // "METHOD /path/{template} STATUS"
}

// newContract loads and validates handler.OpenAPI(), with servers at the
// given base URLs.
func newContract(t *testing.T, servers ...string) *contract {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(handler.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json: got version %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid description: %v", err)
	}
	doc.Servers = nil
	for _, u := range servers {
		doc.Servers = append(doc.Servers, &openapi3.Server{URL: u})
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, AuthenticationFunc: authenticate}
	return &contract{doc: doc, router: router, opts: opts, covered: map[string]bool{}}
}

// authenticate checks the bearer key a security scheme of the description
// asks for: one of userKey's for apiKey, adminKey's for adminKey.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	want := userKey
	if in.SecuritySchemeName == "adminKey" {
		want = adminKey
	}
	if in.RequestValidationInput.Request.Header.Get("Authorization") != "Bearer "+want {
		return fmt.Errorf("no %s bearer key", in.SecuritySchemeName)
	}
	return nil
}

// call is one request of the contract test and the status it must get.
type call struct {
	method, url string
	header      map[string]string
	body        string
	want        int
	// invalid marks a request outside the description (a missing key, a
	// parameter out of range, a field missing): the description must
	// refuse it, as the server does.
	invalid bool
	// gzip sends the body compressed, with Content-Encoding: gzip; it is
	// validated as the server reads it, decompressed.
	gzip bool
	// binaryData marks a CloudEvent in binary mode: its body is the
	// event's data, any JSON, which the description cannot tell from
	// Boomerang's event under the same Content-Type (a body's schema
	// cannot depend on a header), so the body alone is not validated; its
	// headers are.
	binaryData bool
}

// do sends c, checks its status, validates request and answer, and
// returns the answer's body.
func (k *contract) do(t *testing.T, c call) []byte {
	t.Helper()
	newReq := func(compress bool) *http.Request {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		if compress {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write([]byte(c.body))
			zw.Close()
			body = &buf
		}
		req, err := http.NewRequest(c.method, c.url, body)
		if err != nil {
			t.Fatal(err)
		}
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for name, v := range c.header {
			req.Header.Set(name, v)
		}
		if c.gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		return req
	}
	req := newReq(false)
	name := c.method + " " + req.URL.RequestURI()
	route, params, err := k.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s: no operation of openapi.json: %v", name, err)
	}
	opts := k.opts
	if c.binaryData {
		o := *k.opts
		o.ExcludeRequestBody = true
		opts = &o
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	switch {
	case c.invalid && reqErr == nil:
		t.Errorf("%s: the description accepts a request the server refuses with %d", name, c.want)
	case !c.invalid && reqErr != nil:
		t.Errorf("%s: request does not match openapi.json: %v", name, reqErr)
	}

	resp, err := http.DefaultClient.Do(newReq(c.gzip))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: read answer: %v", name, err)
	}
	if resp.StatusCode != c.want {
		t.Fatalf("%s: got %d %s, want %d", name, resp.StatusCode, body, c.want)
	}
	k.covered[route.Method+" "+route.Path+" "+strconv.Itoa(resp.StatusCode)] = true
	if route.Operation.Responses.Status(resp.StatusCode) == nil {
		t.Errorf("%s: status %d is not in openapi.json", name, resp.StatusCode)
	}
	if c.method == http.MethodHead && len(body) != 0 {
		t.Errorf("%s: got a body %q, want none", name, body)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: k.opts}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("%s: answer %d %s does not match openapi.json: %v", name, resp.StatusCode, body, err)
	}
	return body
}

// record is what the contract test reads of a record.
type record struct {
	Status   string `json:"status"`
	Callback struct {
		Status string `json:"status"`
	} `json:"callback"`
}

// waitStatus polls GET /callback?event_id=id on base (validated like every
// request) until done accepts the record, or fails t after 10s.
func (k *contract) waitStatus(t *testing.T, base, id string, done func(record) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := k.do(t, call{method: "GET", url: base + "/callback?event_id=" + id, header: bearer(userKey), want: 200})
		var r record
		if err := json.Unmarshal(b, &r); err == nil && done(r) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s: got %s after 10s", id, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkCovered fails t for each operation and status of the description
// that no request produced.
func (k *contract) checkCovered(t *testing.T) {
	t.Helper()
	var missing []string
	for path, item := range k.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if key := method + " " + path + " " + status; !k.covered[key] {
					missing = append(missing, key)
				}
			}
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("openapi.json lists %s, which the contract test never produced", m)
	}
}

func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

// withKey returns h with name set to v.
func withKey(h map[string]string, name, v string) map[string]string {
	out := map[string]string{name: v}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// TestOpenAPIListsEveryRoute fails for a route of the API that
// handler/openapi.json does not describe, and for an operation it
// describes that the API does not route: a new endpoint needs its
// description (and TestOpenAPIContract its statuses).
func TestOpenAPIListsEveryRoute(t *testing.T) {
	eng := newEngine(t, testConfig(redistest.Mini(t)))
	g, ok := eng.Handler().(*gin.Engine)
	if !ok {
		t.Fatalf("Handler: got %T, want *gin.Engine", eng.Handler())
	}
	doc, err := openapi3.NewLoader().LoadFromData(handler.OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	described := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described[method+" "+path] = true
		}
	}
	param := regexp.MustCompile(`:([^/]+)`)
	routed := map[string]bool{}
	for _, r := range g.Routes() {
		if r.Path == "/ui" || strings.HasPrefix(r.Path, "/ui/") {
			// The web console's static files (HTML, JS, CSS) are not API:
			// no client calls them but a browser, and TestConsoleInABrowser
			// drives them.
			continue
		}
		key := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		routed[key] = true
		if !described[key] {
			t.Errorf("the API routes %s, which openapi.json does not describe", key)
		}
	}
	for key := range described {
		if !routed[key] {
			t.Errorf("openapi.json describes %s, which the API does not route", key)
		}
	}
}
