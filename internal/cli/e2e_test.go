package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/retry"
)

// fast is a retry policy that keeps tests quick.
var fast = retry.Policy{MaxAttempts: 5, InitialInterval: 10 * time.Millisecond, Multiplier: 2,
	RandomizationFactor: 0.1, MaxInterval: 50 * time.Millisecond, MaxElapsedTime: time.Minute}

// testConfig is a configuration on backend b with fast retries and
// loopback callbacks allowed.
func testConfig(b redistest.Backend) Config {
	return Config{Addr: "127.0.0.1:0", LogLevel: "info", LogFormat: "text", Engine: boomerang.Config{
		RedisURL: b.URL, KeyPrefix: b.Prefix, Lease: 2 * time.Second, ShutdownTimeout: 2 * time.Second, Retry: fast,
		Callback: boomerang.CallbackConfig{AllowPrivateNetworks: true, Retry: fast},
	}}
}

func testLogger() *slog.Logger {
	if os.Getenv("BOOMERANG_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs serve in-process and returns its base URL and a stop
// function (also called at the test's end).
func startServer(t *testing.T, cfg Config) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, testLogger(), ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	base := "http://" + ln.Addr().String()
	waitHTTP(t, base+"/healthz", http.StatusOK, 5*time.Second)
	return base, stop
}

func waitHTTP(t *testing.T, url string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: no %d within %s (last: %v)", url, want, d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// post sends body to base/event and returns the status and decoded answer.
func post(t *testing.T, base, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/event", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 && json.Unmarshal(b, &out) != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", req.Method, req.URL, b)
	}
	return resp.StatusCode, out
}

// record is the part of GET /events/{id} the tests read.
type record struct {
	EventID   string `json:"event_id"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
	Callback  struct {
		ID       string `json:"id"`
		URL      string `json:"url"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	} `json:"callback"`
	History []struct {
		Attempt int    `json:"attempt"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"history"`
}

