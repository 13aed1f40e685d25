package process

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/retry"
)

// Event is an event as the workers run it.
type Event struct {
	ID      string
	Type    string
	Attempt int // 1 for the first
	// Body is the event's JSON as it was accepted: id, event_type,
	// timestamp, payload, metadata and callback.
	Body []byte
}

// Logic is the business logic of an event. It returns nil on success; an
// error marked retry.Permanent (or backoff.Permanent) fails the event at
// once; any other error is retried under the route's policy, no sooner than
// a retry.After asks.
type Logic func(ctx context.Context, ev Event) error

// Accept is the logic that succeeds without doing anything.
func Accept() Logic {
	return func(context.Context, Event) error { return nil }
}

// maxForwardResponse bounds what is read of a forward target's answer.
const maxForwardResponse = 64 << 10

// maxErrorExcerpt bounds the target's error message kept in the record.
const maxErrorExcerpt = 200

// Forward is the logic that POSTs the event's body to url with client,
// with the attempt's trace context as its traceparent header. A 2xx
// answer is success; 5xx, 408, 429 and network errors are retried (honouring
// Retry-After); any other answer fails the event for good.
//
// The error's message is what API clients see as last_error: the class of
// a failed request (outbound.Describe: "connection refused", "timeout"),
// or "HTTP <status>" followed by the target's own {"error": "..."} text, if
// any; never an address or the URL. Log it with outbound.Redact.
func Forward(url string, client *http.Client) Logic {
	return func(ctx context.Context, ev Event) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.Body))
		if err != nil {
			return retry.Permanent(outbound.Fail(err))
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Boomerang-Forward/1")
		req.Header.Set("Idempotency-Key", ev.ID)
		req.Header.Set("Boomerang-Event-Id", ev.ID)
		req.Header.Set("Boomerang-Attempt", strconv.Itoa(ev.Attempt))
		tracing.Inject(ctx, req.Header) // the attempt's trace context: traceparent, tracestate
		resp, err := client.Do(req)
		if err != nil {
			return outbound.Fail(err)
		}
		defer resp.Body.Close()
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxForwardResponse))
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxForwardResponse))
		code := resp.StatusCode
		if code >= 200 && code < 300 {
			return nil
		}
		err = &outbound.StatusError{Code: code, Detail: errorDetail(snippet)}
		return retry.HTTPAnswer(err, code, resp.Header.Get("Retry-After"), time.Now())
	}
}

// errorDetail returns ": <message>" from a JSON {"error": "..."} answer,
// cut short on a character boundary, or "".
func errorDetail(body []byte) string {
	var v struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil || v.Error == "" {
		return ""
	}
	return ": " + cut(v.Error, maxErrorExcerpt)
}

// cut returns s shortened to at most n bytes without splitting a UTF-8
// sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
