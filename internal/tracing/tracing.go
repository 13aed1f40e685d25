// Package tracing carries an event's W3C trace context (traceparent and
// tracestate) from the producer's POST /event, through the event's record
// in Redis, into its business call and its callback deliveries, so that
// whichever instance runs them continues the producer's trace.
//
// Propagation never depends on an exporter or on the global OpenTelemetry
// propagator: Propagator is always the W3C Trace Context one, and with
// tracing off no span is started, so a restored context is the one the
// work runs in: the producer's trace id reaches the forward target and the
// callback receiver even when nothing is exported.
package tracing

import (
	"context"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names the tracers of Boomerang's spans.
const InstrumentationName = "github.com/boomerang-events/boomerang"

// Attributes of Boomerang's spans.
const (
	AttrEventID    = "boomerang.event_id"
	AttrEventType  = "boomerang.event_type"
	AttrAttempt    = "boomerang.attempt"
	AttrCallbackID = "boomerang.callback_id"
)

// Propagator reads and writes the traceparent and tracestate headers.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// W3C Trace Context header names.
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// Extract returns ctx with the remote span context of the traceparent and
// tracestate headers of h, or ctx itself when they hold none (or an
// invalid one).
func Extract(ctx context.Context, h http.Header) context.Context {
	if h.Get(HeaderTraceParent) == "" {
		return ctx
	}
	return Propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Inject sets the traceparent (and tracestate) headers of h to the span
// context of ctx; it leaves h alone when ctx holds none.
func Inject(ctx context.Context, h http.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	Propagator.Inject(ctx, propagation.HeaderCarrier(h))
}

// Save returns the span context of ctx as the traceparent and tracestate
// to store with an event: "", "" when ctx holds none.
func Save(ctx context.Context) (traceParent, traceState string) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "", ""
	}
	var c carrier
	Propagator.Inject(ctx, &c)
	return c.parent, c.state
}

// Restore returns ctx with the remote span context that Save returned, so
// that spans started from it continue that trace; ctx itself when
// traceParent is empty or invalid.
func Restore(ctx context.Context, traceParent, traceState string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return Propagator.Extract(ctx, &carrier{parent: traceParent, state: traceState})
}

// LogAttr is the trace_id attribute of a log line about work running in
// ctx, or an empty attribute (which slog drops) when ctx holds no trace.
func LogAttr(ctx context.Context) slog.Attr {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return slog.Attr{}
	}
	return slog.String("trace_id", sc.TraceID().String())
}

// LogAttrOf is LogAttr for a stored traceparent.
func LogAttrOf(traceParent string) slog.Attr {
	if traceParent == "" {
		return slog.Attr{}
	}
	return LogAttr(Restore(context.Background(), traceParent, ""))
}

// TraceID returns the trace id of a stored traceparent (32 lowercase hex
// digits), or "" when traceParent is empty or invalid.
func TraceID(traceParent string) string {
	if traceParent == "" {
		return ""
	}
	sc := trace.SpanContextFromContext(Restore(context.Background(), traceParent, ""))
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// carrier is a propagation.TextMapCarrier of the two fields, without the
// map of propagation.MapCarrier.
type carrier struct{ parent, state string }

func (c *carrier) Get(key string) string {
	switch key {
	case HeaderTraceParent:
		return c.parent
	case HeaderTraceState:
		return c.state
	}
	return ""
}

func (c *carrier) Set(key, value string) {
	switch key {
	case HeaderTraceParent:
		c.parent = value
	case HeaderTraceState:
		c.state = value
	}
}

func (c *carrier) Keys() []string { return []string{HeaderTraceParent, HeaderTraceState} }
