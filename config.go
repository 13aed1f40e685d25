package boomerang

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// RetryPolicy is an exponential backoff policy (cenkalti/backoff/v4),
// bounded by attempts and by the time since the first attempt. Zero fields
// take the defaults documented on each field.
type RetryPolicy = retry.Policy

// Defaults of a Config's zero fields. The callback and retry defaults are
// callback.DefaultTimeout, callback.DefaultRetry and retry.Defaults; the
// HTTP API's are handler.DefaultMaxBodyBytes, handler.DefaultIngestTimeout,
// handler.DefaultRequestTimeout and handler.DefaultBacklogTarget.
const (
	DefaultWorkers         = 64
	DefaultCallbackWorkers = 64
	DefaultLease           = 30 * time.Second
	DefaultPollInterval    = 100 * time.Millisecond
	DefaultShutdownTimeout = 15 * time.Second
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultForwardTimeout  = 10 * time.Second
	// DefaultMetricsMaxEventTypes is how many event types get metrics
	// series of their own.
	DefaultMetricsMaxEventTypes = 50
)

// Bounds New checks.
const (
	MaxWorkers      = 4096
	MinMaxBodyBytes = 1 << 10
	MaxMaxBodyBytes = 64 << 20
	// MaxMaxBatchEvents and MaxMaxBatchBytes bound Config.MaxBatchEvents
	// and Config.MaxBatchBytes.
	MaxMaxBatchEvents = 10000
	MaxMaxBatchBytes  = 256 << 20
	// MaxMaxWaiters bounds Config.MaxWaiters.
	MaxMaxWaiters   = 100000
	MaxKeyPrefixLen = 64
	// DefaultWaitTimeout is Config.WaitTimeout when it names none.
	DefaultWaitTimeout = 500 * time.Millisecond
	// maxWaitTimeout stays below the Redis client's read timeout (3s), so
	// a WAIT never looks like a dead connection.
	maxWaitTimeout  = 2 * time.Second
	maxWaitReplicas = 16
	MinAPIKeyLen    = 16
	// MaxMetricsEventTypes bounds Config.MetricsMaxEventTypes.
	MaxMetricsEventTypes = 10000
)

