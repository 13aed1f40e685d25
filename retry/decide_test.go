package retry_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/boomerang-events/boomerang/retry"
)

func TestDecide(t *testing.T) {
	p := noJitter(retry.Policy{MaxAttempts: 3, InitialInterval: time.Second, MaxInterval: 10 * time.Second, MaxElapsedTime: time.Minute})
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := first.Add(2 * time.Second)
	errBoom := errors.New("boom")
	tests := []struct {
		name    string
		attempt int
		now     time.Time
		err     error
		want    retry.Decision
	}{
		{"success", 1, now, nil, retry.Decision{Verdict: retry.Succeeded}},
		{"error retries after the interval", 1, now, errBoom, retry.Decision{Verdict: retry.Again, Due: now.Add(time.Second)}},
		{"second interval doubles", 2, now, errBoom, retry.Decision{Verdict: retry.Again, Due: now.Add(2 * time.Second)}},
		{"wrapped error retries", 1, now, fmt.Errorf("op: %w", errBoom), retry.Decision{Verdict: retry.Again, Due: now.Add(time.Second)}},
		{"attempts spent", 3, now, errBoom, retry.Decision{Verdict: retry.Failed}},
		{"elapsed time spent", 1, first.Add(time.Minute), errBoom, retry.Decision{Verdict: retry.Failed}},
		{"Permanent", 1, now, retry.Permanent(errBoom), retry.Decision{Verdict: retry.Failed}},
		{"wrapped Permanent", 1, now, fmt.Errorf("op: %w", retry.Permanent(errBoom)), retry.Decision{Verdict: retry.Failed}},
		{"backoff.Permanent", 1, now, backoff.Permanent(errBoom), retry.Decision{Verdict: retry.Failed}},
		{"After lengthens the wait", 1, now, retry.After(errBoom, 5*time.Second), retry.Decision{Verdict: retry.Again, Due: now.Add(5 * time.Second)}},
		{"After within MaxInterval", 1, now, retry.After(errBoom, time.Hour), retry.Decision{Verdict: retry.Again, Due: now.Add(10 * time.Second)}},
		{"After never shortens", 2, now, retry.After(errBoom, time.Millisecond), retry.Decision{Verdict: retry.Again, Due: now.Add(2 * time.Second)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Decide(tc.attempt, first, tc.now, tc.err); got != tc.want {
				t.Errorf("got %v at %v, want %v at %v", got.Verdict, got.Due, tc.want.Verdict, tc.want.Due)
			}
		})
	}
}

func TestSpent(t *testing.T) {
	p := retry.Policy{MaxAttempts: 2}
	for attempt, want := range map[int]bool{1: false, 2: false, 3: true} {
		if got := p.Spent(attempt); got != want {
			t.Errorf("Spent(%d): got %v, want %v", attempt, got, want)
		}
	}
}

func TestMarksKeepTheError(t *testing.T) {
	errBoom := errors.New("boom")
	for _, err := range []error{retry.Permanent(errBoom), retry.After(errBoom, time.Second)} {
		if err.Error() != "boom" || !errors.Is(err, errBoom) {
			t.Errorf("got %q (Is boom: %v), want the error itself", err, errors.Is(err, errBoom))
		}
	}
	if retry.Permanent(nil) != nil || retry.After(nil, time.Second) != nil {
		t.Error("a mark of nil: got an error, want nil")
	}
}

func TestHTTPAnswer(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	errAnswer := errors.New("answered")
	tests := []struct {
		code       int
		retryAfter string
		permanent  bool
		after      time.Duration
	}{
		{http.StatusBadRequest, "", true, 0},
		{http.StatusNotFound, "30", true, 0},
		{http.StatusConflict, "", true, 0},
		{http.StatusRequestTimeout, "", false, 0},
		{http.StatusTooManyRequests, "7", false, 7 * time.Second},
		{http.StatusInternalServerError, "", false, 0},
		{http.StatusServiceUnavailable, now.Add(time.Minute).Format(http.TimeFormat), false, time.Minute},
		{http.StatusFound, "", true, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			err := retry.HTTPAnswer(errAnswer, tc.code, tc.retryAfter, now)
			if !errors.Is(err, errAnswer) {
				t.Fatalf("got %v, want it to wrap the answer's error", err)
			}
			if got := retry.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent: got %v, want %v", got, tc.permanent)
			}
			if got := retry.AfterOf(err); got != tc.after {
				t.Errorf("after: got %s, want %s", got, tc.after)
			}
		})
	}
}
