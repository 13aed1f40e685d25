package handler

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/batch"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/internal/wire"
	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// ServerConfig tunes a Server. The zero value works.
type ServerConfig struct {
	// MaxBodyBytes is the largest event accepted, as sent and, for a gzip
	// body, decompressed; a larger one is answered 413. Default 1 MiB.
	MaxBodyBytes int64
	// MaxBatchEvents is the most events one POST /events takes (413
	// above). Default DefaultMaxBatchEvents.
	MaxBatchEvents int
	// MaxBatchBytes is the largest body POST /events accepts, as sent and
	// decompressed (413 above); each of its events is also bounded by
	// MaxBodyBytes. Default DefaultMaxBatchBytes.
	MaxBatchBytes int64
	// AllowPrivateCallbacks accepts callback URLs on loopback and private
	// addresses. Link-local and metadata addresses are always refused.
	AllowPrivateCallbacks bool
	// AllowedCallbackPorts, when set, are the only ports a callback URL may
	// name (80 and 443 when it names none); others are answered 400.
	AllowedCallbackPorts []uint16
	// IngestTimeout bounds how long POST /event waits for Redis before it
	// answers 503. Default DefaultIngestTimeout.
	IngestTimeout time.Duration
	// RequestTimeout bounds how long the other requests that need Redis
	// (GET /callback, GET /events/{id}, GET /dead-letters, retry,
	// redeliver) wait for it before they answer 503; /readyz has its own
	// ReadyTimeout. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// APIKeys, when not empty, are the keys every endpoint but /healthz,
	// /readyz and the demo receiver POST /callback requires, as
	// "Authorization: Bearer <key>".
	APIKeys []string
	// AdminKeys, when not empty, are the keys the operator actions (retry,
	// redeliver) require instead of APIKeys.
	AdminKeys []string
	// BacklogTarget is the backlog of due events and callbacks (of all
	// instances) past which POST /event slows down: each event waits 20µs
	// per event of excess, at most 250ms, so that producers slow to the
	// pace of the workers instead of starving them. Pacing works while Run
	// runs. Default DefaultBacklogTarget; -1 turns pacing off.
	BacklogTarget int
	// Metrics, when set, is served by Handler at GET /metrics, behind
	// APIKeys like the other endpoints (boomerang.Engine.MetricsHandler is
	// one). Register does not add it: a router of your own may serve its
	// own /metrics. Default: no /metrics route.
	Metrics http.Handler
	// Observer is told of every request Handler serves and of every event
	// accepted, for metrics. Default: nobody.
	Observer Observer
	// TracerProvider makes the span of each POST /event, which continues
	// the producer's traceparent and whose context is stored with the
	// event, and of each enqueue. Default: none (no spans), and the
	// producer's own context is stored, so it still propagates.
	TracerProvider trace.TracerProvider
	// Settler, when set, settles at ingest the events whose route needs no
	// work (boomerang.Engine.Accept's): their outcome is recorded with them
	// (store.NewEvent.Settled). Default: every event is queued for the
	// workers.
	Settler Settler
	// MaxWaiters is how many requests may wait at once for an event's
	// outcome (Prefer: wait on POST /event, ?wait on GET /callback); past
	// it a request is answered at once, as without a wait. Default
	// DefaultMaxWaiters; -1 turns waiting off.
	MaxWaiters int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// Settler decides at ingest the outcome of the events that need no work.
type Settler interface {
	// Settle returns rec's outcome decided at now, or nil to queue the
	// event for the workers.
	Settle(rec store.Record, now time.Time) *store.Settled
	// Settled is told of each event recorded with the outcome Settle
	// decided (not of a repeat of an id already recorded).
	Settled(st *store.Settled)
}

// Observer is told what the API does, for metrics. Its methods are called
// on every request, so they must be quick.
type Observer interface {
	// Request reports a request served by Handler: route is its route's
	// pattern ("/events/:id", never the path itself), or "" when it
	// matched no route; method is its method when it matched a route,
	// else ""; code is the status answered.
	Request(route, method string, code int)
	// EventAccepted reports an event accepted (202): recorded for the first
	// time.
	EventAccepted()
}

type nopObserver struct{}

func (nopObserver) Request(string, string, int) {}
func (nopObserver) EventAccepted()              {}

// Server is Boomerang's HTTP API over a store (boomerang.Engine.Handler
// serves it):
//
//	POST /event                          accept an event (202), or answer a repeat of its id;
//	                                     Boomerang's JSON, or a CloudEvent (structured or binary mode;
//	                                     batch mode is answered as POST /events answers)
//	POST /events                         accept a batch of events, one result per item; Boomerang's
//	                                     JSON, or CloudEvents (application/cloudevents-batch+json)
//	GET  /callback                       an event's record (?event_id=ID), or the recent ones
//	POST /callback                       a callback receiver that accepts anything (for demos)
//	GET  /events/{id}                    an event's record with its attempt history
//	DELETE /events/{id}                  cancel an event that has not started
//	GET  /dead-letters                   events, or their callbacks, that failed for good
//	GET  /destinations                   the flow state of outbound destinations
//	POST /events/{id}/retry              run a failed event again (operator)
//	POST /callback/{event_id}/redeliver  send an event's callback again (operator)
//	POST /dead-letters/retry             retry dead letters by ids or filter (operator)
//	POST /dead-letters/redeliver         redeliver failed callbacks by ids or filter (operator)
//	GET  /healthz, /readyz               liveness, and readiness (Redis answers); HEAD too
//	GET  /openapi.json                   the OpenAPI 3.1 description of all of these
//	GET  /metrics                        metrics, when ServerConfig.Metrics is set
//	GET  /ui                             the web console (Handler only; no API key)
type Server struct {
	st     *store.Redis
	cfg    ServerConfig
	guard  outbound.Policy
	ingest *batch.Committer[store.NewEvent, error]
	log    *slog.Logger
	user   gin.HandlerFunc // auth of the API
	admin  gin.HandlerFunc // auth of the operator actions
	pace   *pacer
	tracer trace.Tracer // nil: tracing off
	// waiters, nil when waiting is off.
	waiters *store.Waiters
}

// ingestLinger is how long an ingest batch waits for more events after its
// first: a little latency for far fewer Redis round trips under load.
const ingestLinger = 300 * time.Microsecond

// Timeouts of the API: how long a request waits for Redis before it
// answers 503. DefaultIngestTimeout and DefaultRequestTimeout are those of
// a ServerConfig that names none.
const (
	DefaultIngestTimeout  = 5 * time.Second
	DefaultRequestTimeout = 3 * time.Second
	// ReadyTimeout bounds GET /readyz: a Redis that does not answer a PING
	// within it is not ready.
	ReadyTimeout = time.Second
)

// NewServer returns the API over st. It starts nothing: the ingest batcher
// starts with the first event, pacing with Run. Close releases it.
func NewServer(st *store.Redis, cfg ServerConfig) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBatchEvents <= 0 {
		cfg.MaxBatchEvents = DefaultMaxBatchEvents
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.IngestTimeout <= 0 {
		cfg.IngestTimeout = DefaultIngestTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.BacklogTarget == 0 {
		cfg.BacklogTarget = DefaultBacklogTarget
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxWaiters == 0 {
		cfg.MaxWaiters = DefaultMaxWaiters
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	s := &Server{st: st, cfg: cfg, guard: outbound.Policy{AllowPrivate: cfg.AllowPrivateCallbacks, AllowedPorts: cfg.AllowedCallbackPorts}, log: cfg.Logger}
	traced := cfg.TracerProvider != nil
	if traced {
		s.tracer = cfg.TracerProvider.Tracer(tracing.InstrumentationName)
	}
	s.pace = newPacer(cfg.BacklogTarget, st.Due)
	if cfg.MaxWaiters > 0 {
		s.waiters = st.NewWaiters(cfg.MaxWaiters, cfg.RequestTimeout)
	}
	s.user = require(newKeyring(cfg.APIKeys))
	s.admin = s.user
	if len(cfg.AdminKeys) > 0 {
		s.admin = require(newKeyring(cfg.AdminKeys))
	}
	s.ingest = batch.New(func(ctx context.Context, evs []store.NewEvent) ([]error, error) {
		if traced {
			var span trace.Span
			ctx, span = s.enqueueSpan(ctx, evs)
			defer span.End()
		}
		return s.enqueue(ctx, evs)
	}, batch.Config{Timeout: cfg.IngestTimeout, Linger: ingestLinger})
	return s
}

// enqueue records a batch of events, settling at ingest those the Settler
// settles.
func (s *Server) enqueue(ctx context.Context, evs []store.NewEvent) ([]error, error) {
	now := s.cfg.Now()
	st := s.cfg.Settler
	if st == nil {
		return s.st.Enqueue(ctx, now, evs)
	}
	for i := range evs {
		ev := &evs[i]
		if ev.Delay > 0 { // a delay counts from now: the Settler sees the time
			ev.Record.DeliverAt, ev.Delay = now.Add(ev.Delay), 0
		}
		ev.Settled = st.Settle(ev.Record, now)
	}
	errs, err := s.st.Enqueue(ctx, now, evs)
	if err == nil {
		for i, e := range errs {
			if e == nil && evs[i].Settled != nil {
				st.Settled(evs[i].Settled)
			}
		}
	}
	return errs, err
}

// enqueueSpan starts the span of an enqueue (whose Redis commands are its
// children): for one event, a child of its POST /event span; for a batch,
// a span linked to each event's.
func (s *Server) enqueueSpan(ctx context.Context, evs []store.NewEvent) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithAttributes(attribute.Int("boomerang.batch_size", len(evs)))}
	if len(evs) == 1 {
		ctx = tracing.Restore(ctx, evs[0].Record.TraceParent, evs[0].Record.TraceState)
	} else {
		links := make([]trace.Link, 0, len(evs))
		for _, ev := range evs {
			sc := trace.SpanContextFromContext(tracing.Restore(context.Background(), ev.Record.TraceParent, ev.Record.TraceState))
			if sc.IsValid() {
				links = append(links, trace.Link{SpanContext: sc})
			}
		}
		opts = append(opts, trace.WithLinks(links...))
	}
	return s.tracer.Start(ctx, "enqueue", opts...)
}

// Run paces ingest to the backlog of all instances (see
// ServerConfig.BacklogTarget) until ctx ends. Then, as the process is
// stopping, the requests waiting for outcomes are answered at once, and
// later ones do not wait, so they do not hold up the server's shutdown.
func (s *Server) Run(ctx context.Context) error {
	s.pace.run(ctx)
	if s.waiters != nil {
		s.waiters.Close()
	}
	return nil
}

// Close stops taking events: requests in flight, and later ones, get 503.
// Requests waiting for outcomes stop waiting.
func (s *Server) Close() {
	s.ingest.Close()
	if s.waiters != nil {
		s.waiters.Close()
	}
}

// Register adds the API's routes to r. Every route that needs Redis
// answers within a bound: POST /event within IngestTimeout, /readyz within
// ReadyTimeout, the others within RequestTimeout.
func (s *Server) Register(r gin.IRoutes) {
	bounded := deadline(s.cfg.RequestTimeout)
	r.POST("/event", s.user, s.postEvent)   // bounded by IngestTimeout
	r.POST("/events", s.user, s.postEvents) // bounded by IngestTimeout
	r.GET("/callback", s.user, unlessWaiting(bounded), s.getCallback)
	r.POST("/callback", s.receiveCallback)
	r.GET("/events/:id", s.user, bounded, s.getEvent)
	r.DELETE("/events/:id", s.user, bounded, s.deleteEvent)
	r.GET("/dead-letters", s.user, bounded, s.getDeadLetters)
	r.GET("/destinations", s.user, bounded, s.getDestinations)
	r.POST("/events/:id/retry", s.admin, bounded, s.retryEvent)
	r.POST("/callback/:event_id/redeliver", s.admin, bounded, s.redeliverCallback)
	r.POST("/dead-letters/retry", s.admin, bounded, s.retryDeadLetters)
	r.POST("/dead-letters/redeliver", s.admin, bounded, s.redeliverDeadLetters)
	r.GET("/healthz", healthz)
	r.HEAD("/healthz", healthz)
	r.GET("/readyz", s.readyz)
	r.HEAD("/readyz", s.readyz)
	r.GET("/openapi.json", serveOpenAPI)
}

// answer writes code with body, or, for a HEAD request, code alone: load
// balancers probe health with HEAD.
func answer(c *gin.Context, code int, body gin.H) {
	if c.Request.Method == http.MethodHead {
		c.Status(code)
		return
	}
	c.JSON(code, body)
}

func healthz(c *gin.Context) { answer(c, http.StatusOK, gin.H{"status": "ok"}) }

// Handler returns a Gin engine serving the API, with panics recovered and
// JSON answers for unknown routes, GET /metrics when ServerConfig.Metrics
// is set, and the web console at /ui. Every request it serves is told to ServerConfig.Observer.
func (s *Server) Handler() http.Handler {
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.Use(s.observe, s.recoverer)
	s.Register(e)
	if s.cfg.Metrics != nil {
		e.GET("/metrics", s.user, gin.WrapH(s.cfg.Metrics))
	}
	registerConsole(e)
	e.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"error": "no such route"}) })
	e.NoMethod(func(c *gin.Context) { c.JSON(http.StatusMethodNotAllowed, gin.H{"error": "method not allowed"}) })
	return e
}

