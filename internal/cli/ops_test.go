package cli

import (
	"bytes"
	"context"

	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
)

func postPath(t *testing.T, base, path, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return do(t, req)
}

func deadLetters(t *testing.T, base string) map[string]string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/dead-letters?limit=100", nil)
	code, ans := do(t, req)
	if code != http.StatusOK {
		t.Fatalf("GET /dead-letters: got %d %v", code, ans)
	}
	out := make(map[string]string)
	for _, e := range ans["dead_letters"].([]any) {
		m := e.(map[string]any)
		out[m["event_id"].(string)] = m["dead_letter"].(map[string]any)["kind"].(string)
	}
	return out
}

func TestOperatorActions(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		var targetUp atomic.Bool
		release := make(chan struct{})
		var releaseOnce sync.Once
		t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
		target := fakes.NewTarget(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			if !targetUp.Load() {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			<-release // the retried run waits until the test has asked twice
			w.WriteHeader(http.StatusOK)
		})
		rcv := fakes.NewReceiver(t)
		cfg := testConfig(b)
		two := fast
		two.MaxAttempts = 2
		cfg.Routes = []Route{
			{EventType: "job", Forward: target.URL, Timeout: 5 * time.Second, Retry: two},
			{EventType: "*", Accept: true, Retry: fast},
		}
		cfg.Engine.Callback.Retry = two
		base, _ := startServer(t, cfg)

		// A failing event ends in the dead letters, its fail_url called.
		if code, _ := post(t, base, eventJSON("dl-1", "job", rcv)); code != http.StatusAccepted {
			t.Fatalf("POST: got %d", code)
		}
		r := waitDone(t, base, "dl-1", 10*time.Second)
		if r.Status != "failed" || r.Attempts != 2 {
			t.Fatalf("dl-1: got %+v, want failed after 2 attempts", r)
		}
		if got := deadLetters(t, base); got["dl-1"] != "event" {
			t.Fatalf("dead letters: got %v, want dl-1 as an event", got)
		}

		// Retry it once the target works; asking twice queues it once.
		targetUp.Store(true)
		code, ans := postPath(t, base, "/events/dl-1/retry", "")
		if code != http.StatusAccepted || ans["queued"] != true {
			t.Fatalf("retry: got %d %v, want 202 queued", code, ans)
		}
		code, ans = postPath(t, base, "/events/dl-1/retry", "")
		if code != http.StatusAccepted || ans["queued"] != false {
			t.Fatalf("second retry: got %d %v, want 202, not queued again", code, ans)
		}
		releaseOnce.Do(func() { close(release) })
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, r = getRecord(t, base, "dl-1")
			if r.Status == "succeeded" && r.Callback.Status == "delivered" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("dl-1 after retry: got %+v, want succeeded and delivered", r)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if n := target.CountFor("dl-1"); n != 3 {
			t.Errorf("target requests for dl-1: got %d, want 3 (2 failed, 1 retried)", n)
		}
		noted := false
		for _, h := range r.History {
			noted = noted || h.Outcome == "queued"
		}
		if !noted {
			t.Errorf("history %+v does not record the retry", r.History)
		}
		if got := deadLetters(t, base); got["dl-1"] != "" {
			t.Errorf("dead letters after retry: got %v, want dl-1 gone", got)
		}
		if code, _ := postPath(t, base, "/events/dl-1/retry", ""); code != http.StatusConflict {
			t.Errorf("retry a succeeded event: got %d, want 409", code)
		}
		if code, _ := postPath(t, base, "/events/nope/retry", ""); code != http.StatusNotFound {
			t.Errorf("retry unknown: got %d, want 404", code)
		}

		// A callback the receiver refuses ends in the dead letters; once the
		// receiver is back, a redelivery sends it with the same webhook-id.
		rcv.SetStatus(http.StatusInternalServerError)
		if code, _ := post(t, base, eventJSON("dl-2", "other", rcv)); code != http.StatusAccepted {
			t.Fatalf("POST dl-2: got %d", code)
		}
		r = waitDone(t, base, "dl-2", 10*time.Second)
		if r.Status != "succeeded" || r.Callback.Status != "failed" || r.Callback.Attempts != 2 {
			t.Fatalf("dl-2: got %+v, want succeeded with its callback failed after 2 attempts", r)
		}
		if got := deadLetters(t, base); got["dl-2"] != "callback" {
			t.Fatalf("dead letters: got %v, want dl-2 as a callback", got)
		}
		rcv.SetStatus(http.StatusOK)
		before := len(rcv.Got())
		if code, ans := postPath(t, base, "/callback/dl-2/redeliver", ""); code != http.StatusAccepted || ans["queued"] != true {
			t.Fatalf("redeliver: got %d %v", code, ans)
		}
		got := rcv.WaitFor(t, before+1, 5*time.Second)
		if last := got[len(got)-1]; last.Body.EventID != "dl-2" || last.WebhookID != r.Callback.ID {
			t.Errorf("redelivered: got %+v, want dl-2 with webhook-id %s", last, r.Callback.ID)
		}
		waitDone(t, base, "dl-2", 5*time.Second)
		if _, r := getRecord(t, base, "dl-2"); r.Callback.Status != "delivered" {
			t.Errorf("dl-2 callback: got %s, want delivered", r.Callback.Status)
		}
		if got := deadLetters(t, base); len(got) != 0 {
			t.Errorf("dead letters at the end: got %v, want none", got)
		}
		if code, _ := post(t, base, eventJSON("quiet", "other", nil)); code != http.StatusAccepted {
			t.Fatal("POST quiet")
		}
		waitDone(t, base, "quiet", 5*time.Second)
		if code, _ := postPath(t, base, "/callback/quiet/redeliver", ""); code != http.StatusConflict {
			t.Errorf("redeliver without callback url: got %d, want 409", code)
		}
	})
}

