package retry

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryableStatus reports whether an HTTP response status is worth another
// attempt: 5xx, 408 Request Timeout and 429 Too Many Requests. Any other
// non-2xx status is permanent.
func RetryableStatus(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests
}

// ParseRetryAfter reads a Retry-After header value, in seconds or as an HTTP
// date, as a delay from now. It returns 0 when the value is absent, past or
// malformed. A delay is capped at 24 hours.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const maxSecs = int64(24 * time.Hour / time.Second)
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, maxSecs)) * time.Second
	} else if errors.Is(err, strconv.ErrRange) && v[0] != '-' {
		return time.Duration(maxSecs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// HTTPAnswer classifies err, the failure of a request answered with status
// code (not a 2xx): a status not worth another attempt marks err Permanent;
// a retryable one honours the answer's Retry-After header value with After.
func HTTPAnswer(err error, code int, retryAfter string, now time.Time) error {
	if !RetryableStatus(code) {
		return Permanent(err)
	}
	if d := ParseRetryAfter(retryAfter, now); d > 0 {
		return After(err, d)
	}
	return err
}
