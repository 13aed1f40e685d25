// Package metrics holds the engine's Prometheus metrics: the one package
// that imports the Prometheus client. The other packages tell it what
// happens through small observer interfaces of their own (store.Observer,
// process.Observer, callback.Observer, handler.Observer), which Metrics
// implements; what lives in Redis (queue depth, destinations) is read at
// scrape time by a collector.
//
// Every Metrics has its own registry, never Prometheus' global default, so
// that engines in one process (tests, embedding programs) do not collide.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/process"
	"github.com/boomerang-events/boomerang/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultMaxEventTypes is how many event types get labels of their own
// when a Config names no number.
const DefaultMaxEventTypes = 50

// OtherEventType is the event_type label of the event types past
// Config.MaxEventTypes.
const OtherEventType = "other"

// DefaultScrapeTimeout bounds the Redis reads of a scrape when a Config
// names no timeout.
const DefaultScrapeTimeout = 2 * time.Second

// Source is what a scrape reads from Redis: *store.Redis is one.
type Source interface {
	Stats(ctx context.Context, now time.Time) (store.Stats, error)
	Destinations(ctx context.Context, now time.Time) ([]store.Destination, error)
}

// Config tunes Metrics. The zero value works.
type Config struct {
	// MaxEventTypes is how many event types get an event_type label of
	// their own, the first seen; later ones are counted as
	// OtherEventType, so the number of series stays bounded whatever
	// producers send. Default DefaultMaxEventTypes.
	MaxEventTypes int
	// ScrapeTimeout bounds the Redis reads of one scrape; when Redis does
	// not answer within it, the scrape leaves out the metrics read from
	// Redis. Default DefaultScrapeTimeout.
	ScrapeTimeout time.Duration
}

// Metrics counts what an engine does. Its methods are safe for concurrent
// use, and quick: no allocation once a series exists.
type Metrics struct {
	reg           *prometheus.Registry
	scrapeTimeout time.Duration

	httpRequests     *prometheus.CounterVec
	eventsAccepted   prometheus.Counter
	attempts         *prometheus.CounterVec
	attemptDuration  *prometheus.HistogramVec
	deliveries       [3]prometheus.Counter // delivered, retry, failed
	deliveryDuration prometheus.Histogram
	deliveryLatency  prometheus.Histogram
	endToEnd         prometheus.Histogram
	eventRetries     prometheus.Counter
	callbackRetries  prometheus.Counter
	deadEvents       prometheus.Counter
	deadCallbacks    prometheus.Counter
	reclaimed        *prometheus.CounterVec
	fenced           *prometheus.CounterVec
	redisErrors      prometheus.Counter

	maxTypes int
	typesMu  sync.RWMutex // guards types
	types    map[string]*typeSeries
	other    *typeSeries

	reqMu    sync.RWMutex // guards requests
	requests map[request]prometheus.Counter
}

// typeSeries are the series of one event_type label.
type typeSeries struct {
	attempts [4]prometheus.Counter // by process.Outcome
	duration prometheus.Observer
}

// request is the labels of an HTTP request's series.
type request struct {
	route, method string
	code          int
}

// latencyBuckets span 5ms to about 22 minutes, for latencies that include
// retries.
var latencyBuckets = prometheus.ExponentialBuckets(0.005, 4, 10)

// New returns the metrics of an engine, on a registry of their own with
// the Go and process collectors. ReadFrom adds the state kept in Redis.
func New(cfg Config) *Metrics {
	if cfg.MaxEventTypes <= 0 {
		cfg.MaxEventTypes = DefaultMaxEventTypes
	}
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = DefaultScrapeTimeout
	}
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		maxTypes: cfg.MaxEventTypes,
		types:    map[string]*typeSeries{},
		requests: map[request]prometheus.Counter{},
	}
	f := factory{m.reg}
	m.httpRequests = f.counterVec("boomerang_http_requests_total",
		"HTTP requests served by the API, by route pattern (\"unmatched\" for none), method and status code.",
		"route", "method", "code")
	m.eventsAccepted = f.counter("boomerang_events_accepted_total", "Events accepted by POST /event (202), repeats not counted.")
	m.attempts = f.counterVec("boomerang_event_attempts_total",
		"Attempts of events by outcome (success, retry, permanent, exhausted) and event type (\"other\" past metrics_max_event_types).",
		"event_type", "outcome")
	m.attemptDuration = f.histogramVec("boomerang_event_attempt_duration_seconds",
		"How long an attempt of an event's business logic took, by event type.", prometheus.DefBuckets, "event_type")
	deliveries := f.counterVec("boomerang_callback_deliveries_total",
		"Callback delivery attempts by outcome: delivered, retry (another is scheduled), failed (for good).", "outcome")
	for i, o := range []string{"delivered", "retry", "failed"} {
		m.deliveries[i] = deliveries.WithLabelValues(o)
	}
	m.deliveryDuration = f.histogram("boomerang_callback_attempt_duration_seconds",
		"How long one callback delivery attempt took, response included.", prometheus.DefBuckets)
	m.deliveryLatency = f.histogram("boomerang_callback_delivery_latency_seconds",
		"From a callback's creation (the event's outcome) to its delivery.", latencyBuckets)
	m.endToEnd = f.histogram("boomerang_end_to_end_latency_seconds",
		"From an event's acceptance to the delivery of its callback.", latencyBuckets)
	retries := f.counterVec("boomerang_retries_scheduled_total", "Retries scheduled, of events and of callback deliveries.", "queue")
	m.eventRetries, m.callbackRetries = retries.WithLabelValues(store.QueueEvents), retries.WithLabelValues(store.QueueCallbacks)
	dead := f.counterVec("boomerang_dead_letters_total", "Events and callbacks that failed for good (dead letters).", "kind")
	m.deadEvents, m.deadCallbacks = dead.WithLabelValues("event"), dead.WithLabelValues("callback")
	m.reclaimed = f.counterVec("boomerang_leases_reclaimed_total",
		"Items claimed whose previous lease had expired: their worker died or lost Redis (inline: events whose request died).", "queue")
	m.fenced = f.counterVec("boomerang_fenced_writes_total",
		"Outcomes the fence rejected: their lease had been taken over, so nothing was written.", "queue")
	m.redisErrors = f.counter("boomerang_redis_errors_total",
		"Redis commands or pipelines that failed (connection, timeout, or error reply).")
	m.other = m.newTypeSeries(OtherEventType)

	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(),
	)
	m.scrapeTimeout = cfg.ScrapeTimeout
	return m
}