// Config tunes an Engine. The zero Config runs on an embedded in-memory
// Redis with every default. Errors of New name a field as its YAML key in
// the server's configuration file (docs/configuration.md), such as
// callback.retry.max_attempts.
type Config struct {
	// RedisURL is the Redis that holds everything: a single node
	// (redis://, rediss:// for TLS, unix://), a Redis Cluster
	// (redis+cluster://host1:port1,host2:port2, rediss+cluster://) or a
	// Sentinel group (redis+sentinel://host1:port1,host2:port2/master[/db],
	// rediss+sentinel://), as store.Open reads them. Default "": an embedded
	// in-memory Redis (miniredis) whose data is lost when the engine is
	// closed, for development and tests.
	RedisURL string
	// Redis, when set, is used instead of RedisURL: any go-redis client,
	// single node, Sentinel or Cluster. The engine does not close it.
	// RequestTimeout bounds the API's reads only if the client honours
	// context deadlines on the socket: set ContextTimeoutEnabled in its
	// options (the client RedisURL opens does). Unless DisableMetrics is
	// set, New adds a hook to it that counts failed commands
	// (boomerang_redis_errors_total).
	Redis redis.UniversalClient
	// KeyPrefix starts every Redis key, inside a {hash tag}: 1 to 64
	// letters, digits and . _ : -. Default store.DefaultPrefix
	// ("boomerang").
	KeyPrefix string
	// Partitions is the number of partitions the store's keys are split
	// into, each under its own hash tag, so that on Redis Cluster the
	// events spread over the masters (see docs/architecture.md): 1 to
	// store.MaxPartitions. Default store.DefaultPartitions (16). A store
	// keeps the number it was created with: Run refuses another.
	Partitions int
	// WaitReplicas, when above 0, makes POST /event answer 202 only once
	// that many replicas of the Redis primary holding the event have it
	// (Redis WAIT), so an accepted event survives a failover; fewer within
	// WaitTimeout answers 503 (retry with the same id is safe). Default 0:
	// 202 once the primary has it. See docs/reliability.md.
	WaitReplicas int
	// WaitTimeout bounds that wait: 1ms to 2s. Default 500ms.
	WaitTimeout time.Duration

	// Workers is the number of events this engine runs at once (and the
	// most it claims in one go): 1 to MaxWorkers. Default DefaultWorkers.
	Workers int
	// Retry is the default policy of events; Handle's WithRetry replaces
	// fields per event type. Zero fields take retry.Defaults (5 attempts,
	// 500ms initial interval, multiplier 2, randomization 0.5, 1m max
	// interval, 1h max elapsed time).
	Retry RetryPolicy
	// Lease is how long a claimed event or delivery stays claimed without
	// renewal; it is renewed every Lease/3 while it runs, so this is how
	// long the work of an instance that died waits before another takes
	// it. At least 1s. Default DefaultLease.
	Lease time.Duration
	// PollInterval is the longest a worker pool sleeps before looking for
	// work it was not told about: work queued by other instances, retries
	// coming due. Default DefaultPollInterval.
	PollInterval time.Duration
	// ShutdownTimeout bounds how long Run waits, after its context ends,
	// for running events and deliveries; what is left is given back to
	// Redis for another instance. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Retention is how long settled events (their records, ids, callbacks
	// and dead letters) are kept: at least 1m. Default DefaultRetention.
	Retention time.Duration

	// MaxBodyBytes is the largest event POST /event accepts (413 above):
	// MinMaxBodyBytes to MaxMaxBodyBytes. Default
	// handler.DefaultMaxBodyBytes (1 MiB).
	MaxBodyBytes int64
	// MaxBatchEvents is the most events one POST /events takes (413
	// above): 1 to MaxMaxBatchEvents. Default handler.DefaultMaxBatchEvents
	// (500).
	MaxBatchEvents int
	// MaxBatchBytes is the largest body POST /events accepts (413 above):
	// MaxBodyBytes to MaxMaxBatchBytes. Default
	// handler.DefaultMaxBatchBytes (16 MiB), or MaxBodyBytes when that is
	// larger.
	MaxBatchBytes int64
	// MaxWaiters is how many requests may wait at once for events'
	// outcomes (Prefer: wait=N on POST /event, GET /callback?wait=N): 1
	// to MaxMaxWaiters, or -1 to turn waiting off. Past it a request is
	// answered at once, as if it had not asked to wait. Each waiter holds
	// a goroutine and its connection; all of a process's share one Redis
	// subscription. Default handler.DefaultMaxWaiters (1000).
	MaxWaiters int
	// IngestTimeout bounds how long POST /event waits for Redis before it
	// answers 503. Default handler.DefaultIngestTimeout (5s).
	IngestTimeout time.Duration
	// RequestTimeout bounds how long the API's other requests that need
	// Redis (GET /callback, GET /events/{id}, GET /dead-letters, retry,
	// redeliver) wait for it before they answer 503, so a stalled Redis
	// never hangs them. GET /readyz answers within handler.ReadyTimeout
	// (1s). Default handler.DefaultRequestTimeout (3s).
	RequestTimeout time.Duration
	// BacklogTarget is the backlog of due events and callbacks (of all
	// instances) past which POST /event slows down, 20µs per event of
	// excess and at most 250ms, so producers slow to the pace of the
	// workers. -1 never slows down. Default handler.DefaultBacklogTarget.
	BacklogTarget int

	// Flow is the flow control of each outbound destination (a callback
	// URL's or a forward route's scheme://host:port): a cap on requests in
	// flight, a rate limit and a circuit breaker, with their state in
	// Redis. Zero fields take callback.DefaultFlow's; a negative one turns
	// its limit off.
	Flow store.Limits
	// Destinations are the limits of particular destinations, by a URL of
	// theirs (only scheme, host and port count); their zero fields take
	// Flow's.
	Destinations map[string]store.Limits

	// Callback configures the delivery of callbacks.
	Callback CallbackConfig
	// Auth holds the API keys of the HTTP API. None: the API is open.
	Auth AuthConfig

	// DisableMetrics turns the Prometheus metrics off: Handler serves no
	// /metrics, MetricsHandler answers 404, and nothing is counted.
	// Default false: metrics on.
	DisableMetrics bool
	// MetricsMaxEventTypes is how many event types get metrics series of
	// their own (the first seen); the others are counted under
	// event_type="other", so what producers send cannot grow the series
	// without bound. 1 to MaxMetricsEventTypes. Default
	// DefaultMetricsMaxEventTypes.
	MetricsMaxEventTypes int
	// SeparateMetrics leaves GET /metrics out of Handler, for a program
	// that serves MetricsHandler on a listener of its own (the server's
	// metrics_addr). Default false: Handler serves /metrics, behind the
	// API keys when there are any.
	SeparateMetrics bool
	// TracerProvider makes the engine's OpenTelemetry spans: POST /event
	// (continuing the producer's traceparent), each attempt of an event
	// and each callback delivery (children of the trace context stored
	// with the event), their outbound requests, and the Redis commands of
	// a client the engine opened. Default: made from the standard OTEL_*
	// environment variables, exporting over OTLP/HTTP when
	// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
	// is set, and shut down by Close; when neither is set, no spans are
	// made. Either way, trace context propagates: the producer's trace
	// reaches forward targets and callback receivers as traceparent.
	TracerProvider trace.TracerProvider

	// Logger receives the engine's logs. Default slog.Default().
	Logger *slog.Logger
}

