package callback

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/internal/worker"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// RetryPolicy is the backoff of callback deliveries: see Config.Retry.
type RetryPolicy = retry.Policy

// Defaults of a Config: the delivery timeout, and the callback retry
// policy where it differs from the retry policy of events.
const (
	DefaultTimeout         = 10 * time.Second
	DefaultMaxAttempts     = 8
	DefaultInitialInterval = time.Second
	DefaultMaxInterval     = 5 * time.Minute
)

// DefaultFlow is the flow control of every destination (a callback URL's
// scheme://host:port) of a Config that names none: no cap on deliveries in
// flight across instances and no rate limit; the breaker opens after 5
// consecutive failures, or when half of at least 20 deliveries of the last
// 30s failed, and sends one probe after 5s. Whatever the limits, each
// dispatcher gives one destination at most three quarters of its workers
// (see LocalShare), so that one that hangs cannot take them all.
var DefaultFlow = store.Limits{
	FailureThreshold: 5, ErrorRate: 0.5, MinRequests: 20,
	Window: 30 * time.Second, Cooldown: 5 * time.Second,
}

// LocalShare is the most of its workers a dispatcher gives one
// destination: the rest stay free for the others while one hangs.
func LocalShare(workers int) int { return max(1, workers*3/4) }

// DefaultPause is how long a destination gets no delivery after a 429
// without a Retry-After.
const DefaultPause = time.Second

// DefaultRetry is the delivery policy of a Config that names none: 8
// attempts, 1s initial interval, 5m max interval, and retry's defaults for
// the rest (multiplier 2, randomization 0.5, max elapsed time 1h).
var DefaultRetry = RetryPolicy{
	MaxAttempts: DefaultMaxAttempts, InitialInterval: DefaultInitialInterval, MaxInterval: DefaultMaxInterval,
}.WithDefaults()

// Config tunes a Dispatcher. The zero value works.
type Config struct {
	// Workers is the number of deliveries in flight at once. Default 64.
	Workers int
	// Timeout bounds one delivery, response included. Default
	// DefaultTimeout.
	Timeout time.Duration
	// Retry is the delivery policy. Zero fields take DefaultRetry's.
	// The elapsed time counts from when the delivery was queued: the
	// moment the event's outcome was recorded, or a redelivery asked for.
	Retry RetryPolicy
	// AllowPrivateNetworks permits callbacks to loopback and private
	// addresses. Link-local and metadata addresses are always refused.
	AllowPrivateNetworks bool
	// AllowedPorts, when set, are the only ports callbacks are sent to.
	// Default: any port.
	AllowedPorts []uint16
	// Flow is the flow control of each destination. Zero fields of its
	// Default take DefaultFlow's (negative ones turn a limit off); a
	// destination of PerDestination, named by a URL of it, takes its own
	// limits, their zero fields taken from Default.
	Flow store.Flow
	// Method and Format are how a callback is sent when neither its event
	// nor its event type's route (RouteOptions) says: Default
	// event.CallbackPOST and event.CallbackJSON. GET with cloudevents is
	// refused.
	Method event.CallbackMethod
	Format event.CallbackFormat
	// RouteOptions, when set, returns how the route of an event type asks
	// its callbacks to be sent (zero fields: it does not say). It is
	// called for each delivery, so it must be quick and safe for
	// concurrent use. Default: routes say nothing.
	RouteOptions func(eventType string) Options
	// CloudEventsSource is the source attribute of callbacks sent as
	// CloudEvents, a URI-reference. Default DefaultCloudEventsSource.
	CloudEventsSource string
	// SigningSecrets sign every delivery with Standard Webhooks headers
	// (webhook-id, webhook-timestamp, webhook-signature): one v1 signature
	// per secret, so a new secret can be added before the old one is
	// retired. Secrets are "whsec_" and base64. None: no signature headers
	// (webhook-id is still sent).
	SigningSecrets []string
	// Client sends the callbacks. Default: a client that checks every
	// dialled address against AllowPrivateNetworks and never follows
	// redirects.
	Client *http.Client
	// Lease is how long a delivery stays claimed without renewal.
	// Default 30s.
	Lease time.Duration
	// PollInterval is the longest the dispatcher waits before looking for
	// due callbacks. Default 100ms.
	PollInterval time.Duration
	// DrainTimeout is how long Run waits for deliveries in flight when it
	// stops. Default 10s.
	DrainTimeout time.Duration
	// TracerProvider, when set, makes the span of each delivery, a child of
	// the event's stored trace context, and the client span of its request
	// (otelhttp). Unset: no spans, and every delivery still carries the
	// stored context as its traceparent header.
	TracerProvider trace.TracerProvider
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the dispatcher's logs. Default slog.Default().
	Logger *slog.Logger
	// Observer is told of every delivery attempt, for metrics. Default:
	// nobody.
	Observer Observer
}

