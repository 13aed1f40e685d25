package client_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/boomerang-events/boomerang/client"
)

// delivery is a callback as a receiver got it.
type delivery struct {
	header  http.Header
	body    []byte
	payload *client.CallbackPayload
	err     error
}

// receiver is an httptest server that verifies every callback with v,
// answers 200 or 401, and hands each delivery to the test.
func receiver(t *testing.T, v *client.Verifier) (*httptest.Server, <-chan delivery) {
	t.Helper()
	got := make(chan delivery, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p, err := v.Verify(r)
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
		}
		got <- delivery{header: r.Header.Clone(), body: body, payload: p, err: err}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// A real delivery from the engine verifies; changed, or checked with
// another secret, it does not.
func TestVerifyCallbackFromEngine(t *testing.T) {
	srv := serve(t, testConfig())
	v, err := client.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	recv, got := receiver(t, v)
	c := newClient(t, srv.URL, client.Config{})
	tests := []struct {
		eventType string
		status    client.Status
		error     string
	}{
		{"ok", client.StatusSucceeded, ""},
		{"fail", client.StatusFailed, "no such user"},
	}
	var signed delivery
	for _, tt := range tests {
		t.Run(tt.eventType, func(t *testing.T) {
			res, err := c.Send(t.Context(), client.Event{EventType: tt.eventType,
				Callback: &client.Callback{SuccessURL: recv.URL + "/ok", FailURL: recv.URL + "/fail"}})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			var d delivery
			select {
			case d = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("no callback within 10s")
			}
			if d.err != nil {
				t.Fatalf("Verify: %v", d.err)
			}
			p := d.payload
			if p.EventID != res.EventID || p.EventType != tt.eventType || p.Status != tt.status || p.Attempts != 1 ||
				p.Error != tt.error || p.CompletedAt.IsZero() || p.WebhookID != "cb_"+res.EventID+"_1" {
				t.Errorf("got %+v, want %s %s after 1 attempt, error %q, webhook-id cb_%[2]s_1", p, res.EventID, tt.status, tt.error)
			}
			signed = d
		})
	}
	if signed.body == nil {
		t.Fatal("no delivery to replay")
	}
	replay := func(body []byte) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/fail", bytes.NewReader(body))
		r.Header = signed.header.Clone()
		return r
	}
	checks := []struct {
		name    string
		secrets []string
		body    []byte
		ok      bool
	}{
		{"as delivered", []string{secret}, signed.body, true},
		{"second of two secrets", []string{otherSecret, secret}, signed.body, true},
		{"tampered body", []string{secret}, bytes.Replace(signed.body, []byte(`"failed"`), []byte(`"succeeded"`), 1), false},
		{"wrong secret", []string{otherSecret}, signed.body, false},
	}
	for _, tt := range checks {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "tampered body" && bytes.Equal(tt.body, signed.body) {
				t.Fatalf("the body %s was not changed", signed.body)
			}
			p, err := client.VerifyCallback(replay(tt.body), tt.secrets...)
			if tt.ok && (err != nil || p.Status != client.StatusFailed) {
				t.Errorf("got %+v, %v; want the failed outcome", p, err)
			}
			if !tt.ok && (!errors.Is(err, client.ErrSignature) || p != nil) {
				t.Errorf("got %+v, %v; want ErrSignature", p, err)
			}
		})
	}
}