// TestAuth checks API keys on every endpoint, the admin key on operator
// actions, and that no key, secret or payload reaches the logs.
func TestAuth(t *testing.T) {
	b := redistest.Mini(t)
	const userKey, adminKey = "user-key-0123456789abcdef", "admin-key-0123456789abcdef"
	secret := "whsec_" + strings.Repeat("c2VjcmV0", 4)
	cfg := testConfig(b)
	cfg.Engine.Auth.APIKeys = []string{userKey}
	cfg.Engine.Auth.AdminKeys = []string{adminKey}
	cfg.Engine.Callback.SigningSecrets = []string{secret}
	cfg.LogLevel = "debug"

	var logs syncBuffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), ln)
	}()
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { cancel(); <-done }) }
	defer stop()
	base := "http://" + ln.Addr().String()
	waitHTTP(t, base+"/healthz", http.StatusOK, 5*time.Second)
	rcv := fakes.NewReceiver(t)

	call := func(method, path, key, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", key)
		}
		code, _ := do(t, req)
		return code
	}
	ev := eventJSON("auth-1", "user_created", rcv)
	tests := []struct {
		method, path, auth, body string
		want                     int
	}{
		{"POST", "/event", "", ev, 401},
		{"POST", "/event", "Bearer wrong-key-0123456789abcdef", ev, 401},
		{"POST", "/event", "Basic " + userKey, ev, 401},
		{"POST", "/event", "Bearer " + userKey, ev, 202},
		{"POST", "/event", "bearer " + userKey, ev, 200},
		{"GET", "/callback?event_id=auth-1", "", "", 401},
		{"GET", "/callback?event_id=auth-1", "Bearer " + userKey, "", 200},
		{"GET", "/events/auth-1", "", "", 401},
		{"GET", "/dead-letters", "", "", 401},
		{"GET", "/dead-letters", "Bearer " + userKey, "", 200},
		{"POST", "/events/auth-1/retry", "Bearer " + userKey, "", 401},
		{"POST", "/callback/auth-1/redeliver", "", "", 401},
		{"POST", "/events/nope/retry", "Bearer " + adminKey, "", 404},
		{"GET", "/healthz", "", "", 200},
		{"GET", "/readyz", "", "", 200},
		{"HEAD", "/healthz", "", "", 200},
		{"HEAD", "/readyz", "", "", 200},
		{"POST", "/callback", "", "{}", 200},
	}
	for _, tc := range tests {
		if got := call(tc.method, tc.path, tc.auth, tc.body); got != tc.want {
			t.Errorf("%s %s (%q): got %d, want %d", tc.method, tc.path, tc.auth, got, tc.want)
		}
	}
	rcv.WaitFor(t, 1, 5*time.Second)
	stop()
	for _, s := range []string{userKey, adminKey, secret, "johndoe", "v1,"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the logs contain %q", s)
		}
	}
	if !strings.Contains(logs.String(), "boomerang started") {
		t.Error("the log capture is not working")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
