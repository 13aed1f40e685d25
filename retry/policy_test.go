package retry_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/boomerang-events/boomerang/retry"
)

// noJitter is a policy without randomization, so delays are exact.
func noJitter(p retry.Policy) retry.Policy {
	p.RandomizationFactor = -1
	return p
}

func TestWithDefaults(t *testing.T) {
	defaults := retry.Policy{
		MaxAttempts:         retry.DefaultMaxAttempts,
		InitialInterval:     retry.DefaultInitialInterval,
		Multiplier:          retry.DefaultMultiplier,
		RandomizationFactor: retry.DefaultRandomizationFactor,
		MaxInterval:         retry.DefaultMaxInterval,
		MaxElapsedTime:      retry.DefaultMaxElapsedTime,
	}
	custom := retry.Policy{
		MaxAttempts:         3,
		InitialInterval:     100 * time.Millisecond,
		Multiplier:          1.5,
		RandomizationFactor: 0.25,
		MaxInterval:         10 * time.Second,
		MaxElapsedTime:      2 * time.Minute,
	}
	tests := []struct {
		name string
		in   retry.Policy
		want retry.Policy
	}{
		{name: "zero takes every default", in: retry.Policy{}, want: defaults},
		{name: "set fields are kept", in: custom, want: custom},
		{
			name: "only max_attempts set",
			in:   retry.Policy{MaxAttempts: 7},
			want: func() retry.Policy { p := defaults; p.MaxAttempts = 7; return p }(),
		},
		{
			name: "negative none markers stay negative",
			in:   retry.Policy{RandomizationFactor: -1, MaxElapsedTime: -1},
			want: func() retry.Policy {
				p := defaults
				p.RandomizationFactor = -1
				p.MaxElapsedTime = -1
				return p
			}(),
		},
		{
			name: "negative invalid values are left for Validate",
			in:   retry.Policy{MaxAttempts: -2, InitialInterval: -time.Second},
			want: func() retry.Policy {
				p := defaults
				p.MaxAttempts = -2
				p.InitialInterval = -time.Second
				return p
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			once := tt.in.WithDefaults()
			if once != tt.want {
				t.Errorf("WithDefaults: got %+v, want %+v", once, tt.want)
			}
			if twice := once.WithDefaults(); twice != once {
				t.Errorf("WithDefaults twice: got %+v, want %+v", twice, once)
			}
		})
	}
}

// yamlName returns the yaml tag of a Policy field, so the test follows the
// configuration file's spelling rather than repeating it.
func yamlName(t *testing.T, field string) string {
	t.Helper()
	f, ok := reflect.TypeFor[retry.Policy]().FieldByName(field)
	if !ok {
		t.Fatalf("retry.Policy has no field %s", field)
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		t.Fatalf("retry.Policy.%s has no yaml tag", field)
	}
	return name
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		p         retry.Policy
		wantField string // Go name of the field the error must name; "" for valid
	}{
		{name: "zero value", p: retry.Policy{}},
		{name: "no randomization and no elapsed bound", p: retry.Policy{RandomizationFactor: -1, MaxElapsedTime: -1}},
		{name: "one attempt", p: retry.Policy{MaxAttempts: 1}},
		{name: "multiplier one", p: retry.Policy{Multiplier: 1}},
		{name: "randomization one", p: retry.Policy{RandomizationFactor: 1}},
		{name: "max interval equal to initial", p: retry.Policy{InitialInterval: time.Second, MaxInterval: time.Second}},
		{name: "negative max attempts", p: retry.Policy{MaxAttempts: -1}, wantField: "MaxAttempts"},
		{name: "negative initial interval", p: retry.Policy{InitialInterval: -time.Second}, wantField: "InitialInterval"},
		{name: "multiplier below one", p: retry.Policy{Multiplier: 0.5}, wantField: "Multiplier"},
		{name: "negative multiplier", p: retry.Policy{Multiplier: -2}, wantField: "Multiplier"},
		{name: "randomization above one", p: retry.Policy{RandomizationFactor: 1.5}, wantField: "RandomizationFactor"},
		{name: "max interval below initial", p: retry.Policy{InitialInterval: 2 * time.Second, MaxInterval: time.Second}, wantField: "MaxInterval"},
		{name: "max interval below default initial", p: retry.Policy{MaxInterval: 100 * time.Millisecond}, wantField: "MaxInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: got nil, want an error naming %s", yamlName(t, tt.wantField))
			}
			if want := yamlName(t, tt.wantField) + ":"; !strings.Contains(err.Error(), want) {
				t.Errorf("Validate: got %q, want it to contain %q", err, want)
			}
		})
	}
}

