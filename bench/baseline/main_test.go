package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// newTestHandler returns the handler on a fresh miniredis.
func newTestHandler(t *testing.T) (http.Handler, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb, err := openRedis("redis://"+mr.Addr()+"/0", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return newHandler(rdb, "bench"), mr
}

func post(t *testing.T, h http.Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestPostEventStoresBodyAndQueues(t *testing.T) {
	h, mr := newTestHandler(t)
	tests := []struct {
		name   string
		body   string
		wantID string // "" when the server generates it
	}{
		{"client id", `{"id":"e-1","event_type":"user_created","payload":{"a":1},"metadata":{"k":"v"},"callback":{"success_url":"http://127.0.0.1:1/cb"}}`, "e-1"},
		{"generated id", `{"event_type":"user_created","timestamp":"2024-08-20T05:21:19Z"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(t, h, tt.body)
			if rec.Code != http.StatusAccepted {
				t.Fatalf("got status %d (%s), want 202", rec.Code, rec.Body)
			}
			var got accepted
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("answer %q: %v", rec.Body, err)
			}
			if got.Status != "queued" {
				t.Errorf("got status %q, want queued", got.Status)
			}
			if tt.wantID != "" && got.EventID != tt.wantID {
				t.Errorf("got event_id %q, want %q", got.EventID, tt.wantID)
			}
			if got.EventID == "" {
				t.Fatal("got empty event_id")
			}
			stored, err := mr.Get("{bench}:ev:" + got.EventID)
			if err != nil {
				t.Fatalf("get {bench}:ev:%s: %v", got.EventID, err)
			}
			if stored != tt.body {
				t.Errorf("got stored body %q, want %q", stored, tt.body)
			}
			score, err := mr.ZScore("{bench}:q", got.EventID)
			if err != nil {
				t.Fatalf("zscore {bench}:q %s: %v", got.EventID, err)
			}
			if now := float64(time.Now().UnixMilli()); score > now || score < now-60_000 {
				t.Errorf("got score %v, want about %v", score, now)
			}
		})
	}
}

func TestPostEventGeneratesUniqueIDs(t *testing.T) {
	h, mr := newTestHandler(t)
	seen := map[string]bool{}
	for range 50 {
		rec := post(t, h, `{"event_type":"x"}`)
		var got accepted
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != http.StatusAccepted {
			t.Fatalf("got %d %q (%v), want 202", rec.Code, rec.Body, err)
		}
		if seen[got.EventID] {
			t.Fatalf("got event_id %q twice", got.EventID)
		}
		seen[got.EventID] = true
	}
	members, err := mr.ZMembers("{bench}:q")
	if err != nil || len(members) != 50 {
		t.Errorf("got %d queue members (%v), want 50", len(members), err)
	}
}

func TestPostEventRejects(t *testing.T) {
	h, mr := newTestHandler(t)
	tests := []struct {
		name string
		body string
		want int
	}{
		{"missing event_type", `{"payload":{}}`, http.StatusBadRequest},
		{"empty event_type", `{"event_type":""}`, http.StatusBadRequest},
		{"not json", `{"event_type":`, http.StatusBadRequest},
		{"wrong type", `{"event_type":"x","metadata":{"k":1}}`, http.StatusBadRequest},
		{"too big", `{"event_type":"x","payload":"` + strings.Repeat("a", maxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := post(t, h, tt.body)
			if rec.Code != tt.want {
				t.Errorf("got status %d (%s), want %d", rec.Code, rec.Body, tt.want)
			}
		})
	}
	if keys := mr.Keys(); len(keys) != 0 {
		t.Errorf("got keys %v after rejected events, want none", keys)
	}
}

func TestPostEventRedisDown(t *testing.T) {
	h, mr := newTestHandler(t)
	mr.Close()
	rec := post(t, h, `{"event_type":"x"}`)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("got status %d (%s), want 503", rec.Code, rec.Body)
	}
}

func TestHealthz(t *testing.T) {
	h, _ := newTestHandler(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("got status %d, want 200", rec.Code)
	}
}

// TestServeShutsDown starts the real server in-process, sends an event over
// TCP and checks that cancelling the context stops it.
func TestServeShutsDown(t *testing.T) {
	h, _ := newTestHandler(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, h) }()
	resp, err := http.Post("http://"+ln.Addr().String()+"/event", "application/json", strings.NewReader(`{"event_type":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("got status %d, want 202", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("got serve error %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    config
		wantErr bool
	}{
		{"defaults", nil, config{addr: "127.0.0.1:8090", redisURL: "redis://127.0.0.1:6379/0", prefix: "bench"}, false},
		{"set", []string{"--addr", ":1", "--prefix", "p", "--pool-size", "64"}, config{addr: ":1", redisURL: "redis://127.0.0.1:6379/0", prefix: "p", poolSize: 64}, false},
		{"empty prefix", []string{"--prefix", ""}, config{}, true},
		{"extra arg", []string{"x"}, config{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, &strings.Builder{})
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRunBadRedisURL(t *testing.T) {
	err := run(context.Background(), []string{"--redis-url", "http://x", "--addr", "127.0.0.1:0"}, &strings.Builder{})
	if err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want a redis url error", err)
	}
}
