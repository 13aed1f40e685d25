package boomerang_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/gin-gonic/gin"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape gets GET /metrics from h and parses it.
func scrape(t *testing.T, h http.Handler, apiKey string) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200", w.Code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metric returns the series of family name whose labels include labels
// (name, value pairs), or nil.
func metric(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, or -1 when the series is missing.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	m := metric(fams, name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// count is a histogram's sample count, or -1 when the series is missing.
func count(fams map[string]*dto.MetricFamily, name string, labels ...string) int {
	m := metric(fams, name, labels...)
	if m == nil || m.Histogram == nil {
		return -1
	}
	return int(m.Histogram.GetSampleCount())
}

func TestMetricsOfAnEventAndItsCallback(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		eng := newEngine(t, testConfig(b))
		recv := fakes.NewReceiver(t)
		if err := eng.Accept("user_created"); err != nil {
			t.Fatal(err)
		}
		start(t, eng)
		code, _ := post(t, eng.Handler(), `{"id":"m1","event_type":"user_created","payload":{},
			"callback":{"success_url":"`+recv.URL+`/ok"}}`)
		if code != http.StatusAccepted {
			t.Fatalf("POST /event: got %d, want 202", code)
		}
		recv.WaitFor(t, 1, 10*time.Second)

		// The delivery is counted once the receiver's answer is in.
		var fams map[string]*dto.MetricFamily
		deadline := time.Now().Add(10 * time.Second)
		for {
			fams = scrape(t, eng.Handler(), "")
			if value(fams, "boomerang_callback_deliveries_total", "outcome", "delivered") == 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"boomerang_events_accepted_total", nil, 1},
			{"boomerang_event_attempts_total", []string{"event_type", "user_created", "outcome", "success"}, 1},
			{"boomerang_event_attempts_total", []string{"event_type", "user_created", "outcome", "retry"}, 0},
			{"boomerang_callback_deliveries_total", []string{"outcome", "delivered"}, 1},
			{"boomerang_dead_letters_total", []string{"kind", "event"}, 0},
			{"boomerang_http_requests_total", []string{"route", "/event", "method", "POST", "code", "202"}, 1},
			{"boomerang_queue_items", []string{"queue", "events"}, 0},
			{"boomerang_queue_due", []string{"queue", "callbacks"}, 0},
			{"boomerang_queue_oldest_due_age_seconds", []string{"queue", "events"}, 0},
			{"boomerang_destinations", []string{"state", "closed"}, 1},
			{"boomerang_destinations", []string{"state", "open"}, 0},
		} {
			if got := value(fams, c.name, c.labels...); got != c.want {
				t.Errorf("%s%v: got %g, want %g", c.name, c.labels, got, c.want)
			}
		}
		if m := metric(fams, "boomerang_build_info"); m == nil || m.Gauge.GetValue() != 1 || len(m.GetLabel()) != 3 {
			t.Errorf("boomerang_build_info: got %v, want 1 with version, revision and go_version", m)
		}
		for _, h := range []string{"boomerang_end_to_end_latency_seconds", "boomerang_callback_delivery_latency_seconds",
			"boomerang_callback_attempt_duration_seconds"} {
			if got := count(fams, h); got != 1 {
				t.Errorf("%s: got count %d, want 1", h, got)
			}
		}
		if got := count(fams, "boomerang_event_attempt_duration_seconds", "event_type", "user_created"); got != 1 {
			t.Errorf("boomerang_event_attempt_duration_seconds: got count %d, want 1", got)
		}
		for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
			if fams[name] == nil {
				t.Errorf("%s: missing; want the Go and process collectors", name)
			}
		}
		// A route's pattern, never the path: ids must not become labels.
		w := httptest.NewRecorder()
		eng.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/events/m1", nil))
		w = httptest.NewRecorder()
		eng.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/no/such/thing", nil))
		fams = scrape(t, eng.Handler(), "")
		if got := value(fams, "boomerang_http_requests_total", "route", "/events/:id", "code", "200"); got != 1 {
			t.Errorf("GET /events/m1: got %g under route /events/:id, want 1", got)
		}
		if got := value(fams, "boomerang_http_requests_total", "route", "unmatched", "method", "", "code", "404"); got != 1 {
			t.Errorf("an unknown route: got %g under route unmatched, want 1", got)
		}
	})
}

func TestMetricsFoldEventTypesPastTheLimit(t *testing.T) {
	b := redistest.Mini(t)
	cfg := testConfig(b)
	cfg.MetricsMaxEventTypes = 2
	eng := newEngine(t, cfg)
	if err := eng.Accept(boomerang.Wildcard); err != nil {
		t.Fatal(err)
	}
	start(t, eng)
	for i := range 5 {
		id := fmt.Sprintf("f%d", i)
		if code, _ := post(t, eng.Handler(), fmt.Sprintf(`{"id":%q,"event_type":"type%d","payload":{}}`, id, i)); code != http.StatusAccepted {
			t.Fatalf("POST %s: got %d, want 202", id, code)
		}
		waitFor(t, eng.Store(), id, terminal) // in order: the first two types seen get labels
	}
	fams := scrape(t, eng.Handler(), "")
	var seen []string
	total := 0.0
	for _, m := range fams["boomerang_event_attempts_total"].GetMetric() {
		var typ, outcome string
		for _, lp := range m.GetLabel() {
			switch lp.GetName() {
			case "event_type":
				typ = lp.GetValue()
			case "outcome":
				outcome = lp.GetValue()
			}
		}
		if outcome == "success" {
			seen = append(seen, typ)
			total += m.Counter.GetValue()
		}
	}
	if len(seen) != 3 {
		t.Errorf("event_type labels: got %v, want type0, type1 and other", seen)
	}
	for typ, want := range map[string]float64{"type0": 1, "type1": 1, "other": 3} {
		if got := value(fams, "boomerang_event_attempts_total", "event_type", typ, "outcome", "success"); got != want {
			t.Errorf("successes of %s: got %g, want %g", typ, got, want)
		}
	}
	if total != 5 {
		t.Errorf("successes in all: got %g, want 5", total)
	}
}

