package boomerang

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/metrics"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/process"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/internal/worker"
	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/extra/redisotel/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ErrRunning is returned by Run when the engine already runs, and by the
// registration functions (Handle, Forward, Accept) once it does.
var ErrRunning = errors.New("boomerang: engine already running")

// Engine owns Boomerang's work on one store: the HTTP API (Handler), the
// event workers, the callback dispatcher, the reaper of in-request events
// whose request died, the retention sweeper, and their metrics
// (MetricsHandler). New connects; Handle,
// Forward and Accept register business logic; Run runs it all until its
// context ends; Close releases the connection.
//
// Any number of engines, in any number of processes, can share one Redis:
// everything they know is there, so one that dies loses nothing.
type Engine struct {
	cfg        Config
	log        *slog.Logger
	conn       *store.Conn // opened by New, closed by Close; nil for Config.Redis
	st         *store.Redis
	api        *handler.Server
	dispatcher *callback.Dispatcher
	forward    *http.Client
	flow       store.Flow               // resolved: of callbacks and forwards alike
	metrics    *metrics.Metrics         // nil when Config.DisableMetrics
	tp         trace.TracerProvider     // Config.TracerProvider, or ownTP; nil: tracing off
	ownTP      *sdktrace.TracerProvider // made by New from the environment, shut down by Close

	mu      sync.Mutex // guards routes and running
	routes  process.Routes
	running bool
}

// New validates cfg and connects to its Redis (starting the embedded one
// when cfg names none). It does not wait for Redis to answer: until it does,
// POST /event answers 503. It starts no goroutine: Run does.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, routes: process.Routes{},
		flow: callback.ResolveFlow(store.Flow{Default: cfg.Flow, PerDestination: cfg.Destinations})}
	e.tp = cfg.TracerProvider
	if e.tp == nil {
		tp, err := tracing.FromEnv(os.Getenv)
		if err != nil {
			return nil, fmt.Errorf("boomerang: tracing: %w", err)
		}
		if tp != nil {
			e.ownTP, e.tp = tp, tp
		}
	}
	rdb := cfg.Redis
	if rdb == nil {
		conn, err := store.Open(cfg.RedisURL)
		if err != nil {
			e.Close()
			return nil, err
		}
		e.conn, rdb = conn, conn
		if conn.Embedded {
			e.log.Warn("no redis_url configured: using an embedded in-memory Redis; everything is lost at exit")
		} else {
			// Addresses only: the URL's credentials stay out of the log.
			attrs := []any{"kind", string(conn.Kind), "addrs", strings.Join(conn.Addrs, ","), "tls", conn.TLS}
			if conn.MasterName != "" {
				attrs = append(attrs, "master", conn.MasterName)
			}
			e.log.Info("redis client opened", attrs...)
		}
		if e.tp != nil {
			// Spans of the commands that serve a traced operation, without
			// their arguments (event bodies).
			err := redisotel.InstrumentTracing(conn.UniversalClient, redisotel.WithTracerProvider(tracing.ChildOnly(e.tp)),
				redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false))
			if err != nil {
				e.Close()
				return nil, fmt.Errorf("boomerang: tracing redis: %w", err)
			}
		}
	}
	storeCfg := store.Config{Prefix: cfg.KeyPrefix, Partitions: cfg.Partitions, Logger: e.log,
		WaitReplicas: cfg.WaitReplicas, WaitTimeout: cfg.WaitTimeout}
	if !cfg.DisableMetrics {
		e.metrics = metrics.New(metrics.Config{MaxEventTypes: cfg.MetricsMaxEventTypes})
		rdb.AddHook(e.metrics.RedisHook())
		storeCfg.Observer = observer[store.Observer](e.metrics)
	}
	st, err := store.New(rdb, storeCfg)
	if err != nil {
		e.Close()
		return nil, err
	}
	e.st = st
	if e.metrics != nil {
		e.metrics.ReadFrom(st)
	}
	e.dispatcher, err = callback.NewDispatcher(st, callback.Config{
		Workers:              cfg.Callback.Workers,
		Timeout:              cfg.Callback.Timeout,
		Retry:                cfg.Callback.Retry,
		AllowPrivateNetworks: cfg.Callback.AllowPrivateNetworks,
		AllowedPorts:         cfg.Callback.AllowedPorts,
		SigningSecrets:       cfg.Callback.SigningSecrets,
		Method:               cfg.Callback.Method,
		Format:               cfg.Callback.Format,
		RouteOptions:         e.routeCallback,
		CloudEventsSource:    cfg.Callback.CloudEventsSource,
		Flow:                 e.flow,
		Lease:                cfg.Lease,
		PollInterval:         cfg.PollInterval,
		DrainTimeout:         cfg.ShutdownTimeout,
		TracerProvider:       e.tp,
		Logger:               e.log,
		Observer:             observer[callback.Observer](e.metrics),
	})
	if err != nil {
		e.Close()
		return nil, err
	}
	e.api = handler.NewServer(st, handler.ServerConfig{
		MaxBodyBytes:          cfg.MaxBodyBytes,
		MaxBatchEvents:        cfg.MaxBatchEvents,
		MaxBatchBytes:         cfg.MaxBatchBytes,
		MaxWaiters:            cfg.MaxWaiters,
		AllowPrivateCallbacks: cfg.Callback.AllowPrivateNetworks,
		AllowedCallbackPorts:  cfg.Callback.AllowedPorts,
		IngestTimeout:         cfg.IngestTimeout,
		RequestTimeout:        cfg.RequestTimeout,
		BacklogTarget:         cfg.BacklogTarget,
		APIKeys:               cfg.Auth.APIKeys,
		AdminKeys:             cfg.Auth.AdminKeys,
		TracerProvider:        e.tp,
		Logger:                e.log,
		Metrics:               e.apiMetrics(),
		Observer:              observer[handler.Observer](e.metrics),
		Settler:               settler{e},
	})
	e.forward = forwardPolicy.Client(0)
	if e.tp != nil {
		e.forward = tracing.Client(e.forward, e.tp)
	}
	return e, nil
}