// CallbackConfig configures the delivery of callbacks.
type CallbackConfig struct {
	// Workers is the number of deliveries in flight at once: 1 to
	// MaxWorkers. Default DefaultCallbackWorkers.
	Workers int
	// Timeout bounds one delivery, response included. Default
	// callback.DefaultTimeout (10s).
	Timeout time.Duration
	// Retry is the delivery policy. Zero fields take callback.DefaultRetry
	// (8 attempts, 1s initial interval, 5m max interval, then retry's
	// defaults).
	Retry RetryPolicy
	// AllowPrivateNetworks accepts callback URLs on loopback and private
	// addresses. Link-local and metadata addresses are always refused.
	// Default false.
	AllowPrivateNetworks bool
	// AllowedPorts, when set, are the only ports callback URLs may use
	// (80 for http and 443 for https when a URL names none): others are
	// refused at ingest with 400, and at dial time. Default: any port.
	AllowedPorts []uint16
	// SigningSecrets sign every delivery with Standard Webhooks headers,
	// one signature per secret ("whsec_" and base64). None: unsigned.
	SigningSecrets []string
	// Method is how a callback is sent when neither its event
	// (callback.method) nor its route (WithCallback) says:
	// event.CallbackPOST, the outcome as the body, or event.CallbackGET,
	// the outcome as the query parameters event_id, status and attempts,
	// with no body. Default POST.
	Method event.CallbackMethod
	// Format is the body of a POST callback when neither its event nor
	// its route says: event.CallbackJSON or event.CallbackCloudEvents (a
	// CloudEvents 1.0 event in structured mode). Default json. Not
	// cloudevents with Method GET, which sends no body.
	Format event.CallbackFormat
	// CloudEventsSource is the source attribute of callbacks sent as
	// CloudEvents, a URI-reference. Default
	// callback.DefaultCloudEventsSource ("boomerang").
	CloudEventsSource string
}