func TestMetricsNeedAnAPIKeyOnTheAPI(t *testing.T) {
	const key = "metrics-test-key-0123456789"
	b := redistest.Mini(t)
	cfg := testConfig(b)
	cfg.Auth.APIKeys = []string{key}
	eng := newEngine(t, cfg)
	w := httptest.NewRecorder()
	eng.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a key: got %d, want 401", w.Code)
	}
	if fams := scrape(t, eng.Handler(), key); fams["boomerang_build_info"] == nil {
		t.Error("GET /metrics with a key: no boomerang_build_info")
	}
	if fams := scrape(t, eng.MetricsHandler(), ""); fams["boomerang_build_info"] == nil {
		t.Error("MetricsHandler without a key: no boomerang_build_info")
	}
}

func TestMetricsApartOrOff(t *testing.T) {
	tests := []struct {
		name           string
		set            func(*boomerang.Config)
		wantAPI        int // GET /metrics of Handler
		wantSeparately int // MetricsHandler
	}{
		{"separate", func(c *boomerang.Config) { c.SeparateMetrics = true }, http.StatusNotFound, http.StatusOK},
		{"disabled", func(c *boomerang.Config) { c.DisableMetrics = true }, http.StatusNotFound, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(redistest.Mini(t))
			tc.set(&cfg)
			eng := newEngine(t, cfg)
			for _, h := range []struct {
				name string
				h    http.Handler
				want int
			}{{"Handler", eng.Handler(), tc.wantAPI}, {"MetricsHandler", eng.MetricsHandler(), tc.wantSeparately}} {
				w := httptest.NewRecorder()
				h.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				if w.Code != h.want {
					t.Errorf("%s: GET /metrics: got %d, want %d", h.name, w.Code, h.want)
				}
			}
			// Everything else works without metrics.
			if code, _ := post(t, eng.Handler(), `{"id":"d1","event_type":"t","payload":{}}`); code != http.StatusAccepted {
				t.Errorf("POST /event: got %d, want 202", code)
			}
		})
	}
}

func TestMetricsCountRedisErrors(t *testing.T) {
	b := redistest.Mini(t)
	eng := newEngine(t, testConfig(b))
	b.Mini.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := eng.Store().Get(ctx, "x"); err == nil {
		t.Fatal("Get on a closed Redis: got no error")
	}
	fams := scrape(t, eng.MetricsHandler(), "") // leaves out what Redis should tell
	if got := value(fams, "boomerang_redis_errors_total"); got < 1 {
		t.Errorf("boomerang_redis_errors_total: got %g, want at least 1", got)
	}
	if fams["boomerang_queue_items"] != nil {
		t.Error("boomerang_queue_items present while Redis is down; want it left out")
	}
}

// Register leaves /metrics to the router's owner, who may serve their own.
func TestRegisterLeavesMetricsToTheRouter(t *testing.T) {
	eng := newEngine(t, testConfig(redistest.Mini(t)))
	r := gin.New()
	r.GET("/metrics", func(c *gin.Context) { c.String(http.StatusOK, "mine") })
	eng.Register(r) // must not panic on a duplicate route
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Body.String() != "mine" {
		t.Errorf("GET /metrics: got %q, want the router's own", w.Body.String())
	}
}

// A request that died leaves its in-request lease to expire: the reaper's
// claim is a reclaimed lease, its failure a dead letter, and the dead
// request's late outcome a write the fence refused.
func TestMetricsOfAReclaimedLease(t *testing.T) {
	eng := newEngine(t, testConfig(redistest.Mini(t)))
	eh := callback.NewEventHandler[user](eng.Store(), callback.WithLease(time.Second))
	msg, err := eh.UnmarshalEventMessage([]byte(`{"id":"dead-1","event_type":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := eh.BeforeHandle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	start(t, eng)
	waitFor(t, eng.Store(), "dead-1", terminal)
	if err := eh.AfterHandle(context.Background(), msg, nil); err == nil {
		t.Fatal("late AfterHandle: got nil, want an error (the lease was lost)")
	}
	fams := scrape(t, eng.Handler(), "")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"boomerang_leases_reclaimed_total", []string{"queue", "inline"}, 1},
		{"boomerang_fenced_writes_total", []string{"queue", "inline"}, 1},
		{"boomerang_dead_letters_total", []string{"kind", "event"}, 1},
	} {
		if got := value(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v: got %g, want %g", c.name, c.labels, got, c.want)
		}
	}
}
