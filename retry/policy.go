// Package retry holds the retry policy shared by event processing and callback
// delivery: exponential backoff from cenkalti/backoff/v4, bounded by a number of
// attempts and by the time elapsed since the first one.
//
// The schedule is computed from what Redis records (the attempt number and the
// time of the first attempt), not from a long-lived backoff object, so any
// process can resume it after a restart.
package retry

import (
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy configures exponential backoff. The zero value is usable: each zero
// field takes the default documented on it. With the defaults the delays before
// attempts 2 to 5 are about 0.5s, 1s, 2s and 4s, each randomized by ±50%:
//
//	attempt  interval  randomized
//	2        0.5s      [0.25s, 0.75s]
//	3        1s        [0.5s,  1.5s]
//	4        2s        [1s,    3s]
//	5        4s        [2s,    6s]
type Policy struct {
	// MaxAttempts is the number of attempts, the first one included.
	// Default 5.
	MaxAttempts int `json:"max_attempts" yaml:"max_attempts"`
	// InitialInterval is the delay before the second attempt. Default 500ms.
	InitialInterval time.Duration `json:"initial_interval" yaml:"initial_interval"`
	// Multiplier grows the interval after each attempt. Default 2.
	Multiplier float64 `json:"multiplier" yaml:"multiplier"`
	// RandomizationFactor spreads each delay over [1-f, 1+f] times the
	// interval. Default 0.5; a negative value means no randomization.
	RandomizationFactor float64 `json:"randomization_factor" yaml:"randomization_factor"`
	// MaxInterval caps the interval (before randomization). Default 1m.
	MaxInterval time.Duration `json:"max_interval" yaml:"max_interval"`
	// MaxElapsedTime bounds the time from the first attempt to the last
	// one's start. Default 1h; a negative value means no bound.
	MaxElapsedTime time.Duration `json:"max_elapsed_time" yaml:"max_elapsed_time"`
}

// Defaults for a Policy's zero fields.
const (
	DefaultMaxAttempts         = 5
	DefaultInitialInterval     = 500 * time.Millisecond
	DefaultMultiplier          = 2.0
	DefaultRandomizationFactor = 0.5
	DefaultMaxInterval         = time.Minute
	DefaultMaxElapsedTime      = time.Hour
)

// Defaults is the policy WithDefaults completes others with.
var Defaults = Policy{
	MaxAttempts:         DefaultMaxAttempts,
	InitialInterval:     DefaultInitialInterval,
	Multiplier:          DefaultMultiplier,
	RandomizationFactor: DefaultRandomizationFactor,
	MaxInterval:         DefaultMaxInterval,
	MaxElapsedTime:      DefaultMaxElapsedTime,
}

// WithDefaults returns p with every zero field set to its default. The
// negative "none" values stay as they are, so applying it twice changes
// nothing.
func (p Policy) WithDefaults() Policy { return p.Or(Defaults) }

// Or returns p with each zero field taken from fallback: a route's policy
// over the server's, or the server's over the defaults.
func (p Policy) Or(fallback Policy) Policy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = fallback.MaxAttempts
	}
	if p.InitialInterval == 0 {
		p.InitialInterval = fallback.InitialInterval
	}
	if p.Multiplier == 0 {
		p.Multiplier = fallback.Multiplier
	}
	if p.RandomizationFactor == 0 {
		p.RandomizationFactor = fallback.RandomizationFactor
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = fallback.MaxInterval
	}
	if p.MaxElapsedTime == 0 {
		p.MaxElapsedTime = fallback.MaxElapsedTime
	}
	return p
}

// Validate reports every field of p, after defaults, that is out of range,
// each error naming the field as it is spelled in the configuration file.
func (p Policy) Validate() error {
	p = p.WithDefaults()
	var errs []error
	if p.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max_attempts: must be at least 1, got %d", p.MaxAttempts))
	}
	if p.InitialInterval < 0 {
		errs = append(errs, fmt.Errorf("initial_interval: must not be negative, got %s", p.InitialInterval))
	}
	if p.Multiplier < 1 {
		errs = append(errs, fmt.Errorf("multiplier: must be at least 1, got %g", p.Multiplier))
	}
	if p.RandomizationFactor > 1 {
		errs = append(errs, fmt.Errorf("randomization_factor: must be at most 1, got %g", p.RandomizationFactor))
	}
	if p.MaxInterval < p.InitialInterval {
		errs = append(errs, fmt.Errorf("max_interval: must be at least initial_interval (%s), got %s", p.InitialInterval, p.MaxInterval))
	}
	return errors.Join(errs...)
}

// Problems returns the errors of Validate one by one, each naming its field
// under path, such as "callback.retry.max_attempts: must be at least 1".
func (p Policy) Problems(path string) []error {
	err := p.Validate()
	if err == nil {
		return nil
	}
	var errs []error
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() { // Validate joins its errors
		errs = append(errs, fmt.Errorf("%s.%w", path, e))
	}
	return errs
}

// NewBackOff returns a fresh ExponentialBackOff for one run of in-process
// retries, limited to the policy's attempts and elapsed time. It is not safe
// for concurrent use; make one per run.
func (p Policy) NewBackOff() backoff.BackOff {
	p = p.WithDefaults()
	b := p.exponential()
	b.MaxElapsedTime = max(p.MaxElapsedTime, 0)
	b.Reset()
	return backoff.WithMaxRetries(b, uint64(p.MaxAttempts-1))
}

// Delay is the wait after attempt number attempt (1 for the first) before
// the next one. A retryAfter asked for by the other side (an HTTP Retry-After)
// lengthens the delay up to MaxInterval, never beyond.
func (p Policy) Delay(attempt int, retryAfter time.Duration) time.Duration {
	p = p.WithDefaults()
	b := p.exponential()
	b.MaxElapsedTime = 0 // elapsed time is bounded by Next, across processes
	b.Reset()
	var d time.Duration
	for i := 0; i < max(attempt, 1); i++ {
		d = b.NextBackOff()
	}
	if ra := min(retryAfter, p.MaxInterval); ra > d {
		d = ra
	}
	return d
}

// Next decides what follows a failed attempt number attempt of a run whose
// first attempt started at first. It returns when the next attempt is due, or
// false when the policy is exhausted (attempts used up, or the next attempt
// would start later than MaxElapsedTime after the first).
func (p Policy) Next(attempt int, first, now time.Time, retryAfter time.Duration) (time.Time, bool) {
	p = p.WithDefaults()
	if attempt >= p.MaxAttempts {
		return time.Time{}, false
	}
	due := now.Add(p.Delay(attempt, retryAfter))
	if p.MaxElapsedTime > 0 && due.Sub(first) > p.MaxElapsedTime {
		return time.Time{}, false
	}
	return due, true
}

func (p Policy) exponential() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: max(p.RandomizationFactor, 0),
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxInterval,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
}