// AuthConfig holds the API keys of the HTTP API.
type AuthConfig struct {
	// APIKeys, when set, are required as "Authorization: Bearer <key>" by
	// every endpoint but /healthz, /readyz and the demo receiver POST
	// /callback. Each is at least MinAPIKeyLen characters.
	APIKeys []string
	// AdminKeys, when set, are required by the operator actions (retry,
	// redeliver) instead of APIKeys.
	AdminKeys []string
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	set := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = store.DefaultPrefix
	}
	if c.Partitions == 0 {
		c.Partitions = store.DefaultPartitions
	}
	set(&c.WaitTimeout, DefaultWaitTimeout)
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	c.Retry = c.Retry.WithDefaults()
	set(&c.Lease, DefaultLease)
	set(&c.PollInterval, DefaultPollInterval)
	set(&c.ShutdownTimeout, DefaultShutdownTimeout)
	set(&c.Retention, DefaultRetention)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = handler.DefaultMaxBodyBytes
	}
	if c.MaxWaiters == 0 {
		c.MaxWaiters = handler.DefaultMaxWaiters
	}
	if c.MaxBatchEvents == 0 {
		c.MaxBatchEvents = handler.DefaultMaxBatchEvents
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = max(handler.DefaultMaxBatchBytes, c.MaxBodyBytes)
	}
	set(&c.IngestTimeout, handler.DefaultIngestTimeout)
	set(&c.RequestTimeout, handler.DefaultRequestTimeout)
	if c.BacklogTarget == 0 {
		c.BacklogTarget = handler.DefaultBacklogTarget
	}
	if c.Callback.Workers == 0 {
		c.Callback.Workers = DefaultCallbackWorkers
	}
	set(&c.Callback.Timeout, callback.DefaultTimeout)
	c.Callback.Retry = c.Callback.Retry.Or(callback.DefaultRetry)
	if c.Callback.Method == "" {
		c.Callback.Method = event.CallbackPOST
	}
	if c.Callback.Format == "" {
		c.Callback.Format = event.CallbackJSON
	}
	if c.Callback.CloudEventsSource == "" {
		c.Callback.CloudEventsSource = callback.DefaultCloudEventsSource
	}
	if c.MetricsMaxEventTypes == 0 {
		c.MetricsMaxEventTypes = DefaultMetricsMaxEventTypes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every field of c that is out of range once the defaults
// are filled in, each error naming the field by its configuration key. New
// calls it; a program that builds a Config from a file can call it first.
func (c Config) Validate() error {
	return c.withDefaults().validate()
}

func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Redis == nil {
		if err := checkRedisURL(c.RedisURL); err != nil {
			add("redis_url: %w", err)
		}
	}
	if c.WaitReplicas < 0 || c.WaitReplicas > maxWaitReplicas {
		add("wait_replicas: must be 0 to %d, got %d", maxWaitReplicas, c.WaitReplicas)
	}
	if c.WaitTimeout < time.Millisecond || c.WaitTimeout > maxWaitTimeout {
		add("wait_timeout: must be 1ms to %s, got %s", maxWaitTimeout, c.WaitTimeout)
	}
	if c.Partitions < 1 || c.Partitions > store.MaxPartitions {
		add("partitions: must be 1 to %d, got %d", store.MaxPartitions, c.Partitions)
	}
	if !validKeyPrefix(c.KeyPrefix) {
		add("key_prefix: must be 1 to %d letters, digits or . _ : -, got %q", MaxKeyPrefixLen, c.KeyPrefix)
	}
	if c.Workers < 1 || c.Workers > MaxWorkers {
		add("workers: must be between 1 and %d, got %d", MaxWorkers, c.Workers)
	}
	errs = append(errs, c.Retry.Problems("retry")...)
	if c.Lease < time.Second {
		add("lease: must be at least 1s, got %s", c.Lease)
	}
	if c.PollInterval < time.Millisecond {
		add("poll_interval: must be at least 1ms, got %s", c.PollInterval)
	}
	if c.ShutdownTimeout <= 0 {
		add("shutdown_timeout: must be positive, got %s", c.ShutdownTimeout)
	}
	if c.Retention < time.Minute {
		add("retention: must be at least 1m, got %s", c.Retention)
	}
	if c.MaxBodyBytes < MinMaxBodyBytes || c.MaxBodyBytes > MaxMaxBodyBytes {
		add("max_body_bytes: must be between %d and %d, got %d", MinMaxBodyBytes, MaxMaxBodyBytes, c.MaxBodyBytes)
	}
	if c.MaxWaiters != -1 && (c.MaxWaiters < 1 || c.MaxWaiters > MaxMaxWaiters) {
		add("max_waiters: must be between 1 and %d, or -1 for no waiting, got %d", MaxMaxWaiters, c.MaxWaiters)
	}
	if c.MaxBatchEvents < 1 || c.MaxBatchEvents > MaxMaxBatchEvents {
		add("max_batch_events: must be between 1 and %d, got %d", MaxMaxBatchEvents, c.MaxBatchEvents)
	}
	if c.MaxBatchBytes < c.MaxBodyBytes || c.MaxBatchBytes > MaxMaxBatchBytes {
		add("max_batch_bytes: must be between max_body_bytes (%d) and %d, got %d", c.MaxBodyBytes, MaxMaxBatchBytes, c.MaxBatchBytes)
	}
	if c.IngestTimeout <= 0 {
		add("ingest_timeout: must be positive, got %s", c.IngestTimeout)
	}
	if c.RequestTimeout <= 0 {
		add("request_timeout: must be positive, got %s", c.RequestTimeout)
	}
	if c.BacklogTarget < -1 {
		add("backlog_target: must be positive, or -1 to never slow ingest, got %d", c.BacklogTarget)
	}
	if c.MetricsMaxEventTypes < 1 || c.MetricsMaxEventTypes > MaxMetricsEventTypes {
		add("metrics_max_event_types: must be between 1 and %d, got %d", MaxMetricsEventTypes, c.MetricsMaxEventTypes)
	}
	if c.Callback.Workers < 1 || c.Callback.Workers > MaxWorkers {
		add("callback.workers: must be between 1 and %d, got %d", MaxWorkers, c.Callback.Workers)
	}
	if c.Callback.Timeout <= 0 {
		add("callback.timeout: must be positive, got %s", c.Callback.Timeout)
	}
	errs = append(errs, c.Callback.Retry.Problems("callback.retry")...)
	if err := event.CheckCallback(c.Callback.Method, c.Callback.Format); err != nil {
		add("%w", err) // names callback.method or callback.format
	}
	if err := callback.CheckCloudEventsSource(c.Callback.CloudEventsSource); err != nil {
		add("callback.cloudevents_source: %w", err)
	}
	errs = append(errs, limitsProblems("flow", c.Flow)...)
	for url, l := range c.Destinations {
		if err := outboundURL(url); err != nil {
			add("destinations[%q]: %w", url, err)
		}
		errs = append(errs, limitsProblems(fmt.Sprintf("destinations[%q]", url), l)...)
	}
	for i, port := range c.Callback.AllowedPorts {
		if port == 0 {
			add("callback.allowed_ports[%d]: must be a port from 1 to 65535, got 0", i)
		}
	}
	for i, sec := range c.Callback.SigningSecrets {
		if err := callback.CheckSigningSecret(sec); err != nil {
			add("callback.signing_secrets[%d]: %w", i, err) // by position: never echo a secret
		}
	}
	for _, keys := range []struct {
		name string
		keys []string
	}{{"auth.api_keys", c.Auth.APIKeys}, {"auth.admin_keys", c.Auth.AdminKeys}} {
		for i, k := range keys.keys {
			if k != strings.TrimSpace(k) || len(k) < MinAPIKeyLen {
				add("%s[%d]: must be at least %d characters, without leading or trailing spaces", keys.name, i, MinAPIKeyLen)
			}
		}
	}
	return errors.Join(errs...)
}

