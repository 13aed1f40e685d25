package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/internal/loopback"
)

func TestParseFlagsRefusesNonLoopback(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for no error
	}{
		{"default", nil, ""},
		{"localhost", []string{"--url", "http://localhost:8090"}, ""},
		{"LOCALHOST", []string{"--url", "http://LOCALHOST:8090"}, ""},
		{"127.0.0.1", []string{"--url", "http://127.0.0.1:8090/"}, ""},
		{"127.1.2.3", []string{"--url", "http://127.1.2.3"}, ""},
		{"::1", []string{"--url", "http://[::1]:8090"}, ""},
		{"public name", []string{"--url", "http://example.com"}, "not a loopback"},
		{"public ip", []string{"--url", "http://93.184.216.34:80"}, "not a loopback"},
		{"private ip", []string{"--url", "http://10.0.0.1:8080"}, "not a loopback"},
		{"unspecified", []string{"--url", "http://0.0.0.0:8080"}, "not a loopback"},
		{"localhost lookalike", []string{"--url", "http://localhost.example.com"}, "not a loopback"},
		{"userinfo trick", []string{"--url", "http://127.0.0.1@example.com"}, "not a loopback"},
		{"not http", []string{"--url", "ftp://127.0.0.1"}, "http://"},
		{"no host", []string{"--url", "/event"}, "http://"},
		{"receiver elsewhere", []string{"--callbacks", "--receiver-addr", "0.0.0.0:9000"}, "not a loopback"},
		{"receiver on loopback", []string{"--callbacks", "--receiver-addr", "127.0.0.1:0"}, ""},
		{"bad mode", []string{"--mode", "open"}, "--mode"},
		{"rate without rate", []string{"--mode", "rate"}, "--rate"},
		{"zero conns", []string{"--conns", "0"}, "--conns"},
		{"zero duration", []string{"--duration", "0s"}, "--duration"},
		{"extra argument", []string{"http://127.0.0.1"}, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseFlags(tt.args, &strings.Builder{})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	cfg, jsonOut, err := parseFlags(nil, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		URL: "http://127.0.0.1:8080", Mode: modeClosed, Conns: 128, MaxInFlight: 4096,
		Duration: 10 * time.Second, Warmup: time.Second, Timeout: 10 * time.Second,
		PayloadBytes: 200, EventType: "bench_event", ReceiverAddr: "127.0.0.1:0", Drain: 30 * time.Second,
	}
	if cfg != want || jsonOut {
		t.Errorf("got %+v json=%v, want %+v json=false", cfg, jsonOut, want)
	}
}

// TestRunRefusesNonLoopback checks that run itself (not only the flag
// parsing) refuses a non-loopback URL before sending anything.
func TestRunRefusesNonLoopback(t *testing.T) {
	cfg := testConfig("http://example.com:80", modeRate)
	res, err := run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "not a loopback") {
		t.Fatalf("got error %v, want a loopback refusal", err)
	}
	if res.Sent != 0 {
		t.Errorf("got %d sent, want 0", res.Sent)
	}
}

// TestDialerRefusesNonLoopback checks the second guard: a redirect or a
// name that resolves elsewhere still cannot make loadgen connect off-host.
func TestDialerRefusesNonLoopback(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr bool
	}{
		{"127.0.0.1:80", false},
		{"[::1]:80", false},
		{"10.1.2.3:80", true},
		{"[2001:db8::1]:443", true},
		{"example.com:80", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if err := loopback.Only("tcp", tt.addr, nil); (err != nil) != tt.wantErr {
				t.Errorf("got error %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// TestRedirectsAreNotFollowed: a 307 elsewhere is counted as a non-2xx
// answer, never followed.
func TestRedirectsAreNotFollowed(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "http://example.com/event", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig(srv.URL, modeRate)
	cfg.Rate, cfg.Duration = 50, 200*time.Millisecond
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Non2xx["307"] != res.Sent || res.Sent == 0 || res.TransportErrors != 0 {
		t.Errorf("got sent %d, non-2xx %v, errors %d; want every request a 307", res.Sent, res.Non2xx, res.TransportErrors)
	}
	if got := hits.Load(); got != res.Sent {
		t.Errorf("got %d hits, want %d", got, res.Sent)
	}
}
