package boomerang_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// The producer's trace context, as it sends it.
const (
	producerTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	producerSpanID  = "00f067aa0ba902b7"
	producerParent  = "00-" + producerTraceID + "-" + producerSpanID + "-01"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTraceCrossesInstances: the producer's traceparent on POST /event
// reaches the forward target, typed logic and the callback receiver when
// another instance runs the event: one engine only serves the API (it
// never runs), another on the same store runs the events. With tracing
// off (no exporter: the default) the producer's context passes as it is;
// with a tracer provider the spans continue it, POST /event's span being
// the parent of the attempt's.
func TestTraceCrossesInstances(t *testing.T) {
	// The environment must not turn on an exporter: nothing dials out.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	for _, mode := range []string{"off", "sdk"} {
		t.Run(mode, func(t *testing.T) {
			redistest.Run(t, func(t *testing.T, b redistest.Backend) {
				testTraceCrossesInstances(t, b, mode == "sdk")
			})
		})
	}
}

func testTraceCrossesInstances(t *testing.T, b redistest.Backend, sdk bool) {
	var rec *tracetest.SpanRecorder
	logs := &syncBuffer{}
	apiCfg, runCfg := testConfig(b), testConfig(b)
	runCfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	if sdk {
		rec = tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		t.Cleanup(func() { tp.Shutdown(context.Background()) })
		apiCfg.TracerProvider, runCfg.TracerProvider = tp, tp
		// The API's engine opens its own client, which gets Redis spans.
		apiCfg.Redis, apiCfg.RedisURL = nil, b.URL
	}
	api := newEngine(t, apiCfg) // serves the API, never runs
	worker := newEngine(t, runCfg)

	var (
		mu        sync.Mutex // guards forwarded
		forwarded = map[string]string{}
		calls     atomic.Int32
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		forwarded[r.Header.Get("Boomerang-Event-Id")] = r.Header.Get("traceparent")
		mu.Unlock()
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // one retry, logged
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(target.Close)
	if err := worker.Forward("forwarded", target.URL); err != nil {
		t.Fatal(err)
	}
	var typedTrace sync.Map // event id → trace id of its logic's context
	err := boomerang.Handle(worker, "typed", func(ctx context.Context, msg event.EventMessage[user]) error {
		typedTrace.Store(msg.(interface{ GetID() string }).GetID(), trace.SpanContextFromContext(ctx).TraceID().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	recv := fakes.NewReceiver(t)

	send := func(id, typ, traceparent string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(`{"id":"`+id+`","event_type":"`+typ+
			`","payload":{"name":"jo"},"callback":{"success_url":"`+recv.URL+`/ok","fail_url":"`+recv.URL+`/fail"}}`))
		req.Header.Set("Content-Type", "application/json")
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
			req.Header.Set("tracestate", "vendor=opaque")
		}
		w := httptest.NewRecorder()
		api.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			t.Fatalf("POST /event %s: got %d %s, want 202", id, w.Code, w.Body)
		}
	}
	send("fwd", "forwarded", producerParent)
	send("typed", "typed", producerParent)
	send("untraced", "typed", "")
	stop := start(t, worker)

	cbs := recv.WaitFor(t, 3, 10*time.Second)
	byEvent := map[string]fakes.Callback{}
	for _, cb := range cbs {
		byEvent[cb.Body.EventID] = cb
	}
	for _, id := range []string{"fwd", "typed"} {
		cb := byEvent[id]
		if cb.Body.Status != "succeeded" {
			t.Errorf("%s: callback status: got %q, want succeeded", id, cb.Body.Status)
		}
		if got := traceIDOf(cb.TraceParent); got != producerTraceID {
			t.Errorf("%s: callback traceparent: got %q, want trace id %s", id, cb.TraceParent, producerTraceID)
		}
	}
	if tp := byEvent["untraced"].TraceParent; !sdk && tp != "" {
		t.Errorf("untraced: callback traceparent: got %q, want none", tp)
	}
	mu.Lock()
	fwd := forwarded["fwd"]
	mu.Unlock()
	if got := traceIDOf(fwd); got != producerTraceID {
		t.Errorf("forward traceparent: got %q, want trace id %s", fwd, producerTraceID)
	}
	if !sdk && fwd != producerParent {
		t.Errorf("forward traceparent with tracing off: got %q, want the producer's %q", fwd, producerParent)
	}
	if sdk && strings.Contains(fwd, producerSpanID) {
		t.Errorf("forward traceparent with tracing on: got %q, want a span of ours as parent", fwd)
	}
	if got, _ := typedTrace.Load("typed"); got != producerTraceID {
		t.Errorf("typed logic's context: got trace id %v, want %s", got, producerTraceID)
	}
	snap, err := api.Store().Get(context.Background(), "untraced")
	if err != nil {
		t.Fatal(err)
	}
	if !sdk && snap.Record.TraceParent != "" {
		t.Errorf("untraced record: got trace_parent %q, want none", snap.Record.TraceParent)
	}

	// GET /events/{id} shows the trace id (the console shows it too).
	for id, want := range map[string]string{"typed": producerTraceID, "untraced": ""} {
		w := httptest.NewRecorder()
		api.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/events/"+id, nil))
		var view struct {
			TraceID *string `json:"trace_id"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &view); w.Code != http.StatusOK || err != nil {
			t.Fatalf("GET /events/%s: got %d %s", id, w.Code, w.Body)
		}
		switch {
		case want != "" && (view.TraceID == nil || *view.TraceID != want):
			t.Errorf("GET /events/%s: got trace_id %v, want %s", id, view.TraceID, want)
		case want == "" && !sdk && view.TraceID != nil:
			t.Errorf("GET /events/%s: got trace_id %q, want none", id, *view.TraceID)
		}
	}

	// The retried attempt's log line carries the trace id.
	var sawRetry bool
	for _, line := range strings.Split(logs.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["msg"] != "event attempt failed; will retry" {
			continue
		}
		sawRetry = true
		if l["event_id"] != "fwd" || l["trace_id"] != producerTraceID {
			t.Errorf("retry log: got event_id %v, trace_id %v; want fwd, %s", l["event_id"], l["trace_id"], producerTraceID)
		}
	}
	if !sawRetry {
		t.Errorf("no retry logged; logs:\n%s", logs)
	}

	if sdk {
		// Every span has ended once the worker stopped.
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkSpans(t, rec)
	}
}

// checkSpans checks the spans of the traced events: POST /event continues
// the producer's span, the attempts and deliveries continue POST /event's,
// and the enqueue's Redis commands are in the trace.
func checkSpans(t *testing.T, rec *tracetest.SpanRecorder) {
	t.Helper()
	posts := map[trace.SpanID]bool{}
	count := map[string]int{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() != producerTraceID {
			continue
		}
		count[s.Name()]++
		if strings.Contains(s.InstrumentationScope().Name, "redisotel") {
			count["redis"]++
		}
		if s.Name() == "POST /event" {
			if got := s.Parent().SpanID().String(); got != producerSpanID {
				t.Errorf("POST /event: parent span %s, want the producer's %s", got, producerSpanID)
			}
			posts[s.SpanContext().SpanID()] = true
		}
	}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() != producerTraceID {
			continue
		}
		switch s.Name() {
		case "event attempt", "callback delivery":
			if !posts[s.Parent().SpanID()] {
				t.Errorf("%s: parent %s, want a POST /event span", s.Name(), s.Parent().SpanID())
			}
		}
	}
	// fwd: 2 attempts (a 503, then 200); typed: 1.
	if count["POST /event"] != 2 || count["event attempt"] != 3 || count["callback delivery"] != 2 {
		t.Errorf("spans of the producer's trace: got %v, want 2 POST /event, 3 event attempt, 2 callback delivery", count)
	}
	if count["HTTP POST"] < 3 {
		t.Errorf("client spans of forwards and deliveries: got %d, want at least 3", count["HTTP POST"])
	}
	if count["redis"] == 0 {
		t.Errorf("no Redis span in the producer's trace; spans: %v", count)
	}
}

// traceIDOf returns the trace id of a traceparent header value.
func traceIDOf(traceparent string) string {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}

// TestTracerProviderFromEnv: with no TracerProvider, New reads the OTEL_*
// environment: an unsupported protocol is an error naming the variable; an
// endpoint makes a provider that Close shuts down. No span is made, so
// nothing dials the endpoint.
func TestTracerProviderFromEnv(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	if _, err := boomerang.New(boomerang.Config{Logger: quiet}); err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_PROTOCOL") {
		t.Errorf("grpc: got %v, want an error naming OTEL_EXPORTER_OTLP_PROTOCOL", err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	eng, err := boomerang.New(boomerang.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