// observe tells the Observer of each request, by route pattern: the path
// itself could be anything a client sends. It also writes the access log:
// one line per request at level info, with the method, the route pattern
// (never the path or the query, which may carry ids and tokens), the
// status and the duration; never a body.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route, method := c.FullPath(), ""
	if route != "" {
		method = c.Request.Method // one of the route's: bounded
	}
	s.cfg.Observer.Request(route, method, c.Writer.Status())
	if s.log.Enabled(c.Request.Context(), slog.LevelInfo) {
		if route == "" {
			route = "unmatched"
		}
		s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
			slog.String("method", c.Request.Method), slog.String("route", route),
			slog.Int("status", c.Writer.Status()), slog.Duration("duration", time.Since(start)))
	}
}

func (s *Server) recoverer(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("request handler panicked", "method", c.Request.Method, "path", c.FullPath())
			c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
		}
	}()
	c.Next()
}

func (s *Server) postEvent(c *gin.Context) {
	format, err := wire.FormatOf(c.Request.Header)
	if err == nil && format == wire.CloudEventBatch {
		// CloudEvents batch mode: a batch, answered as POST /events
		// answers one, item by item.
		s.postEvents(c)
		return
	}
	// The span continues the producer's traceparent; its context is
	// stored with the event, for the instance that runs it.
	// Tracing off, the producer's context itself is stored.
	reqCtx := tracing.Extract(c.Request.Context(), c.Request.Header)
	span := trace.SpanFromContext(reqCtx)
	if s.tracer != nil {
		reqCtx, span = s.tracer.Start(reqCtx, "POST /event", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.request.method", http.MethodPost), attribute.String("http.route", "/event"))
		defer func() {
			code := c.Writer.Status()
			span.SetAttributes(attribute.Int("http.response.status_code", code))
			if code >= 500 {
				span.SetStatus(codes.Error, http.StatusText(code))
			}
		}()
	}
	if err != nil {
		c.JSON(http.StatusUnsupportedMediaType, gin.H{"error": err.Error()})
		return
	}
	body, berr := readBody(c.Writer, c.Request, s.cfg.MaxBodyBytes)
	if berr != nil {
		berr.respond(c)
		return
	}
	ev, err := parseEvent(format, c.Request.Header, body, s.guard)
	if err != nil {
		fieldError(c, err)
		return
	}
	ev.Record.TraceParent, ev.Record.TraceState = tracing.Save(reqCtx)
	wait := preferWait(c.Request.Header)
	if span.IsRecording() {
		span.SetAttributes(attribute.String(tracing.AttrEventID, ev.Record.ID), attribute.String(tracing.AttrEventType, ev.Record.EventType))
	}
	s.pace.wait(reqCtx)
	ctx, cancel := context.WithTimeout(reqCtx, s.cfg.IngestTimeout)
	defer cancel()
	id := ev.Record.ID
	res, err := s.ingest.Submit(ctx, ev)
	if err != nil {
		s.outcomeUnknown(c, id, tracing.LogAttr(reqCtx), err)
		return
	}
	var dup *store.DuplicateError
	if errors.As(res, &dup) {
		if dup.Record.BodyHash != ev.Record.BodyHash {
			c.JSON(http.StatusConflict, gin.H{"error": "event " + id + " was already accepted with a different body"})
			return
		}
		snap, err := s.st.Get(ctx, id)
		if err == nil && !snap.Record.Status.Terminal() && wait > 0 {
			if w, ok, werr := s.waitFor(reqCtx, id, wait); ok && werr == nil {
				snap = w
				c.Header("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
			}
		}
		switch {
		case errors.Is(err, store.ErrNotFound): // deleted by retention meanwhile
			s.storeError(c, id, err)
		case err != nil:
			s.outcomeUnknown(c, id, tracing.LogAttr(reqCtx), err)
		default:
			c.JSON(http.StatusOK, newView(snap, false))
		}
		return
	}
	if wait > 0 && s.answerOutcome(c, reqCtx, ev, wait) {
		s.cfg.Observer.EventAccepted()
		return
	}
	// {"event_id":ID,"status":"queued","status_url":"/callback?event_id=ID"},
	// written directly: this answer is sent for every event. The id is
	// letters, digits and ._:- only, so it needs no escaping in JSON or in
	// the query.
	b := make([]byte, 0, 80+2*len(id))
	b = append(b, `{"event_id":"`...)
	b = append(b, id...)
	b = append(b, `","status":"queued","status_url":"/callback?event_id=`...)
	b = append(b, id...)
	b = append(b, `"}`...)
	s.cfg.Observer.EventAccepted()
	c.Data(http.StatusAccepted, "application/json; charset=utf-8", b)
}

// parseEvent reads the one event of a POST /event body in its format:
// Boomerang's JSON, or a CloudEvent in structured or binary mode.
func parseEvent(format wire.Format, h http.Header, body []byte, guard outbound.Policy) (store.NewEvent, error) {
	idemKey := h.Get("Idempotency-Key")
	switch format {
	case wire.CloudEvent:
		return wire.ParseCloudEvent(body, idemKey, guard)
	case wire.CloudEventBinary:
		return wire.ParseCloudEventBinary(h, body, idemKey, guard)
	default:
		return wire.Parse(body, idemKey, guard)
	}
}

// answerOutcome answers POST /event with Prefer: wait=N for ev, just
// recorded: 200 with its record when it reaches a terminal status within
// wait (at once when it was settled at ingest), with Preference-Applied.
// It returns false, having answered nothing, when the event is not
// terminal by then: the caller answers 202.
func (s *Server) answerOutcome(c *gin.Context, ctx context.Context, ev store.NewEvent, wait time.Duration) bool {
	snap, ok, err := s.waitFor(ctx, ev.Record.ID, wait)
	if !ok || err != nil || !snap.Record.Status.Terminal() {
		return false
	}
	c.Header("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
	c.JSON(http.StatusOK, newView(snap, false))
	return true
}

// outcomeUnknown answers 503 to POST /event when the store did not answer:
// the event may or may not be recorded (Redis may have run the enqueue
// script and lost the reply), so the answer names the event's id, with
// which a retry is always safe: a repeat is recognised, never run twice.
func (s *Server) outcomeUnknown(c *gin.Context, id string, traceID slog.Attr, err error) {
	msg := "event store unavailable: outcome unknown; retry with this event_id (safe: a repeat is recognised)"
	if errors.Is(err, store.ErrNotReplicated) {
		msg = "event recorded, but not confirmed by the replicas wait_replicas asks for: it could be lost with its Redis primary; retry with this event_id (safe: a repeat is recognised)"
	}
	s.log.Warn("event outcome unknown: store unavailable", "event_id", id, traceID, "err", err)
	c.Header("Retry-After", retryAfterSeconds)
	c.JSON(http.StatusServiceUnavailable, gin.H{"error": msg, "event_id": id})
}

func fieldError(c *gin.Context, err error) {
	var fe *event.FieldError
	if errors.As(err, &fe) {
		c.JSON(http.StatusBadRequest, gin.H{"error": fe.Error(), "field": fe.Field})
		return
	}
	c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
}

func (s *Server) getCallback(c *gin.Context) {
	wait, ok := waitParam(c)
	if !ok {
		return
	}
	if id, ok := c.GetQuery("event_id"); ok {
		if wait > 0 {
			s.waitRecord(c, id, wait)
			return
		}
		s.respondRecord(c, id, false)
		return
	}
	opts := store.ListOptions{Cursor: c.Query("cursor")}
	if opts.Limit, ok = parseLimit(c); !ok {
		return
	}
	if v := c.Query("status"); v != "" {
		st, err := event.ParseStatus(v)
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "status: must be queued, processing, retrying, succeeded, failed or canceled", "field": "status"})
			return
		}
		opts.Status = st
	}
	if v := c.Query("event_type"); v != "" {
		if err := event.ValidateEventType(v); err != nil {
			fieldError(c, err)
			return
		}
		opts.EventType = v
	}
	for _, b := range []struct {
		field string
		to    *time.Time
	}{{"since", &opts.Since}, {"until", &opts.Until}} {
		if v := c.Query(b.field); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				c.JSON(http.StatusBadRequest, gin.H{"error": b.field + ": must be an RFC 3339 time, such as 2026-11-25T12:00:00Z", "field": b.field})
				return
			}
			*b.to = t
		}
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Until.After(opts.Since) {
		c.JSON(http.StatusBadRequest, gin.H{"error": "until: must be after since", "field": "until"})
		return
	}
	snaps, next, err := s.st.List(c.Request.Context(), opts)
	if err != nil {
		s.storeError(c, "", err)
		return
	}
	views := make([]recordView, len(snaps))
	for i, snap := range snaps {
		views[i] = newView(snap, false)
	}
	out := gin.H{"events": views}
	if next != "" {
		out["next_cursor"] = next
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) getEvent(c *gin.Context) { s.respondRecord(c, c.Param("id"), true) }

