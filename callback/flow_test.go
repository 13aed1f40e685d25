package callback

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
)

// What a delivery's answer tells the destination's breaker.
func TestFlowOutcome(t *testing.T) {
	errAnswer := errors.New("answered")
	now := time.Now()
	tests := []struct {
		name string
		code int
		err  error
		want string
	}{
		{"2xx", 200, nil, store.FlowOK},
		{"404: the receiver works", 404, retry.Permanent(errAnswer), store.FlowOK},
		{"3xx: not followed, but it answers", 302, retry.Permanent(errAnswer), store.FlowOK},
		{"500", 500, errAnswer, store.FlowFailed},
		{"408", 408, errAnswer, store.FlowFailed},
		{"network error", 0, errors.New("connection refused"), store.FlowFailed},
		{"429 without Retry-After", 429, retry.HTTPAnswer(errAnswer, 429, "", now), store.FlowPause(DefaultPause)},
		{"429 with Retry-After", 429, retry.HTTPAnswer(errAnswer, 429, "7", now), store.FlowPause(7 * time.Second)},
		{"503 with Retry-After", 503, retry.HTTPAnswer(errAnswer, 503, "3", now), store.FlowPause(3 * time.Second)},
		{"refused address", 0, retry.Permanent(fmt.Errorf("post: %w", outbound.ErrForbidden)), store.FlowNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FlowOutcome(tc.code, tc.err); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Zero limits take the defaults; a destination's zero limits take the
// configured default's; destinations are named by scheme, host and port.
func TestResolveFlow(t *testing.T) {
	f := ResolveFlow(store.Flow{
		Default:        store.Limits{MaxInFlight: 4, FailureThreshold: -1},
		PerDestination: map[string]store.Limits{"https://api.example.com/hooks": {Rate: 10}},
	})
	if f.Default.MaxInFlight != 4 || f.Default.FailureThreshold != -1 || f.Default.Cooldown != DefaultFlow.Cooldown {
		t.Errorf("default: got %+v", f.Default)
	}
	d, ok := f.PerDestination["https://api.example.com:443"]
	if !ok || d.Rate != 10 || d.MaxInFlight != 4 || d.Cooldown != DefaultFlow.Cooldown {
		t.Errorf("per destination: got %+v (%v)", f.PerDestination, ok)
	}
}