// signedRequest is a callback signed with sec at ts, as a GET when method
// says so.
func signedRequest(t *testing.T, method, target string, body []byte, sec string, ts time.Time) *http.Request {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(sec)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign("cb_e1_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	r.Header.Set("webhook-id", "cb_e1_1")
	r.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set("webhook-signature", sig)
	return r
}

func TestVerify(t *testing.T) {
	v, err := client.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	post := []byte(`{"event_id":"e1","event_type":"t","status":"failed","attempts":3,"error":"boom","completed_at":"2026-11-25T20:41:43Z"}`)
	tests := []struct {
		name string
		r    func() *http.Request
		want *client.CallbackPayload
		sig  bool // the error is ErrSignature
	}{
		{"POST", func() *http.Request { return signedRequest(t, "POST", "/cb", post, secret, now) },
			&client.CallbackPayload{WebhookID: "cb_e1_1", EventID: "e1", EventType: "t", Status: client.StatusFailed, Attempts: 3, Error: "boom",
				CompletedAt: time.Date(2026, 11, 25, 20, 41, 43, 0, time.UTC)}, false},
		{"GET", func() *http.Request {
			return signedRequest(t, "GET", "/cb?event_id=e1&status=succeeded&attempts=2", nil, secret, now)
		}, &client.CallbackPayload{WebhookID: "cb_e1_1", EventID: "e1", Status: client.StatusSucceeded, Attempts: 2}, false},
		{"GET with bad attempts", func() *http.Request {
			return signedRequest(t, "GET", "/cb?event_id=e1&status=succeeded&attempts=x", nil, secret, now)
		}, nil, false},
		{"GET without event_id", func() *http.Request { return signedRequest(t, "GET", "/cb?status=succeeded", nil, secret, now) }, nil, false},
		{"GET signed over a body", func() *http.Request {
			r := signedRequest(t, "GET", "/cb?event_id=e1&status=succeeded", post, secret, now)
			r.Body = http.NoBody
			return r
		}, nil, true},
		{"stale", func() *http.Request { return signedRequest(t, "POST", "/cb", post, secret, now.Add(-10*time.Minute)) }, nil, true},
		{"wrong secret", func() *http.Request { return signedRequest(t, "POST", "/cb", post, otherSecret, now) }, nil, true},
		{"no signature", func() *http.Request {
			r := signedRequest(t, "POST", "/cb", post, secret, now)
			r.Header.Del("webhook-signature")
			return r
		}, nil, true},
		{"not a callback", func() *http.Request { return signedRequest(t, "POST", "/cb", []byte(`{"a":1}`), secret, now) }, nil, false},
		{"not JSON", func() *http.Request { return signedRequest(t, "POST", "/cb", []byte(`event_id=e1`), secret, now) }, nil, false},
		{"too large", func() *http.Request {
			big := []byte(`{"event_id":"e1","status":"failed","error":"` + strings.Repeat("x", client.MaxCallbackBytes) + `"}`)
			return signedRequest(t, "POST", "/cb", big, secret, now)
		}, nil, false},
		{"PUT", func() *http.Request { return signedRequest(t, "PUT", "/cb", post, secret, now) }, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(tt.r())
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if *p != *tt.want {
					t.Errorf("got  %+v\nwant %+v", *p, *tt.want)
				}
				return
			}
			if err == nil || p != nil {
				t.Fatalf("got %+v, %v; want an error", p, err)
			}
			if errors.Is(err, client.ErrSignature) != tt.sig {
				t.Errorf("got %v; want ErrSignature %v", err, tt.sig)
			}
		})
	}
}

func TestNewVerifier(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		ok      bool
	}{
		{"one", []string{secret}, true},
		{"two", []string{secret, otherSecret}, true},
		{"none", nil, false},
		{"no prefix", []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, false},
		{"empty after the prefix", []string{"whsec_"}, false},
		{"not base64", []string{secret, "whsec_not base64!"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.NewVerifier(tt.secrets...)
			if (err == nil) != tt.ok {
				t.Errorf("got %v, want ok %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "base64!") {
				t.Errorf("the error %q quotes a secret", err)
			}
		})
	}
}

// The engine's callbacks of every method and format verify and decode:
// a GET (the outcome in the query) and a CloudEvent (the outcome its
// data).
func TestVerifyEveryMethodAndFormat(t *testing.T) {
	srv := serve(t, testConfig())
	v, err := client.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	recv, got := receiver(t, v)
	c := newClient(t, srv.URL, client.Config{})
	for _, cb := range []client.Callback{{Method: "GET"}, {Format: "cloudevents"}} {
		t.Run(cb.Method+cb.Format, func(t *testing.T) {
			cb.SuccessURL = recv.URL + "/ok?team=a"
			res, err := c.Send(t.Context(), client.Event{EventType: "ok", Callback: &cb})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			select {
			case d := <-got:
				if d.err != nil {
					t.Fatalf("Verify: %v (%s %s)", d.err, d.header, d.body)
				}
				if p := d.payload; p.EventID != res.EventID || p.Status != client.StatusSucceeded || p.Attempts != 1 {
					t.Errorf("got %+v, want %s succeeded after 1 attempt", p, res.EventID)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no callback within 10s")
			}
		})
	}
}