func TestDelayWithoutRandomization(t *testing.T) {
	custom := noJitter(retry.Policy{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Second})
	defaults := noJitter(retry.Policy{})
	triple := noJitter(retry.Policy{InitialInterval: time.Second, Multiplier: 3, MaxInterval: time.Minute})
	ms := time.Millisecond
	tests := []struct {
		name    string
		p       retry.Policy
		attempt int
		want    time.Duration
	}{
		{"custom attempt 1", custom, 1, 100 * ms},
		{"custom attempt 2", custom, 2, 200 * ms},
		{"custom attempt 3", custom, 3, 400 * ms},
		{"custom attempt 4", custom, 4, 800 * ms},
		{"custom attempt 5", custom, 5, 1600 * ms},
		{"custom attempt 6", custom, 6, 3200 * ms},
		{"custom attempt 7 capped", custom, 7, 5 * time.Second},
		{"custom attempt 8 capped", custom, 8, 5 * time.Second},
		{"defaults attempt 1", defaults, 1, 500 * ms},
		{"defaults attempt 2", defaults, 2, time.Second},
		{"defaults attempt 3", defaults, 3, 2 * time.Second},
		{"defaults attempt 4", defaults, 4, 4 * time.Second},
		{"defaults attempt 5", defaults, 5, 8 * time.Second},
		{"defaults attempt 6", defaults, 6, 16 * time.Second},
		{"defaults attempt 7", defaults, 7, 32 * time.Second},
		{"defaults attempt 8 capped", defaults, 8, time.Minute},
		{"multiplier 3 attempt 3", triple, 3, 9 * time.Second},
		{"multiplier 3 attempt 5 capped", triple, 5, time.Minute},
		{"attempt 0 is treated as the first", custom, 0, 100 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Delay(tt.attempt, 0); got != tt.want {
				t.Errorf("Delay(%d, 0): got %s, want %s", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestDelayRandomization(t *testing.T) {
	p := retry.Policy{} // default randomization 0.5
	for attempt := 1; attempt <= 8; attempt++ {
		t.Run(fmt.Sprintf("attempt %d", attempt), func(t *testing.T) {
			base := time.Duration(float64(retry.DefaultInitialInterval) * math.Pow(retry.DefaultMultiplier, float64(attempt-1)))
			base = min(base, retry.DefaultMaxInterval)
			lo, hi := base/2, base*3/2
			minSeen, maxSeen := time.Duration(math.MaxInt64), time.Duration(0)
			for range 1000 {
				d := p.Delay(attempt, 0)
				if d < lo || d > hi {
					t.Fatalf("Delay(%d, 0): got %s, want within [%s, %s]", attempt, d, lo, hi)
				}
				minSeen, maxSeen = min(minSeen, d), max(maxSeen, d)
			}
			// With a factor of 0.5, a quarter of the samples fall below
			// 0.75x and a quarter above 1.25x: 1000 samples all missing
			// either band means the spread is not the configured one.
			if minSeen >= base*3/4 {
				t.Errorf("smallest of 1000 delays: got %s, want below %s", minSeen, base*3/4)
			}
			if maxSeen <= base*5/4 {
				t.Errorf("largest of 1000 delays: got %s, want above %s", maxSeen, base*5/4)
			}
		})
	}
}

func TestDelayRetryAfter(t *testing.T) {
	p := noJitter(retry.Policy{InitialInterval: time.Second, Multiplier: 2, MaxInterval: 10 * time.Second})
	tests := []struct {
		name       string
		p          retry.Policy
		attempt    int
		retryAfter time.Duration
		want       time.Duration
	}{
		{"no retry-after", p, 1, 0, time.Second},
		{"retry-after lengthens", p, 1, 5 * time.Second, 5 * time.Second},
		{"retry-after shorter than backoff is ignored", p, 3, 2 * time.Second, 4 * time.Second},
		{"retry-after capped at max interval", p, 1, time.Hour, 10 * time.Second},
		{"retry-after equal to max interval", p, 2, 10 * time.Second, 10 * time.Second},
		{"negative retry-after is ignored", p, 2, -time.Minute, 2 * time.Second},
		{"capped with randomization too", retry.Policy{}, 1, time.Hour, retry.DefaultMaxInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Delay(tt.attempt, tt.retryAfter); got != tt.want {
				t.Errorf("Delay(%d, %s): got %s, want %s", tt.attempt, tt.retryAfter, got, tt.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	first := time.Date(2024, 8, 20, 5, 21, 19, 0, time.UTC)
	s := time.Second
	bounded := noJitter(retry.Policy{MaxAttempts: 4, InitialInterval: s, Multiplier: 2, MaxInterval: time.Minute, MaxElapsedTime: 10 * s})
	unbounded := bounded
	unbounded.MaxElapsedTime = -1
	unbounded.MaxAttempts = 100
	defaults := noJitter(retry.Policy{})
	tests := []struct {
		name       string
		p          retry.Policy
		attempt    int
		now        time.Time
		retryAfter time.Duration
		wantOK     bool
		wantDue    time.Time
	}{
		{"first failure", bounded, 1, first.Add(s), 0, true, first.Add(2 * s)},
		{"third failure within bound", bounded, 3, first.Add(5 * s), 0, true, first.Add(9 * s)},
		{"due exactly at the bound", bounded, 3, first.Add(6 * s), 0, true, first.Add(10 * s)},
		{"due past the bound", bounded, 3, first.Add(7 * s), 0, false, time.Time{}},
		{"retry-after within bound", bounded, 1, first.Add(s), 3 * s, true, first.Add(4 * s)},
		{"retry-after pushes past the bound", bounded, 1, first.Add(8 * s), 5 * s, false, time.Time{}},
		{"last attempt used", bounded, 4, first.Add(s), 0, false, time.Time{}},
		{"beyond last attempt", bounded, 5, first.Add(s), 0, false, time.Time{}},
		{"no elapsed bound", unbounded, 3, first.Add(1000 * time.Hour), 0, true, first.Add(1000*time.Hour + 4*s)},
		{"default max attempts not reached", defaults, 4, first.Add(s), 0, true, first.Add(s + 4*s)},
		{"default max attempts reached", defaults, 5, first.Add(s), 0, false, time.Time{}},
		{"default elapsed bound not reached", defaults, 1, first.Add(time.Hour - s), 0, true, first.Add(time.Hour - s/2)},
		{"default elapsed bound passed", defaults, 1, first.Add(time.Hour - s/4), 0, false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, ok := tt.p.Next(tt.attempt, first, tt.now, tt.retryAfter)
			if ok != tt.wantOK {
				t.Fatalf("Next(%d): got ok %t (due %s), want %t", tt.attempt, ok, due, tt.wantOK)
			}
			if ok && !due.Equal(tt.wantDue) {
				t.Errorf("Next(%d): got due %s, want %s", tt.attempt, due, tt.wantDue)
			}
		})
	}
}

// backOffs drains b, failing the test if it does not stop within limit calls.
func backOffs(t *testing.T, b backoff.BackOff, limit int) []time.Duration {
	t.Helper()
	var got []time.Duration
	for range limit {
		d := b.NextBackOff()
		if d == backoff.Stop {
			return got
		}
		got = append(got, d)
	}
	t.Fatalf("NextBackOff: still no backoff.Stop after %d calls", limit)
	return nil
}

func TestNewBackOffRetries(t *testing.T) {
	tiny := func(attempts int) retry.Policy {
		return retry.Policy{MaxAttempts: attempts, InitialInterval: time.Nanosecond, MaxInterval: time.Microsecond}
	}
	tests := []struct {
		name string
		p    retry.Policy
		want int
	}{
		{"one attempt means no retry", tiny(1), 0},
		{"two attempts", tiny(2), 1},
		{"five attempts", tiny(5), 4},
		{"twenty attempts", tiny(20), 19},
		{"default attempts", tiny(0), retry.DefaultMaxAttempts - 1},
		// The elapsed bound applies: 40m, then 80m would end past 1h.
		{"default elapsed bound", noJitter(retry.Policy{MaxAttempts: 10, InitialInterval: 40 * time.Minute, MaxInterval: 2 * time.Hour}), 1},
		{"no elapsed bound", noJitter(retry.Policy{MaxAttempts: 10, InitialInterval: time.Hour, MaxInterval: time.Hour, MaxElapsedTime: -1}), 9},
		{"elapsed bound shorter than the first interval", retry.Policy{MaxAttempts: 10, InitialInterval: time.Second, MaxElapsedTime: time.Millisecond}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := len(backOffs(t, tt.p.NewBackOff(), 1000)); got != tt.want {
				t.Errorf("retries before backoff.Stop: got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestNewBackOffIntervals(t *testing.T) {
	p := noJitter(retry.Policy{MaxAttempts: 5, InitialInterval: time.Millisecond, Multiplier: 3, MaxInterval: 5 * time.Millisecond})
	want := []time.Duration{time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}
	b := p.NewBackOff()
	if got := backOffs(t, b, 100); !reflect.DeepEqual(got, want) {
		t.Fatalf("intervals: got %v, want %v", got, want)
	}
	b.Reset()
	if got := backOffs(t, b, 100); !reflect.DeepEqual(got, want) {
		t.Errorf("intervals after Reset: got %v, want %v", got, want)
	}
}

func TestNewBackOffIsFresh(t *testing.T) {
	p := retry.Policy{MaxAttempts: 3, InitialInterval: time.Nanosecond, MaxInterval: time.Microsecond}
	a, b := p.NewBackOff(), p.NewBackOff()
	backOffs(t, a, 100)
	if got := len(backOffs(t, b, 100)); got != 2 {
		t.Errorf("retries of a second backoff after the first was used up: got %d, want 2", got)
	}
}

func TestOr(t *testing.T) {
	route := retry.Policy{MaxAttempts: 3, InitialInterval: 100 * time.Millisecond}
	server := retry.Policy{MaxAttempts: 5, InitialInterval: time.Second, Multiplier: 3, RandomizationFactor: -1, MaxInterval: time.Minute, MaxElapsedTime: -1}
	got := route.Or(server)
	want := retry.Policy{MaxAttempts: 3, InitialInterval: 100 * time.Millisecond, Multiplier: 3, RandomizationFactor: -1, MaxInterval: time.Minute, MaxElapsedTime: -1}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := (retry.Policy{}).Or(retry.Defaults); got != retry.Defaults {
		t.Errorf("zero policy: got %+v, want the defaults", got)
	}
}