// ReadFrom makes every scrape read the queues and destinations of src
// (boomerang_queue_*, boomerang_destinations). Call it once.
func (m *Metrics) ReadFrom(src Source) {
	m.reg.MustRegister(&redisCollector{src: src, timeout: m.scrapeTimeout})
}

// Registry returns the registry of the metrics, to add metrics of one's
// own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Request counts a request served by the API (handler.Observer).
func (m *Metrics) Request(route, method string, code int) {
	if route == "" {
		route = "unmatched"
	}
	k := request{route, method, code}
	m.reqMu.RLock()
	c := m.requests[k]
	m.reqMu.RUnlock()
	if c == nil {
		m.reqMu.Lock()
		if c = m.requests[k]; c == nil {
			c = m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code))
			m.requests[k] = c
		}
		m.reqMu.Unlock()
	}
	c.Inc()
}

// EventAccepted counts an event accepted (handler.Observer).
func (m *Metrics) EventAccepted() { m.eventsAccepted.Inc() }

// Attempt counts an attempt of an event (process.Observer).
func (m *Metrics) Attempt(eventType string, outcome process.Outcome, d time.Duration) {
	s := m.typeSeries(eventType)
	if outcome >= 0 && int(outcome) < len(s.attempts) {
		s.attempts[outcome].Inc()
	}
	s.duration.Observe(d.Seconds())
	switch outcome {
	case process.Retry:
		m.eventRetries.Inc()
	case process.Permanent, process.Exhausted:
		m.deadEvents.Inc()
	}
}

// EventDeadLettered counts an event failed for good outside the workers:
// one run in-request whose request died, failed by the reaper.
func (m *Metrics) EventDeadLettered() { m.deadEvents.Inc() }

// Delivery counts a callback delivery attempt (callback.Observer).
func (m *Metrics) Delivery(cb *store.Callback, d time.Duration) {
	m.deliveryDuration.Observe(d.Seconds())
	switch cb.Status {
	case event.CallbackDelivered:
		m.deliveries[0].Inc()
		if !cb.CreatedAt.IsZero() {
			m.deliveryLatency.Observe(cb.DeliveredAt.Sub(cb.CreatedAt).Seconds())
		}
		if !cb.EventAcceptedAt.IsZero() {
			m.endToEnd.Observe(cb.DeliveredAt.Sub(cb.EventAcceptedAt).Seconds())
		}
	case event.CallbackRetrying:
		m.deliveries[1].Inc()
		m.callbackRetries.Inc()
	case event.CallbackFailed:
		m.deliveries[2].Inc()
		m.deadCallbacks.Inc()
	}
}

// LeasesReclaimed counts items claimed after their lease expired
// (store.Observer).
func (m *Metrics) LeasesReclaimed(queue string, n int) {
	m.reclaimed.WithLabelValues(queue).Add(float64(n))
}

// LeasesLost counts outcomes the fence rejected (store.Observer).
func (m *Metrics) LeasesLost(queue string, n int) {
	m.fenced.WithLabelValues(queue).Add(float64(n))
}

// typeSeries returns the series of an event type: its own among the first
// MaxEventTypes seen, else those of OtherEventType.
func (m *Metrics) typeSeries(t string) *typeSeries {
	m.typesMu.RLock()
	s, ok := m.types[t]
	full := len(m.types) >= m.maxTypes
	m.typesMu.RUnlock()
	if ok {
		return s
	}
	if full {
		return m.other
	}
	m.typesMu.Lock()
	defer m.typesMu.Unlock()
	if s, ok := m.types[t]; ok {
		return s
	}
	if len(m.types) >= m.maxTypes {
		return m.other
	}
	s = m.newTypeSeries(t)
	m.types[t] = s
	return s
}

func (m *Metrics) newTypeSeries(t string) *typeSeries {
	s := &typeSeries{duration: m.attemptDuration.WithLabelValues(t)}
	for o := range s.attempts {
		s.attempts[o] = m.attempts.WithLabelValues(t, process.Outcome(o).String())
	}
	return s
}

// factory registers the metrics it makes.
type factory struct{ reg prometheus.Registerer }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

// newBuildInfo returns boomerang_build_info: 1, labelled with the module's
// version, the VCS revision it was built from and the Go version.
func newBuildInfo() prometheus.Collector {
	version, revision := "unknown", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "boomerang_build_info",
		Help:        "Always 1: the version, VCS revision and Go version this binary was built from.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "go_version": runtime.Version()},
	})
	g.Set(1)
	return g
}