// Observer is told of each delivery attempt: cb is the callback record
// after it, its Status telling the outcome (CallbackDelivered,
// CallbackRetrying or CallbackFailed), and d how long the attempt took.
// It is called on the senders' path, so it must be quick, and must not
// keep cb.
type Observer interface {
	Delivery(cb *store.Callback, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) Delivery(*store.Callback, time.Duration) {}

// maxResponseBytes bounds what is read of a receiver's answer.
const maxResponseBytes = 64 << 10

// Dispatcher delivers the callbacks queued in the store, with retries, from
// any number of instances at once.
type Dispatcher struct {
	cfg     Config
	policy  RetryPolicy
	signers []*standardwebhooks.Webhook
	pool    *worker.Pool[store.CallbackJob, store.CallbackOutcome]
	log     *slog.Logger
	tracer  trace.Tracer // nil: tracing off

	mu    sync.Mutex     // guards local
	local map[string]int // deliveries in flight here, by destination
}

// inFlight returns the deliveries this dispatcher has in flight, by
// destination, for the claim's local share.
func (d *Dispatcher) inFlight() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.local)
}

// NewDispatcher returns a Dispatcher delivering the callbacks of st.
func NewDispatcher(st *store.Redis, cfg Config) (*Dispatcher, error) {
	if st == nil {
		return nil, errors.New("callback: nil store")
	}
	p := cfg.Retry.Or(DefaultRetry)
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("callback: retry: %w", err)
	}
	signers, err := newSigners(cfg.SigningSecrets)
	if err != nil {
		return nil, err
	}
	cfg.Method, cfg.Format = cmp.Or(cfg.Method, event.CallbackPOST), cmp.Or(cfg.Format, event.CallbackJSON)
	if err := event.CheckCallback(cfg.Method, cfg.Format); err != nil {
		return nil, fmt.Errorf("callback: %w", err)
	}
	cfg.CloudEventsSource = cmp.Or(cfg.CloudEventsSource, DefaultCloudEventsSource)
	if err := CheckCloudEventsSource(cfg.CloudEventsSource); err != nil {
		return nil, fmt.Errorf("callback: cloudevents source: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Client == nil {
		cfg.Client = outbound.Policy{AllowPrivate: cfg.AllowPrivateNetworks, AllowedPorts: cfg.AllowedPorts}.Client(0)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	d := &Dispatcher{cfg: cfg, policy: p, signers: signers, log: cfg.Logger}
	if tp := cfg.TracerProvider; tp != nil {
		d.cfg.Client = tracing.Client(cfg.Client, tp)
		d.tracer = tp.Tracer(tracing.InstrumentationName)
	}
	cfg.Flow = ResolveFlow(cfg.Flow)
	d.local = map[string]int{}
	cfg.Flow.Local, cfg.Flow.LocalInFlight = LocalShare(cmp.Or(cfg.Workers, worker.DefaultWorkers)), d.inFlight
	d.pool = worker.New(st.Callbacks().WithFlow(cfg.Flow), func(j store.CallbackJob) store.Lease { return j.Lease }, d.deliver, worker.Config{
		Name: "callbacks", Workers: cfg.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval,
		DrainTimeout: cfg.DrainTimeout, Now: cfg.Now, Logger: cfg.Logger,
	})
	return d, nil
}

// Run delivers callbacks until ctx ends, then lets deliveries in flight
// finish (up to Config.DrainTimeout) and gives the rest back to the queue.
func (d *Dispatcher) Run(ctx context.Context) error { return d.pool.Run(ctx) }

// deliver makes one delivery attempt of a callback and returns its outcome.
func (d *Dispatcher) deliver(ctx context.Context, j store.CallbackJob) store.CallbackOutcome {
	cb := j.Callback
	// The delivery continues the event's trace, stored with its callback
	// record, on whichever instance sends it; its request carries it as
	// traceparent.
	ctx = tracing.Restore(ctx, cb.TraceParent, cb.TraceState)
	span := trace.SpanFromContext(ctx)
	if d.tracer != nil {
		ctx, span = d.tracer.Start(ctx, "callback delivery")
		defer span.End()
	}
	dest := store.DestinationOf(cb.URL)
	d.mu.Lock()
	d.local[dest]++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.local[dest]--; d.local[dest] <= 0 {
			delete(d.local, dest)
		}
		d.mu.Unlock()
	}()
	start := d.cfg.Now()
	code, err := d.send(ctx, &cb, d.options(&cb))
	end := d.cfg.Now()

	cb.Attempts = j.Attempt
	cb.UpdatedAt = end
	cb.LastResponseStatus = code
	cb.NextAttemptAt = time.Time{}
	del := store.Delivery{Number: j.Attempt, StartedAt: start, Duration: end.Sub(start), ResponseStatus: code}
	cb.LastError = ""
	if err != nil {
		cb.LastError = err.Error()
	}
	switch dec := d.policy.Decide(j.Attempt, cmp.Or(cb.QueuedAt, cb.CreatedAt), end, err); dec.Verdict {
	case retry.Succeeded:
		cb.Status, cb.DeliveredAt = event.CallbackDelivered, end
	case retry.Again:
		cb.Status, cb.NextAttemptAt = event.CallbackRetrying, dec.Due
	default:
		cb.Status = event.CallbackFailed
	}
	del.Outcome, del.Error = cb.Status, cb.LastError
	cb.AddDelivery(del)
	if ctx.Err() == nil { // else the pool drops the outcome: stopped, or the lease was lost
		d.cfg.Observer.Delivery(&cb, del.Duration)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String(tracing.AttrEventID, cb.EventID), attribute.String(tracing.AttrCallbackID, cb.ID),
			attribute.Int(tracing.AttrAttempt, j.Attempt), attribute.String("boomerang.outcome", cb.Status.String()))
		if err != nil {
			span.SetStatus(codes.Error, cb.LastError)
		}
	}
	// The log gets the details that LastError leaves out, with the URL
	// reduced to scheme://host/path: its query often holds a token.
	if cb.Status == event.CallbackFailed {
		d.log.Warn("callback delivery failed for good", "event_id", cb.EventID, tracing.LogAttr(ctx), "callback_id", cb.ID, "url", outbound.RedactURL(cb.URL), "attempts", cb.Attempts, "err", outbound.Redact(err))
	} else if err != nil {
		d.log.Info("callback delivery failed; will retry", "event_id", cb.EventID, tracing.LogAttr(ctx), "url", outbound.RedactURL(cb.URL), "attempt", j.Attempt, "next_attempt_at", cb.NextAttemptAt, "err", outbound.Redact(err))
	}
	return store.CallbackOutcome{Lease: j.Lease, Callback: cb, Flow: FlowOutcome(code, err)}
}

