// Package client is a Go client of Boomerang's HTTP API for producers: it
// sends events (Send, SendBatch), reads their records (Get) and waits for
// their outcome (Wait), and verifies the signed callbacks Boomerang sends
// back (Verifier, VerifyCallback).
//
// Sending is safe to retry: an event without an id gets one from the client
// (event.NewID) before its first request, so every retry carries the same id
// and the server recognises a repeat (200, nothing runs twice) instead of
// recording the event again.
//
// The package speaks the API described in the server's OpenAPI document
// (GET /openapi.json) and imports none of the server's code: of this
// module only the event package (standard library only), and beyond it
// cenkalti/backoff and the Standard Webhooks library.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Config's zero fields.
const (
	// DefaultTimeout bounds one request. The server answers POST /event
	// within its ingest_timeout (5s) and other requests within its
	// request_timeout (3s), then 503.
	DefaultTimeout = 10 * time.Second
	// DefaultLongPoll is how long one request of Wait asks the server to
	// hold it.
	DefaultLongPoll = 25 * time.Second
)

// Config tunes a Client. The zero Config works: no API key,
// http.DefaultClient, and the defaults documented on each field.
type Config struct {
	// APIKey, when set, is sent with every request as
	// "Authorization: Bearer <key>". Default "": none (a server without
	// auth.api_keys).
	APIKey string
	// HTTPClient sends the requests. Default http.DefaultClient. Its own
	// Timeout, if any, must leave room for Wait's long polls (LongPoll).
	HTTPClient *http.Client
	// Timeout bounds each request (each attempt of Send, each poll of
	// Wait on top of its LongPoll); the ctx of the call bounds them all.
	// Default DefaultTimeout (10s).
	Timeout time.Duration
	// Retry is the policy of Send and SendBatch. Zero fields take their
	// defaults (see RetryPolicy).
	Retry RetryPolicy
	// LongPoll is how long one request of Wait asks the server to hold
	// it until the event is finished (GET /callback?wait=N, whole
	// seconds). Default DefaultLongPoll (25s); a negative value sends no
	// wait parameter, so Wait only polls.
	LongPoll time.Duration
}

// Client sends events to one Boomerang server and reads their records. It
// is safe for concurrent use.
type Client struct {
	base string // the base URL, without a trailing slash
	cfg  Config // with defaults set
}

// New returns a client of the server at baseURL, such as
// "http://127.0.0.1:8080" (a path, such as "https://example.com/boomerang",
// prefixes every route). It makes no request.
func New(baseURL string, cfg Config) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: must be an absolute http or https URL", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q: must have no query or fragment", baseURL)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("client: timeout must not be negative, got %s", cfg.Timeout)
	}
	if err := cfg.Retry.check(); err != nil {
		return nil, err
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.LongPoll == 0 {
		cfg.LongPoll = DefaultLongPoll
	}
	cfg.Retry = cfg.Retry.withDefaults()
	return &Client{base: strings.TrimSuffix(u.String(), "/"), cfg: cfg}, nil
}

// maxAnswer bounds how much of an answer of the API is read. A batch of 500
// repeats, each with its record, is well below it.
const maxAnswer = 8 << 20

// answer is a response of the API, read whole.
type answer struct {
	status     int
	body       []byte
	retryAfter time.Duration // from a Retry-After header; 0 without one
}

// do sends one request, bounded by timeout, and reads its answer. body may
// be nil. A non-nil error is a transport error: the request may or may not
// have reached the server.
func (c *Client) do(ctx context.Context, method, path string, body []byte, timeout time.Duration) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return answer{}, err // cut short: as unknown as no answer
	}
	if len(b) > maxAnswer {
		return answer{}, fmt.Errorf("answer larger than %d bytes", maxAnswer)
	}
	return answer{status: resp.StatusCode, body: b, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}, nil
}

// decode reads a JSON answer of status code a.status into v, or returns
// its *APIError when the status is not one of ok.
func (a answer) decode(v any, ok ...int) error {
	for _, code := range ok {
		if a.status == code {
			if err := json.Unmarshal(a.body, v); err != nil {
				return fmt.Errorf("HTTP %d: unreadable answer: %w", a.status, err)
			}
			return nil
		}
	}
	return a.apiError()
}

// apiError is the *APIError of an answer: the server's {"error", "field",
// "event_id"}, or the status text when the body is not that (a proxy's
// page).
func (a answer) apiError() *APIError {
	e := &APIError{StatusCode: a.status}
	var body struct {
		Error   string `json:"error"`
		Field   string `json:"field"`
		EventID string `json:"event_id"`
	}
	if json.Unmarshal(a.body, &body) == nil {
		e.Message, e.Field, e.EventID = body.Error, body.Field, body.EventID
	}
	if e.Message == "" {
		e.Message = http.StatusText(a.status)
	}
	return e
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
// Anything else, or a time past, is 0.
func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// sleep waits d, or until ctx ends, and returns ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
