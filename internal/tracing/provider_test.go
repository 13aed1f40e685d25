package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/internal/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestFromEnv: exporting is on only when an OTLP endpoint is set. No span
// is made, so nothing is exported and nothing dials.
func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    bool
		wantErr string
	}{
		{name: "unset"},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, want: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, want: true},
		{name: "sdk disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "zipkin", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "zipkin"},
			wantErr: "OTEL_TRACES_EXPORTER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := tracing.FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tp != nil; got != tc.want {
				t.Fatalf("provider made: got %v, want %v", got, tc.want)
			}
			if tp != nil {
				if err := tp.Shutdown(context.Background()); err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			}
		})
	}
}

// TestChildOnly: spans only inside a trace.
func TestChildOnly(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tracing.ChildOnly(tp).Tracer("test")
	_, root := tr.Start(context.Background(), "root")
	root.End()
	ctx := tracing.Restore(context.Background(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	_, child := tr.Start(ctx, "child")
	child.End()
	if got := rec.Ended(); len(got) != 1 || got[0].Name() != "child" {
		t.Errorf("got %d spans, want the child's only", len(got))
	}
}

// TestClientHidesQuery: the client span names the URL without its query
// (which may hold a token), while the request goes to the full URL with
// the span's traceparent.
func TestClientHidesQuery(t *testing.T) {
	var gotQuery, gotParent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery, gotParent = r.URL.RawQuery, r.Header.Get("traceparent")
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c := tracing.Client(nil, tp)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hook?token=s3cret", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gotQuery != "token=s3cret" {
		t.Errorf("query at the server: got %q, want token=s3cret", gotQuery)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want 1", len(spans))
	}
	if want := spans[0].SpanContext().TraceID().String(); !strings.Contains(gotParent, want) {
		t.Errorf("traceparent: got %q, want the client span's trace %s", gotParent, want)
	}
	for _, a := range spans[0].Attributes() {
		if strings.Contains(a.Value.Emit(), "s3cret") {
			t.Errorf("span attribute %s = %q holds the token", a.Key, a.Value.Emit())
		}
	}
	var _ trace.TracerProvider = tracing.ChildOnly(tp)
}
