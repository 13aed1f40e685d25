// Package handler is Boomerang's HTTP side, on Gin, and nothing else: the
// seed-compatible adapter NewGinEventHandler, and the server's API (Server:
// /event, /callback, /events/{id}, dead letters, operator actions, health),
// which boomerang.Engine.Handler serves. The engine that runs queued events
// lives in the module's root package.
package handler

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/cenkalti/backoff/v4"
	"github.com/gin-gonic/gin"
)

// GinEventHandlerFunc is the business logic of an event in a Gin service.
// It returns nil on success; an error marked with retry.Permanent (or
// backoff.Permanent, as in the original package) is not retried.
type GinEventHandlerFunc[T any] func(ctx *gin.Context, msg event.EventMessage[T]) error

// Option configures NewGinEventHandler.
type Option func(*ginConfig)

// RetryPolicy is the backoff of the business logic's in-request retries.
type RetryPolicy = retry.Policy

type ginConfig struct {
	retry    RetryPolicy
	maxBytes int64
	log      *slog.Logger
}

// In-request retry defaults: the caller is waiting, so they are shorter
// than the engine's workers' (boomerang.Config.Retry).
const (
	DefaultInlineMaxAttempts     = 3
	DefaultInlineInitialInterval = 100 * time.Millisecond
	DefaultInlineMaxInterval     = time.Second
	DefaultInlineMaxElapsedTime  = 10 * time.Second
	// DefaultMaxBodyBytes is the largest request body accepted: 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
)

// WithRetryPolicy sets the backoff of the business logic's in-request
// retries. Zero fields take the in-request defaults: 3 attempts, 100ms
// initial interval, 1s max interval, 10s max elapsed time (and the retry
// package's multiplier 2 and randomization 0.5).
func WithRetryPolicy(p RetryPolicy) Option { return func(c *ginConfig) { c.retry = p } }

// WithMaxBodyBytes sets the largest request body accepted, as sent and,
// for a gzip body, decompressed; a larger one is answered 413. Default
// 1 MiB.
func WithMaxBodyBytes(n int64) Option { return func(c *ginConfig) { c.maxBytes = n } }

// WithLogger sets the adapter's logger. Default slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *ginConfig) { c.log = l } }

// NewGinEventHandler returns a Gin handler that runs an event through
// eventHandler and fn, as the original event package did:
//
//  1. read the body, gzip-decompressed when its Content-Encoding says so (413 over the limit,
//     415 for another encoding), and eventHandler.UnmarshalEventMessage it (400 on error);
//  2. eventHandler.BeforeHandle (an error answers with its HTTPStatus() if it has one, else 500);
//  3. fn, retried with exponential backoff under the retry policy;
//  4. eventHandler.AfterHandle with fn's final error, and the attempts in its context
//     (event.AttemptsFromContext);
//  5. answer 200 {"status":"success"}, or 500 {"error": ...}.
//
// A panic in fn is logged with its stack and becomes an *event.PanicError
// of that attempt, retried like any other error (as the engine's workers
// do).
func NewGinEventHandler[T any](fn GinEventHandlerFunc[T], eventHandler event.EventHandler[T], opts ...Option) gin.HandlerFunc {
	cfg := ginConfig{maxBytes: DefaultMaxBodyBytes, log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.retry = inlinePolicy(cfg.retry)
	return func(c *gin.Context) {
		data, berr := readBody(c.Writer, c.Request, cfg.maxBytes)
		if berr != nil {
			berr.respond(c)
			return
		}
		msg, err := eventHandler.UnmarshalEventMessage(data)
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		if err := eventHandler.BeforeHandle(c, msg); err != nil {
			respondError(c, err)
			return
		}
		attempts, result := runWithRetries(c, fn, msg, cfg.retry, cfg.log)
		if err := eventHandler.AfterHandle(event.ContextWithAttempts(c, attempts), msg, result); err != nil {
			cfg.log.Error("recording the event outcome failed", "err", err)
			respondError(c, err)
			return
		}
		if result != nil {
			c.JSON(http.StatusInternalServerError, gin.H{"error": result.Error()})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "success"})
	}
}

func inlinePolicy(p RetryPolicy) RetryPolicy {
	return p.Or(RetryPolicy{
		MaxAttempts:     DefaultInlineMaxAttempts,
		InitialInterval: DefaultInlineInitialInterval,
		MaxInterval:     DefaultInlineMaxInterval,
		MaxElapsedTime:  DefaultInlineMaxElapsedTime,
	}).WithDefaults()
}

// runWithRetries runs fn until it succeeds, fails permanently, or the
// policy or the request's context ends, and returns every attempt made.
func runWithRetries[T any](c *gin.Context, fn GinEventHandlerFunc[T], msg event.EventMessage[T], p RetryPolicy, log *slog.Logger) ([]event.Attempt, error) {
	var attempts []event.Attempt
	op := func() error {
		a := event.Attempt{Number: len(attempts) + 1, StartedAt: time.Now()}
		a.Err = callSafely(c, fn, msg, log)
		if retry.IsPermanent(a.Err) {
			a.Err = backoff.Permanent(a.Err) // backoff.Retry knows only its own mark
		}
		a.Duration = time.Since(a.StartedAt)
		attempts = append(attempts, a)
		return a.Err
	}
	err := backoff.Retry(op, backoff.WithContext(p.NewBackOff(), c.Request.Context()))
	return attempts, err
}

func callSafely[T any](c *gin.Context, fn GinEventHandlerFunc[T], msg event.EventMessage[T], log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			pe := event.NewPanicError(r)
			log.Error("business logic panicked", "event_type", msg.GetEventType(), "panic", fmt.Sprint(r), "stack", string(pe.Stack))
			err = pe
		}
	}()
	return fn(c, msg)
}

// respondError answers with err's HTTPStatus() when it has one, else 500.
func respondError(c *gin.Context, err error) {
	var dup *event.DuplicateError
	if errors.As(err, &dup) && dup.HTTPStatus() == http.StatusOK {
		c.JSON(http.StatusOK, gin.H{"status": "success", "event_id": dup.ID, "duplicate": true})
		return
	}
	code := http.StatusInternalServerError
	var hs interface{ HTTPStatus() int }
	if errors.As(err, &hs) {
		code = hs.HTTPStatus()
	}
	c.JSON(code, gin.H{"error": err.Error()})
}