// limitsProblems reports what is wrong with flow limits, each error naming
// the field under path.
func limitsProblems(path string, l store.Limits) []error {
	var errs []error
	if l.ErrorRate > 1 {
		errs = append(errs, fmt.Errorf("%s.error_rate: must be at most 1, got %g", path, l.ErrorRate))
	}
	if l.Burst > 0 && l.Rate <= 0 {
		errs = append(errs, fmt.Errorf("%s.burst: needs a rate", path))
	}
	return errs
}

// outboundURL reports whether s is an absolute http or https URL with a
// host, as a destination is named.
func outboundURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http or https URL")
	}
	return nil
}

// checkRedisURL accepts an empty URL (the embedded Redis) or one with a
// scheme store.Open understands: redis, rediss or unix (a single node),
// redis+cluster or rediss+cluster, redis+sentinel or rediss+sentinel.
// store.Open checks the rest. Errors never quote the URL, which may hold a
// password.
func checkRedisURL(s string) error {
	if s == "" {
		return nil
	}
	scheme, _, _ := strings.Cut(s, "://")
	switch strings.ToLower(scheme) {
	case "redis+cluster", "rediss+cluster", "redis+sentinel", "rediss+sentinel":
		return nil // a list of hosts, which net/url cannot read: store.Open does
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return fmt.Errorf("not a valid URL: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
		return nil
	}
	return errors.New("scheme must be redis, rediss, unix, redis+cluster, rediss+cluster, redis+sentinel or rediss+sentinel")
}

// validKeyPrefix reports whether s is 1 to MaxKeyPrefixLen ASCII letters,
// digits, '.', '_', ':' or '-'.
func validKeyPrefix(s string) bool {
	if s == "" || len(s) > MaxKeyPrefixLen {
		return false
	}
	for _, r := range s {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._:-", r)
		if !ok {
			return false
		}
	}
	return true
}
