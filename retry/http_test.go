package retry_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/retry"
)

func TestRetryableStatus(t *testing.T) {
	tests := []struct {
		code int
		want bool
	}{
		{http.StatusRequestTimeout, true},
		{http.StatusTooManyRequests, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{http.StatusMovedPermanently, false},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusNotFound, false},
		{http.StatusConflict, false},
		{http.StatusRequestEntityTooLarge, false},
		{http.StatusUnprocessableEntity, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			if got := retry.RetryableStatus(tt.code); got != tt.want {
				t.Errorf("RetryableStatus(%d): got %t, want %t", tt.code, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	// HTTP dates have whole seconds, so now has none.
	now := time.Date(2024, 8, 20, 5, 21, 19, 0, time.UTC)
	tests := []struct {
		name string
		v    string
		want time.Duration
	}{
		{"absent", "", 0},
		{"blank", "   ", 0},
		{"seconds", "5", 5 * time.Second},
		{"seconds with spaces", " 5 ", 5 * time.Second},
		{"zero", "0", 0},
		{"negative", "-1", 0},
		{"not a number", "abc", 0},
		{"fraction", "1.5", 0},
		{"exactly a day", "86400", 24 * time.Hour},
		{"huge is capped at a day", "1000000000", 24 * time.Hour},
		{"largest int64 is capped at a day", "9223372036854775807", 24 * time.Hour},
		{"IMF-fixdate ahead", now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{"RFC 850 date ahead", now.Add(20 * time.Second).Format(time.RFC850), 20 * time.Second},
		{"ANSI C date ahead", now.Add(30 * time.Second).Format(time.ANSIC), 30 * time.Second},
		{"date now", now.Format(http.TimeFormat), 0},
		{"date past", now.Add(-10 * time.Second).Format(http.TimeFormat), 0},
		{"malformed date", "Tue, 20 Aug 2024 25:99:00 GMT", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retry.ParseRetryAfter(tt.v, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q): got %s, want %s", tt.v, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfterBeyondInt64(t *testing.T) {
	now := time.Date(2024, 8, 20, 5, 21, 19, 0, time.UTC)
	const v = "99999999999999999999" // valid delay-seconds (1*DIGIT), RFC 9110 section 10.2.3
	if got, want := retry.ParseRetryAfter(v, now), 24*time.Hour; got != want {
		t.Errorf("ParseRetryAfter(%q): got %s, want %s", v, got, want)
	}
}