// routeCallback returns how the route of eventType (its own, else the
// Wildcard's) asks its callbacks to be sent, for the dispatcher, which
// asks at each delivery.
func (e *Engine) routeCallback(eventType string) callback.Options {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt, _ := e.routes.Match(eventType)
	return rt.Callback
}

// forwardPolicy is the address policy of forward targets: the operator's
// own services, often on a private network, but never link-local or
// metadata addresses.
var forwardPolicy = outbound.Policy{AllowPrivate: true}

// observer returns the engine's metrics as an observer of type T (a
// package's Observer interface), or nil, that package's no-op, when
// metrics are off: never a nil *metrics.Metrics inside an interface.
func observer[T any](m *metrics.Metrics) T {
	var none T
	if m == nil {
		return none
	}
	return any(m).(T)
}

// apiMetrics is what Handler serves at /metrics: nothing when metrics are
// off or served apart (Config.SeparateMetrics).
func (e *Engine) apiMetrics() http.Handler {
	if e.metrics == nil || e.cfg.SeparateMetrics {
		return nil
	}
	return e.metrics.Handler()
}

// MetricsHandler serves the engine's Prometheus metrics (the README's
// Metrics section lists them), for a listener of the program's own: it
// asks for no API key. Handler serves the same at GET /metrics unless
// Config.SeparateMetrics is set. With Config.DisableMetrics it answers 404.
//
// A scrape reads the queues' state from Redis in one round trip, bounded
// by 2s; when Redis does not answer, those metrics are left out of it.
func (e *Engine) MetricsHandler() http.Handler {
	if e.metrics == nil {
		return http.NotFoundHandler()
	}
	return e.metrics.Handler()
}

// Config returns the engine's configuration, with every default filled in.
func (e *Engine) Config() Config { return e.cfg }

// Store returns the engine's store, for library mode:
// callback.NewEventHandler(e.Store()) runs events in-request while the
// engine delivers their callbacks.
func (e *Engine) Store() *store.Redis { return e.st }