// ResolveFlow fills the flow's zero limits from DefaultFlow, and names its
// destinations as the scripts do (store.DestinationOf). Applying it twice
// changes nothing.
func ResolveFlow(f store.Flow) store.Flow {
	out := store.Flow{Default: f.Default.Or(DefaultFlow)}
	if len(f.PerDestination) > 0 {
		out.PerDestination = make(map[string]store.Limits, len(f.PerDestination))
		for url, l := range f.PerDestination {
			out.PerDestination[store.DestinationOf(url)] = l.Or(out.Default)
		}
	}
	return out
}

// FlowOutcome is what an outbound request's result says of its
// destination's health, for the destination's breaker: code is the
// answer's status (0 when there was none) and err the request's error,
// marked as retry marks it. Callback deliveries and forwards use it.
func FlowOutcome(code int, err error) string {
	switch {
	case err == nil:
		return store.FlowOK
	case code == 0 && retry.IsPermanent(err):
		return store.FlowNone // refused before sending: nothing was learnt of the receiver
	case code == http.StatusTooManyRequests:
		return store.FlowPause(cmp.Or(retry.AfterOf(err), DefaultPause))
	case retry.AfterOf(err) > 0:
		return store.FlowPause(retry.AfterOf(err))
	case code > 0 && code < 500 && code != http.StatusRequestTimeout:
		return store.FlowOK // it answers (3xx, 4xx): the request is what is wrong
	default:
		return store.FlowFailed
	}
}