func (s *Server) respondRecord(c *gin.Context, id string, withHistory bool) {
	if event.ValidateID(id) != nil {
		s.notFound(c, id)
		return
	}
	snap, err := s.st.Get(c.Request.Context(), id)
	if err != nil {
		s.storeError(c, id, err)
		return
	}
	v := newView(snap, withHistory)
	if r := snap.Record; r.OrderingKey != "" && r.Status == event.StatusQueued {
		head, err := s.st.OrderHead(c.Request.Context(), r.OrderingKey)
		if err != nil {
			s.storeError(c, id, err)
			return
		}
		if head != id {
			v.WaitingFor = head
		}
	}
	if withHistory { // GET /events/{id}: the payload too
		body, err := s.st.Body(c.Request.Context(), id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.storeError(c, id, err)
			return
		}
		var in struct {
			Payload json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(body, &in) == nil && len(in.Payload) > 0 && string(in.Payload) != "null" {
			v.Payload = in.Payload
		}
	}
	c.JSON(http.StatusOK, v)
}

// receiveCallback is a callback receiver for demos and smoke tests: it
// accepts any callback, so callback URLs can point at the server itself.
func (s *Server) receiveCallback(c *gin.Context) {
	io.Copy(io.Discard, io.LimitReader(c.Request.Body, 64<<10))
	s.log.Info("callback received", "webhook_id", c.GetHeader("webhook-id"))
	c.JSON(http.StatusOK, gin.H{"status": "received"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), ReadyTimeout)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		answer(c, http.StatusServiceUnavailable, gin.H{"status": "unavailable", "error": "redis does not answer"})
		return
	}
	answer(c, http.StatusOK, gin.H{"status": "ready"})
}

// parseLimit reads the limit query parameter (0 when absent), answering
// 400 and returning false when it is not a number from 1 to 1000.
func parseLimit(c *gin.Context) (int, bool) {
	v := c.Query("limit")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		c.JSON(http.StatusBadRequest, gin.H{"error": "limit: must be a number from 1 to 1000", "field": "limit"})
		return 0, false
	}
	return n, true
}