func getRecord(t *testing.T, base, id string) (int, record) {
	t.Helper()
	resp, err := http.Get(base + "/events/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r record
	json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r
}

// waitDone waits until event id is terminal with its callback settled
// (delivered, failed or none), and returns its record.
func waitDone(t *testing.T, base, id string, d time.Duration) record {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		code, r := getRecord(t, base, id)
		settled := r.Callback.Status == "delivered" || r.Callback.Status == "failed" || r.Callback.Status == "none"
		if code == http.StatusOK && (r.Status == "succeeded" || r.Status == "failed") && settled {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("event %s not done within %s: %d %+v", id, d, code, r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eventJSON(id, typ string, rcv *fakes.Receiver) string {
	cb := ""
	if rcv != nil {
		cb = fmt.Sprintf(`,"callback":{"success_url":%q,"fail_url":%q}`, rcv.URL+"/success", rcv.URL+"/fail")
	}
	return fmt.Sprintf(`{"id":%q,"event_type":%q,"timestamp":"2024-08-20T05:21:19.143357839Z",
		"payload":{"user_id":"12345","username":"johndoe"},"metadata":{"source":"user_service","version":"1.0"}%s}`, id, typ, cb)
}

// TestEventOutcomes drives events through forward routes whose targets
// succeed, recover, refuse and stay down, and checks every outcome, its
// attempts and its callback.
func TestEventOutcomes(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		ok := fakes.NewTarget(t, nil)
		flaky := fakes.NewTarget(t, nil)
		flaky.Answer = func(_ int, w http.ResponseWriter, r *http.Request) {
			if flaky.CountFor(r.Header.Get("Idempotency-Key")) <= 2 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.WriteHeader(http.StatusOK)
		}
		refusing := fakes.NewTarget(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"error":"username taken"}`)
		})
		down := fakes.NewTarget(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })

		cfg := testConfig(b)
		three := fast
		three.MaxAttempts = 3
		cfg.Routes = []Route{
			{EventType: "ok", Forward: ok.URL, Timeout: 2 * time.Second, Retry: fast},
			{EventType: "flaky", Forward: flaky.URL, Timeout: 2 * time.Second, Retry: fast},
			{EventType: "refused", Forward: refusing.URL, Timeout: 2 * time.Second, Retry: fast},
			{EventType: "down", Forward: down.URL, Timeout: 2 * time.Second, Retry: three},
			{EventType: "*", Accept: true, Retry: fast},
		}
		base, _ := startServer(t, cfg)
		rcv := fakes.NewReceiver(t)

		tests := []struct {
			typ          string
			wantStatus   string
			wantAttempts int
			wantPath     string
			wantError    string
			target       *fakes.Target
		}{
			{"ok", "succeeded", 1, "/success", "", ok},
			{"flaky", "succeeded", 3, "/success", "", flaky},
			{"refused", "failed", 1, "/fail", "HTTP 422: username taken", refusing},
			{"down", "failed", 3, "/fail", "HTTP 500", down},
			{"anything_else", "succeeded", 1, "/success", "", nil},
		}
		for i, tc := range tests {
			t.Run(tc.typ, func(t *testing.T) {
				id := fmt.Sprintf("evt-%s", tc.typ)
				code, ans := post(t, base, eventJSON(id, tc.typ, rcv))
				if code != http.StatusAccepted || ans["event_id"] != id || ans["status"] != "queued" || ans["status_url"] != "/callback?event_id="+id {
					t.Fatalf("POST /event: got %d %v, want 202 queued with status_url", code, ans)
				}
				r := waitDone(t, base, id, 10*time.Second)
				if r.Status != tc.wantStatus || r.Attempts != tc.wantAttempts || r.LastError != tc.wantError {
					t.Errorf("record: got %s after %d attempts (%q), want %s after %d (%q)", r.Status, r.Attempts, r.LastError, tc.wantStatus, tc.wantAttempts, tc.wantError)
				}
				if len(r.History) != tc.wantAttempts || r.History[len(r.History)-1].Outcome != tc.wantStatus {
					t.Errorf("history: got %+v, want %d attempts ending %s", r.History, tc.wantAttempts, tc.wantStatus)
				}
				if r.Callback.Status != "delivered" || r.Callback.URL != rcv.URL+tc.wantPath || r.Callback.Attempts != 1 {
					t.Errorf("callback: got %+v, want delivered to %s in 1 attempt", r.Callback, tc.wantPath)
				}
				got := rcv.WaitFor(t, i+1, 5*time.Second)[i]
				if got.Path != tc.wantPath || got.Body.EventID != id || got.Body.Status != tc.wantStatus || got.Body.Attempts != tc.wantAttempts || got.WebhookID != r.Callback.ID {
					t.Errorf("callback received: got %+v, want %s for %s, %s after %d attempts, webhook-id %s", got, tc.wantPath, id, tc.wantStatus, tc.wantAttempts, r.Callback.ID)
				}
				if tc.target != nil && tc.target.CountFor(id) != tc.wantAttempts {
					t.Errorf("target requests: got %d, want %d", tc.target.CountFor(id), tc.wantAttempts)
				}
			})
		}
		// The same record through the polling endpoint.
		req, _ := http.NewRequest(http.MethodGet, base+"/callback?event_id=evt-ok", nil)
		if code, ans := do(t, req); code != http.StatusOK || ans["status"] != "succeeded" || ans["callback"].(map[string]any)["status"] != "delivered" {
			t.Errorf("GET /callback: got %d %v", code, ans)
		}
		if n := len(rcv.Got()); n != len(tests) {
			t.Errorf("callbacks in all: got %d, want exactly %d", n, len(tests))
		}
	})
}

func TestDuplicateIDs(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		target := fakes.NewTarget(t, nil)
		cfg := testConfig(b)
		cfg.Routes = []Route{{EventType: "*", Forward: target.URL, Timeout: time.Second, Retry: fast}}
		base, _ := startServer(t, cfg)

		body := eventJSON("order-7", "order_paid", nil)
		if code, _ := post(t, base, body); code != http.StatusAccepted {
			t.Fatalf("first POST: got %d, want 202", code)
		}
		waitDone(t, base, "order-7", 5*time.Second)
		code, ans := post(t, base, body)
		if code != http.StatusOK || ans["event_id"] != "order-7" || ans["status"] != "succeeded" {
			t.Errorf("repeat: got %d %v, want 200 with the succeeded record", code, ans)
		}
		changed := strings.Replace(body, "johndoe", "janedoe", 1)
		if code, ans := post(t, base, changed); code != http.StatusConflict {
			t.Errorf("repeat with another body: got %d %v, want 409", code, ans)
		}
		// The Idempotency-Key header names the id when the body does not.
		keyed := eventJSON("", "order_paid", nil)
		keyed = strings.Replace(keyed, `"id":"",`, "", 1)
		if code, ans := post(t, base, keyed, "Idempotency-Key", "order-8"); code != http.StatusAccepted || ans["event_id"] != "order-8" {
			t.Errorf("Idempotency-Key: got %d %v, want 202 for order-8", code, ans)
		}
		if code, _ := post(t, base, keyed, "Idempotency-Key", "order-8"); code != http.StatusOK {
			t.Errorf("Idempotency-Key repeat: got %d, want 200", code)
		}
		waitDone(t, base, "order-8", 5*time.Second)
		time.Sleep(50 * time.Millisecond) // a second run, were there one, would show now
		if n := target.CountFor("order-7"); n != 1 {
			t.Errorf("order-7 processed %d times, want 1", n)
		}
		if n := target.CountFor("order-8"); n != 1 {
			t.Errorf("order-8 processed %d times, want 1", n)
		}
	})
}

func TestBadInput(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		cfg := testConfig(b)
		cfg.Engine.MaxBodyBytes = 2048
		cfg.Engine.Callback.AllowPrivateNetworks = false
		base, _ := startServer(t, cfg)

		valid := `{"event_type":"user_created","payload":{}}`
		tests := []struct {
			name        string
			body        string
			contentType string
			wantCode    int
			wantField   string
		}{
			{"not json", `{"event_type":`, "application/json", 400, "body"},
			{"array", `[1,2]`, "application/json", 400, "body"},
			{"empty", ``, "application/json", 400, "body"},
			{"no event type", `{"payload":{}}`, "application/json", 400, "event_type"},
			{"bad event type", `{"event_type":"user created!"}`, "application/json", 400, "event_type"},
			{"event type not a string", `{"event_type":42}`, "application/json", 400, "event_type"},
			{"bad timestamp", `{"event_type":"a","timestamp":"yesterday"}`, "application/json", 400, "timestamp"},
			{"timestamp offset of 24h", `{"event_type":"a","timestamp":"2024-08-20T05:21:19+24:00"}`, "application/json", 400, "timestamp"},
			{"metadata not strings", `{"event_type":"a","metadata":{"version":1}}`, "application/json", 400, "metadata"},
			{"bad id", `{"id":"has space","event_type":"a"}`, "application/json", 400, "id"},
			{"invalid utf-8", "{\"event_type\":\"a\",\"payload\":{\"s\":\"\xff\"}}", "application/json", 400, "body"},
			{"credentials in callback", `{"event_type":"a","callback":{"success_url":"https://u:p@example.com/cb"}}`, "application/json", 400, "callback.success_url"},
			{"ftp callback", `{"event_type":"a","callback":{"success_url":"ftp://x/y"}}`, "application/json", 400, "callback.success_url"},
			{"relative callback", `{"event_type":"a","callback":{"fail_url":"/callback"}}`, "application/json", 400, "callback.fail_url"},
			{"metadata address callback", `{"event_type":"a","callback":{"success_url":"http://169.254.169.254/latest"}}`, "application/json", 400, "callback.success_url"},
			{"loopback callback refused by policy", `{"event_type":"a","callback":{"success_url":"http://127.0.0.1:9/cb"}}`, "application/json", 400, "callback.success_url"},
			{"too large", `{"event_type":"a","payload":"` + strings.Repeat("x", 4096) + `"}`, "application/json", 413, ""},
			{"form body", valid, "application/x-www-form-urlencoded", 415, ""},
			{"text body", valid, "text/plain", 415, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, base+"/event", strings.NewReader(tc.body))
				req.Header.Set("Content-Type", tc.contentType)
				code, ans := do(t, req)
				if code != tc.wantCode {
					t.Fatalf("got %d %v, want %d", code, ans, tc.wantCode)
				}
				if msg, _ := ans["error"].(string); msg == "" {
					t.Errorf("got no error message in %v", ans)
				}
				if tc.wantField != "" && ans["field"] != tc.wantField {
					t.Errorf("field: got %v, want %s (error %q)", ans["field"], tc.wantField, ans["error"])
				}
			})
		}
		// Chunked bodies meet the same limit.
		req, _ := http.NewRequest(http.MethodPost, base+"/event", io.MultiReader(strings.NewReader(`{"event_type":"a","payload":"`), bytes.NewReader(bytes.Repeat([]byte("x"), 8192)), strings.NewReader(`"}`)))
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1
		if code, _ := do(t, req); code != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked over the limit: got %d, want 413", code)
		}
		for _, path := range []string{"/events/nope", "/callback?event_id=nope", "/events/" + strings.Repeat("x", 300)} {
			req, _ := http.NewRequest(http.MethodGet, base+path, nil)
			if code, ans := do(t, req); code != http.StatusNotFound || ans["error"] == nil {
				t.Errorf("GET %s: got %d %v, want 404 with an error", path, code, ans)
			}
		}
		for _, q := range []string{"limit=0", "limit=x", "status=done", "cursor=zz"} {
			req, _ := http.NewRequest(http.MethodGet, base+"/callback?"+q, nil)
			if code, _ := do(t, req); code != http.StatusBadRequest {
				t.Errorf("GET /callback?%s: got %d, want 400", q, code)
			}
		}
		// None of it changed anything.
		req, _ = http.NewRequest(http.MethodGet, base+"/callback", nil)
		if code, ans := do(t, req); code != http.StatusOK || len(ans["events"].([]any)) != 0 {
			t.Errorf("after bad input: got %d %v, want no events recorded", code, ans)
		}
		// A valid event still goes through.
		if code, ans := post(t, base, valid); code != http.StatusAccepted {
			t.Errorf("valid event: got %d %v", code, ans)
		}
	})
}

func TestListRecent(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		base, _ := startServer(t, testConfig(b))
		var ids []string
		for i := range 5 {
			id := fmt.Sprintf("list-%d", i)
			if code, _ := post(t, base, eventJSON(id, "a", nil)); code != http.StatusAccepted {
				t.Fatalf("POST %s: got %d", id, code)
			}
			ids = append(ids, id)
			time.Sleep(2 * time.Millisecond)
		}
		for _, id := range ids {
			waitDone(t, base, id, 5*time.Second)
		}
		var got []string
		next := ""
		for range 5 {
			req, _ := http.NewRequest(http.MethodGet, base+"/callback?limit=2&status=succeeded&cursor="+next, nil)
			code, ans := do(t, req)
			if code != http.StatusOK {
				t.Fatalf("list: got %d %v", code, ans)
			}
			for _, e := range ans["events"].([]any) {
				got = append(got, e.(map[string]any)["event_id"].(string))
			}
			next, _ = ans["next_cursor"].(string)
			if next == "" {
				break
			}
		}
		want := []string{"list-4", "list-3", "list-2", "list-1", "list-0"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("list: got %v, want %v", got, want)
		}
	})
}

// A server configured with another number of partitions than its store was
// created with refuses to start, and says which setting to change.
func TestServeRefusesOtherPartitions(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		cfg := testConfig(b)
		cfg.Engine.Partitions = 4
		base, stop := startServer(t, cfg)
		if code, ans := post(t, base, eventJSON("p1", "anything", nil)); code != http.StatusAccepted {
			t.Fatalf("post: %d %v", code, ans)
		}
		// Run checks the store (and records its partitions) before its
		// workers start; an accept event is done at ingest, before that.
		meta := "{" + b.Prefix + "}:meta"
		deadline := time.Now().Add(10 * time.Second)
		for b.Client.HGet(context.Background(), meta, "partitions").Val() != "4" {
			if time.Now().After(deadline) {
				t.Fatalf("%s holds no partitions: 4 after 10s", meta)
			}
			time.Sleep(10 * time.Millisecond)
		}
		stop()

		cfg.Engine.Partitions = 8
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = serve(ctx, cfg, testLogger(), ln)
		if err == nil || !strings.Contains(err.Error(), "created with 4 partitions") || !strings.Contains(err.Error(), "set partitions: 4") {
			t.Errorf("serve with 8 partitions on a store of 4: got %v, want a refusal naming the setting", err)
		}
	})
}