// send delivers cb as o says and returns the response status and an error
// for anything but a 2xx, marked for retry.Decide: permanent, or retryable
// no sooner than a Retry-After asks. Every method and format is classified
// alike. The message of a failed request or of a non-2xx answer is only
// its class (outbound.Describe, outbound.Status), as the receiver's owner
// sees it in last_error; the details are for the log (outbound.Redact).
func (d *Dispatcher) send(ctx context.Context, cb *store.Callback, o Options) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, payload, err := d.request(ctx, cb, o)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "Boomerang-Callback/1")
	tracing.Inject(ctx, req.Header) // the delivery's trace context: traceparent, tracestate
	if err := d.sign(req.Header, cb.ID, payload); err != nil {
		return 0, retry.Permanent(err)
	}
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		if errors.Is(err, outbound.ErrForbidden) {
			return 0, retry.Permanent(outbound.Fail(err))
		}
		return 0, outbound.Fail(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return code, nil
	}
	return code, retry.HTTPAnswer(errors.New(outbound.Status(code)), code, resp.Header.Get("Retry-After"), d.cfg.Now())
}

// request returns the request of a delivery of cb as o says, and the body
// it carries (nil for a GET), which is what the signature covers.
func (d *Dispatcher) request(ctx context.Context, cb *store.Callback, o Options) (*http.Request, []byte, error) {
	if o.Method == event.CallbackGET {
		u, err := url.Parse(cb.URL)
		if err != nil {
			return nil, nil, retry.Permanent(outbound.Fail(err))
		}
		u.RawQuery = outcomeQuery(u.RawQuery, cb)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, nil, retry.Permanent(outbound.Fail(err))
		}
		return req, nil, nil
	}
	payload, err := body(cb)
	contentType := "application/json"
	if err == nil && o.Format == event.CallbackCloudEvents {
		payload, err = cloudEventBody(cb, d.cfg.CloudEventsSource, payload)
		contentType = CloudEventsContentType
	}
	if err != nil {
		return nil, nil, retry.Permanent(fmt.Errorf("callback: encode: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, nil, retry.Permanent(outbound.Fail(err))
	}
	req.Header.Set("Content-Type", contentType)
	return req, payload, nil
}

// ErrBadSecret is the error of a signing secret that is not "whsec_" then
// at least 16 characters of base64. It never holds the secret itself.
var ErrBadSecret = errors.New(`must be "whsec_" then at least 16 characters of base64`)

// CheckSigningSecret validates a signing secret of Config.SigningSecrets,
// returning ErrBadSecret or nil.
func CheckSigningSecret(sec string) error {
	_, err := parseSecret(sec)
	return err
}

func parseSecret(sec string) (*standardwebhooks.Webhook, error) {
	raw, ok := strings.CutPrefix(sec, "whsec_")
	if !ok || len(raw) < 16 {
		return nil, ErrBadSecret
	}
	wh, err := standardwebhooks.NewWebhook(sec)
	if err != nil {
		return nil, ErrBadSecret
	}
	return wh, nil
}

// newSigners parses signing secrets. Errors name the secret by position,
// never by value.
func newSigners(secrets []string) ([]*standardwebhooks.Webhook, error) {
	var out []*standardwebhooks.Webhook
	for i, sec := range secrets {
		wh, err := parseSecret(sec)
		if err != nil {
			return nil, fmt.Errorf("callback: signing secret %d: %w", i, err)
		}
		out = append(out, wh)
	}
	return out, nil
}

// sign sets the Standard Webhooks headers of a delivery of payload.
func (d *Dispatcher) sign(h http.Header, id string, payload []byte) error {
	h.Set(standardwebhooks.HeaderWebhookID, id)
	if len(d.signers) == 0 {
		return nil
	}
	now := d.cfg.Now()
	sigs := make([]string, len(d.signers))
	for i, wh := range d.signers {
		sig, err := wh.Sign(id, now, payload)
		if err != nil {
			return fmt.Errorf("callback: sign: %w", err)
		}
		sigs[i] = sig
	}
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, strings.Join(sigs, " "))
	return nil
}
