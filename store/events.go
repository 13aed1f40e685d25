package store

import (
	"context"
	"fmt"
	json "github.com/goccy/go-json"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/redis/go-redis/v9"
)

// Job is an event leased to a worker for one attempt.
type Job struct {
	Lease
	// Attempt is the number of the attempt this lease starts, 1 for the
	// first. It counts attempts whose worker died, too.
	Attempt int
	Record  Record
	Body    []byte
}

// ClaimEvents leases up to n due events for lease. When none is due, it
// returns when the first queued event will be (zero when the queue is
// empty), so the caller knows how long it may sleep.
func (s *Redis) ClaimEvents(ctx context.Context, now time.Time, lease time.Duration, n int) ([]Job, time.Time, error) {
	c, err := s.claim(ctx, s.keys.eventQueue(), now, lease, n, infixRecord, infixBody)
	if err != nil || len(c.ids) == 0 {
		return nil, c.next, err
	}
	jobs := make([]Job, 0, len(c.ids))
	var orphans []Lease
	for i, id := range c.ids {
		l := Lease{ID: id, Token: c.token}
		var rec Record
		if err := decode([]byte(c.values[0][i]), &rec); err != nil || c.values[1][i] == "" {
			s.log.Warn("queued event has no readable record; dropping it", "event_id", id, "err", err)
			orphans = append(orphans, l)
			continue
		}
		rec.Attempts = c.attempts[i]
		jobs = append(jobs, Job{Lease: l, Attempt: c.attempts[i], Record: rec, Body: []byte(c.values[1][i])})
	}
	if len(orphans) > 0 {
		if err := s.dropOrphans(ctx, s.keys.eventQueue(), orphans); err != nil {
			return nil, time.Time{}, err
		}
	}
	return jobs, time.Time{}, nil
}

// dropOrphans removes leased items whose data is gone from their queue.
func (s *Redis) dropOrphans(ctx context.Context, q queue, leases []Lease) error {
	ids := make([]string, len(leases))
	for i, l := range leases {
		ids[i] = l.ID
	}
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, q.due, anys(ids)...)
		p.HDel(ctx, q.lease, ids...)
		p.HDel(ctx, q.attempts, ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: drop %d orphans from %s: %w", len(ids), q.due, err)
	}
	return nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Outcome is what a worker records at the end of an attempt: the event's
// new record and, for a terminal status, its callback record.
type Outcome struct {
	Lease
	// Record is the event's new record. StatusRetrying queues it again for
	// Record.NextAttemptAt; StatusSucceeded and StatusFailed end it.
	Record Record
	// Callback is the terminal outcome's callback record; one with status
	// CallbackPending is queued for delivery. Nil means none is written.
	Callback *Callback
}

// FinishEvents records outcomes of leased events. For each outcome it
// returns nil, or ErrLeaseLost when the lease is no longer held (another
// worker claimed the event after the lease expired), in which case nothing
// of that outcome was written.
func (s *Redis) FinishEvents(ctx context.Context, now time.Time, outs []Outcome) ([]error, error) {
	return s.finishOutcomes(ctx, s.keys.eventQueue(), now, outs)
}

func (s *Redis) finishOutcomes(ctx context.Context, q queue, now time.Time, outs []Outcome) ([]error, error) {
	items := make([]finishItem, len(outs))
	for i, o := range outs {
		it := finishItem{lease: o.Lease}
		switch o.Record.Status {
		case event.StatusRetrying:
			it.due = o.Record.NextAttemptAt
		case event.StatusSucceeded:
		case event.StatusFailed:
			it.dead = true
		default:
			return nil, fmt.Errorf("store: finish %s: status %s is not an outcome", o.ID, o.Record.Status)
		}
		var err error
		if it.record, err = json.Marshal(o.Record); err != nil {
			return nil, fmt.Errorf("store: finish %s: %w", o.ID, err)
		}
		if o.Callback != nil {
			if it.callback, err = json.Marshal(o.Callback); err != nil {
				return nil, fmt.Errorf("store: finish %s: %w", o.ID, err)
			}
			it.queueCallback = o.Callback.Status == event.CallbackPending
		}
		items[i] = it
	}
	applied, err := s.finish(ctx, q, now, infixRecord, items)
	if err != nil {
		return nil, err
	}
	return leaseErrors(applied), nil
}

func leaseErrors(applied []bool) []error {
	errs := make([]error, len(applied))
	for i, ok := range applied {
		if !ok {
			errs[i] = ErrLeaseLost
		}
	}
	return errs
}

// RenewEvents extends the leases of events still running to now+lease, and
// returns the ids whose lease was lost.
func (s *Redis) RenewEvents(ctx context.Context, now time.Time, lease time.Duration, leases []Lease) ([]string, error) {
	return s.renew(ctx, s.keys.eventQueue(), now.Add(lease), leases)
}

// ReleaseEvents gives leased events back to the queue, due now, as a
// stopping worker does with the attempts it will not finish. The attempts
// are not counted. It returns how many leases were still held.
func (s *Redis) ReleaseEvents(ctx context.Context, now time.Time, leases []Lease) (int, error) {
	return s.release(ctx, s.keys.eventQueue(), now, leases)
}