// Handler returns the whole HTTP API, with panics recovered and JSON
// answers for unknown routes:
//
//	POST /event                          accept an event (202), or answer a repeat of its id
//	GET  /callback                       an event's record (?event_id=ID), or the recent ones
//	POST /callback                       a callback receiver that accepts anything (for demos)
//	GET  /events/{id}                    an event's record with its attempt history
//	GET  /dead-letters                   events, or their callbacks, that failed for good
//	GET  /destinations                   the flow state of outbound destinations
//	POST /events/{id}/retry              run a failed event again (operator)
//	POST /callback/{event_id}/redeliver  send an event's callback again (operator)
//	GET  /healthz, /readyz               liveness, and readiness (Redis answers); HEAD too
//	GET  /metrics                        Prometheus metrics (see MetricsHandler)
//
// It serves whether or not Run runs: an instance that only ingests is one
// that serves Handler and runs nothing.
func (e *Engine) Handler() http.Handler { return e.api.Handler() }

// Register adds the API's routes to a Gin router of your own, beside your
// routes. It adds neither /metrics (serve MetricsHandler where you like) nor
// the counting of requests (boomerang_http_requests_total), which are
// Handler's.
func (e *Engine) Register(r gin.IRoutes) { e.api.Register(r) }

// Run runs the event workers, the callback dispatcher, the reaper and the
// retention sweeper until ctx ends. Then it stops claiming work, lets what
// runs finish within Config.ShutdownTimeout and gives the rest back to
// Redis, where any instance takes it. It returns the first fatal error, or
// nil after a shutdown. An engine runs once at a time.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return ErrRunning
	}
	e.running = true
	routes := maps.Clone(e.routes)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running = false
		e.mu.Unlock()
	}()

	if err := e.checkStore(ctx); err != nil {
		return err
	}
	cfg := e.cfg
	proc, err := process.New(e.st, routes, process.Config{
		Workers: cfg.Workers, Retry: cfg.Retry, Lease: cfg.Lease, PollInterval: cfg.PollInterval,
		DrainTimeout: cfg.ShutdownTimeout, Flow: forwardFlow(cfg, routes), TracerProvider: e.tp, Logger: e.log,
		Observer: observer[process.Observer](e.metrics),
	})
	if err != nil {
		return err
	}
	reaper := worker.New(e.st.Inline(), func(j store.Job) store.Lease { return j.Lease }, e.reap, worker.Config{
		Name: "inline", Workers: reaperWorkers, Lease: cfg.Lease, PollInterval: reaperPoll,
		DrainTimeout: cfg.ShutdownTimeout, Logger: e.log,
	})
	e.log.Info("engine running", "workers", cfg.Workers, "callback_workers", cfg.Callback.Workers,
		"event_types", len(routes), "retention", cfg.Retention)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		fatal error
	)
	for _, part := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"events", proc.Run},
		{"callbacks", e.dispatcher.Run},
		{"reaper", reaper.Run},
		{"retention", e.sweep},
		{"ordering", e.healOrder},
		{"pacing", e.api.Run},
	} {
		wg.Go(func() {
			if err := part.run(ctx); err != nil {
				once.Do(func() { fatal = fmt.Errorf("boomerang: %s: %w", part.name, err) })
				cancel()
			}
		})
	}
	wg.Wait()
	e.log.Info("engine stopped")
	return fatal
}

// checkStore verifies that the store in Redis has the configured number
// of partitions (store.Redis.Check) before any worker starts. While Redis
// does not answer it retries, every checkRetry, until ctx ends: an engine
// may start before its Redis.
func (e *Engine) checkStore(ctx context.Context) error {
	const checkRetry = time.Second
	for {
		err := e.st.Check(ctx)
		if err == nil || errors.Is(err, store.ErrPartitions) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		e.log.Warn("cannot check the store; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(checkRetry):
		}
	}
}

// forwardFlow is the flow control of the forward routes' destinations:
// as configured, except that a destination named nowhere gets no cap on
// requests in flight unless Config.Flow sets one. A forward target is the
// operator's own service, whose concurrency Config.Workers already bounds;
// the breaker and any rate limit apply as configured.
func forwardFlow(cfg Config, routes process.Routes) store.Flow {
	f := store.Flow{Default: cfg.Flow, PerDestination: maps.Clone(cfg.Destinations)}
	if cfg.Flow.MaxInFlight == 0 {
		named := map[string]bool{}
		for url := range cfg.Destinations {
			named[store.DestinationOf(url)] = true
		}
		for _, rt := range routes {
			if rt.Dest != "" && !named[rt.Dest] {
				if f.PerDestination == nil {
					f.PerDestination = map[string]store.Limits{}
				}
				f.PerDestination[rt.Dest] = store.Limits{MaxInFlight: -1}
			}
		}
	}
	return callback.ResolveFlow(f)
}

