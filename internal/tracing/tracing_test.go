package tracing_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/store"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

const (
	producerParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	producerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
)

// TestRecordRoundTrip: the context of a request's traceparent, saved in a
// store.Record, encoded as Redis keeps it, decoded and restored, is the
// same span context, and a request made in it carries the same headers.
func TestRecordRoundTrip(t *testing.T) {
	in := http.Header{}
	in.Set("traceparent", producerParent)
	in.Set("tracestate", "vendor=opaque")
	ctx := tracing.Extract(context.Background(), in)
	// The no-op tracer (tracing off) keeps the producer's span context.
	ctx, span := noop.NewTracerProvider().Tracer("test").Start(ctx, "POST /event")
	defer span.End()

	rec := store.Record{ID: "e1", EventType: "t", Status: event.StatusQueued}
	rec.TraceParent, rec.TraceState = tracing.Save(ctx)
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back store.Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	restored := tracing.Restore(context.Background(), back.TraceParent, back.TraceState)
	got, want := trace.SpanContextFromContext(restored), trace.SpanContextFromContext(ctx)
	if !got.Equal(want.WithRemote(true)) {
		t.Errorf("restored span context: got %+v, want %+v", got, want)
	}
	out := http.Header{}
	tracing.Inject(restored, out)
	if out.Get("traceparent") != producerParent || out.Get("tracestate") != "vendor=opaque" {
		t.Errorf("headers: got %q %q, want %q %q", out.Get("traceparent"), out.Get("tracestate"), producerParent, "vendor=opaque")
	}
	if a := tracing.LogAttr(restored); a.Key != "trace_id" || a.Value.String() != producerTrace {
		t.Errorf("log attr: got %v, want trace_id=%s", a, producerTrace)
	}
	if a := tracing.LogAttrOf(back.TraceParent); a.Value.String() != producerTrace {
		t.Errorf("log attr of stored: got %v, want trace_id=%s", a, producerTrace)
	}
}

func TestNoContext(t *testing.T) {
	for name, h := range map[string]http.Header{
		"absent":  {},
		"invalid": {"Traceparent": {"00-zz-00f067aa0ba902b7-01"}},
		"zero":    {"Traceparent": {"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := tracing.Extract(context.Background(), h)
			if p, s := tracing.Save(ctx); p != "" || s != "" {
				t.Errorf("Save: got %q %q, want nothing", p, s)
			}
			out := http.Header{}
			tracing.Inject(ctx, out)
			if len(out) != 0 {
				t.Errorf("Inject: got %v, want no header", out)
			}
			if a := tracing.LogAttr(ctx); !a.Equal(slog.Attr{}) {
				t.Errorf("LogAttr: got %v, want empty", a)
			}
		})
	}
	if ctx := tracing.Restore(context.Background(), "", ""); trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("Restore of nothing: got a span context, want none")
	}
}
