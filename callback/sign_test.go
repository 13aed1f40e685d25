package callback_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func secret(b byte) string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(b), 32)))
}

// Every secret signs each delivery, so a receiver holding either the old or
// the new secret verifies it; without secrets no signature is sent.
func TestDispatcherSigns(t *testing.T) {
	oldSecret, newSecret, otherSecret := secret('o'), secret('n'), secret('x')
	tests := []struct {
		name     string
		secrets  []string
		verifier string
		wantOK   bool
		wantSig  bool
	}{
		{"old secret verifies", []string{oldSecret, newSecret}, oldSecret, true, true},
		{"new secret verifies", []string{oldSecret, newSecret}, newSecret, true, true},
		{"another secret does not", []string{oldSecret}, otherSecret, false, true},
		{"no secret, no signature", nil, oldSecret, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := redistest.Mini(t)
			st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix, Logger: quiet})
			got := make(chan http.Header, 1)
			bodies := make(chan []byte, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got <- r.Header.Clone()
				bodies <- body
			}))
			defer srv.Close()
			finished(t, st, "e1", srv.URL)
			d, err := callback.NewDispatcher(st, callback.Config{AllowPrivateNetworks: true, SigningSecrets: tc.secrets, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { d.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			var h http.Header
			select {
			case h = <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("no delivery")
			}
			body := <-bodies
			if (h.Get("webhook-signature") != "") != tc.wantSig || (h.Get("webhook-timestamp") != "") != tc.wantSig {
				t.Fatalf("signature headers: got %q / %q, want present=%v", h.Get("webhook-signature"), h.Get("webhook-timestamp"), tc.wantSig)
			}
			if h.Get("webhook-id") == "" {
				t.Error("webhook-id missing")
			}
			wh, _ := standardwebhooks.NewWebhook(tc.verifier)
			if err := wh.Verify(body, h); (err == nil) != tc.wantOK {
				t.Errorf("verify with the receiver's secret: got %v, want ok=%v", err, tc.wantOK)
			}
			waitCallback(t, st, "e1")
			snap, _ := st.Get(context.Background(), "e1")
			if snap.Callback.Status != event.CallbackDelivered {
				t.Errorf("got %s, want delivered", snap.Callback.Status)
			}
		})
	}
}

func TestDispatcherRefusesBadSecrets(t *testing.T) {
	b := redistest.Mini(t)
	st, _ := store.New(b.Client, store.Config{Prefix: b.Prefix})
	for _, sec := range []string{"plain", "whsec_short", "whsec_!!!not-base64!!!!!!!!!"} {
		_, err := callback.NewDispatcher(st, callback.Config{SigningSecrets: []string{sec}})
		if err == nil {
			t.Errorf("secret %q: got no error", sec)
			continue
		}
		if strings.Contains(err.Error(), sec) {
			t.Errorf("error %q repeats the secret", err)
		}
	}
}
