package retry

import "time"

// Verdict is what follows an attempt.
type Verdict int

const (
	// Succeeded: the attempt worked; nothing follows.
	Succeeded Verdict = iota
	// Again: another attempt is due at Decision.Due.
	Again
	// Failed: the error is permanent or the policy is spent.
	Failed
)

func (v Verdict) String() string {
	switch v {
	case Succeeded:
		return "succeeded"
	case Again:
		return "again"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Decision is the outcome of an attempt under a policy.
type Decision struct {
	Verdict Verdict
	// Due is when the next attempt is due, for Again; zero otherwise.
	Due time.Time
}

// Decide is the one rule for what follows attempt number attempt (1 for
// the first) of a run whose first attempt started at first, ending at now
// with err: events and callback deliveries alike.
//
//   - nil: Succeeded.
//   - an error marked Permanent (or backoff.Permanent): Failed.
//   - any other error: Again at the policy's next delay (no sooner than an
//     After asks, within MaxInterval), or Failed when the attempts or the
//     elapsed time are spent.
func (p Policy) Decide(attempt int, first, now time.Time, err error) Decision {
	if err == nil {
		return Decision{Verdict: Succeeded}
	}
	if IsPermanent(err) {
		return Decision{Verdict: Failed}
	}
	due, ok := p.Next(attempt, first, now, AfterOf(err))
	if !ok {
		return Decision{Verdict: Failed}
	}
	return Decision{Verdict: Again, Due: due}
}

// Spent reports whether attempt number attempt may not run at all: more
// attempts were started than the policy allows (their workers died).
func (p Policy) Spent(attempt int) bool {
	return attempt > p.WithDefaults().MaxAttempts
}