// The reaper claims few events, rarely: only those of requests that died.
const (
	reaperWorkers = 4
	reaperPoll    = time.Second
)

// reapedError is the last error of an event whose in-request run was
// abandoned.
const reapedError = "the request running the event ended without recording an outcome (its process died?)"

// reap finishes an event run in-request (library mode) whose lease
// expired: its request died before AfterHandle. The event fails, with its
// fail callback; an operator can retry it (as a queued event, run by
// whatever logic is registered for its type).
func (e *Engine) reap(_ context.Context, j store.Job) store.Outcome {
	now := time.Now()
	rec := j.Record
	rec.Attempts = max(j.Attempt-1, 0) // this claim is not an attempt
	rec.Status, rec.LastError = event.StatusFailed, reapedError
	rec.UpdatedAt, rec.CompletedAt = now, now
	rec.AddAttempt(store.Attempt{Run: rec.Run, Number: rec.Attempts, StartedAt: now, Outcome: event.StatusFailed,
		Error: reapedError, Note: "in-request lease expired"})
	e.log.Warn("in-request event abandoned; failing it", "event_id", rec.ID, tracing.LogAttrOf(rec.TraceParent), "attempts", rec.Attempts)
	if e.metrics != nil {
		e.metrics.EventDeadLettered()
	}
	return store.Outcome{Lease: j.Lease, Record: rec, Callback: callback.NewRecord(rec)}
}

// sweep deletes settled events older than Config.Retention, and forgets
// destinations idle as long, every minute (or sooner for short
// retentions), until ctx ends.
// healOrderEvery is how often an engine repairs the ordering keys'
// sequences; healOrderKeys how many keys it looks at each time.
const (
	healOrderEvery = time.Second
	healOrderKeys  = 500
)

// healOrder repairs the ordering keys' sequences every healOrderEvery,
// those looked at longest ago first (store.Redis.HealOrder): a crash
// between an event's end and its sequence's advance holds the key's next
// event up until then.
func (e *Engine) healOrder(ctx context.Context) error {
	t := time.NewTicker(healOrderEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := e.st.HealOrder(ctx, time.Now(), healOrderKeys); err != nil && ctx.Err() == nil {
			e.log.Warn("healing ordering keys failed", "err", err)
		}
	}
}

func (e *Engine) sweep(ctx context.Context) error {
	retention := e.cfg.Retention
	t := time.NewTicker(min(time.Minute, retention/10))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := e.st.PruneDestinations(ctx, time.Now(), retention); err != nil {
			if ctx.Err() == nil {
				e.log.Warn("pruning idle destinations failed", "err", err)
			}
		} else if n > 0 {
			e.log.Info("retention: forgot idle destinations", "forgotten", n)
		}
		for range 100 { // bounded: at most 100 batches a tick
			n, err := e.st.Sweep(ctx, time.Now(), retention)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Warn("retention sweep failed", "err", err)
				}
				break
			}
			if n == 0 {
				break
			}
			e.log.Info("retention: deleted settled events", "deleted", n)
		}
	}
}

// Close stops taking events (POST /event answers 503 from now on), closes
// the Redis connection New opened, stopping the embedded Redis, and, when
// New made the tracer provider from the environment, flushes its spans
// (within tracerShutdownTimeout) and shuts it down. Call it after Run
// returned.
func (e *Engine) Close() error {
	if e.api != nil {
		e.api.Close()
	}
	var errs []error
	if e.conn != nil {
		errs = append(errs, e.conn.Close())
	}
	if e.ownTP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), tracerShutdownTimeout)
		defer cancel()
		if err := e.ownTP.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("boomerang: tracing: %w", err))
		}
	}
	return errors.Join(errs...)
}

// tracerShutdownTimeout bounds how long Close waits for the last spans to
// be exported.
const tracerShutdownTimeout = 5 * time.Second
