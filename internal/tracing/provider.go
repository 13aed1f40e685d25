package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName is the service.name of the spans exported when
// OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names none.
const DefaultServiceName = "boomerang"

// FromEnv returns the tracer provider the standard OTEL_* environment
// variables ask for, read with getenv: an SDK provider exporting over
// OTLP/HTTP (otlptracehttp, which reads its own OTEL_EXPORTER_OTLP_*
// settings: endpoint, headers, timeout, TLS) in batches, sampling as
// OTEL_TRACES_SAMPLER says (default: parent-based, always on). Exporting
// is on only when OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; otherwise, or with
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, FromEnv returns nil
// and nothing is made: no exporter, no goroutine, no network. The OTLP
// protocol must be http/protobuf (the default); grpc is refused.
func FromEnv(getenv func(string) string) (*sdktrace.TracerProvider, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || strings.EqualFold(getenv("OTEL_TRACES_EXPORTER"), "none") {
		return nil, nil
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	if e := getenv("OTEL_TRACES_EXPORTER"); e != "" && e != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: only otlp and none are supported, got %q", e)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(name); p != "" {
			if p != "http/protobuf" {
				return nil, fmt.Errorf("%s: only http/protobuf is supported, got %q", name, p)
			}
			break
		}
	}
	exp, err := otlptracehttp.New(context.Background())
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	// Later options win: the environment's service name over the default.
	res, err := resource.New(context.Background(),
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// ChildOnly returns a provider of tp's tracers that start a span only
// inside a trace: given a context without a span, they return a no-op
// span. Redis commands then get spans when they serve a traced operation
// (an ingest, an enqueue batch), not every poll of an idle worker pool.
func ChildOnly(tp trace.TracerProvider) trace.TracerProvider { return childOnly{tp: tp} }

type childOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

var noopTracer = noop.NewTracerProvider().Tracer("")

func (t childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return noopTracer.Start(ctx, name, opts...)
	}
	return t.t.Start(ctx, name, opts...)
}
