package tracing

import (
	"context"
	"net/http"
	"net/url"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Client returns a copy of c (or of http.DefaultClient when c is nil)
// whose requests get an OpenTelemetry client span from tp (otelhttp), sent
// as their traceparent. The span names the URL without its query and user
// info, which often hold a token: spans leave the process as logs do.
// otelhttp's metrics are off (a no-op meter): they are not this package's.
func Client(c *http.Client, tp trace.TracerProvider) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	out := *c
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = hideSecrets{otelhttp.NewTransport(restoreURL{base},
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
	)}
	return &out
}

type fullURLKey struct{}

// hideSecrets hands the next transport (otelhttp) the request with its
// URL's query and user info cut, and the full URL in the context, where
// restoreURL finds it.
type hideSecrets struct{ next http.RoundTripper }

func (t hideSecrets) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.RawQuery == "" && !r.URL.ForceQuery && r.URL.User == nil && r.URL.Fragment == "" {
		return t.next.RoundTrip(r)
	}
	r2 := r.Clone(context.WithValue(r.Context(), fullURLKey{}, r.URL))
	u := *r.URL
	u.RawQuery, u.ForceQuery, u.User, u.Fragment, u.RawFragment = "", false, nil, "", ""
	r2.URL = &u
	return t.next.RoundTrip(r2)
}

// restoreURL sends the request to the URL hideSecrets cut.
type restoreURL struct{ next http.RoundTripper }

func (t restoreURL) RoundTrip(r *http.Request) (*http.Response, error) {
	if u, ok := r.Context().Value(fullURLKey{}).(*url.URL); ok {
		r = r.Clone(r.Context())
		r.URL = u
	}
	return t.next.RoundTrip(r)
}
