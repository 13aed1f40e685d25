package store

import (
	"context"
	"fmt"
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

// EventQueue is a queue of events: the workers' queue (Redis.Events) or
// the leases of events run in-request (Redis.Inline). Its methods are the
// lease protocol of internal/worker's pools: Claim, Renew, Finish, Release.
type EventQueue struct {
	s     *Redis
	kind  queueKind
	ready chan struct{} // nil: nobody is told

	// With WithFlow: the destination of each event type's forward route,
	// and the flow control of those destinations.
	destByType map[string]string
	flow       Flow
}

// WithFlow returns the queue with flow control of its events'
// destinations: an event whose type is in destByType (or, when it is not,
// whose "*" is) goes to that destination (a forward route's
// scheme://host:port, see DestinationOf; "" for a route without one),
// and a claim leases it only when the destination admits it, as
// CallbackQueue does for callbacks. The destinations' state is shared with
// callbacks to the same scheme://host:port.
func (q EventQueue) WithFlow(destByType map[string]string, f Flow) EventQueue {
	q.destByType, q.flow = destByType, f
	return q
}

func (q EventQueue) flowOn() bool {
	for _, d := range q.destByType {
		if d != "" {
			return true
		}
	}
	return false
}

// Events returns the queue the event workers claim from.
func (s *Redis) Events() EventQueue {
	return EventQueue{s: s, kind: kindEvents, ready: s.eventsReady}
}

// Ready is signalled (without blocking; one waiter is woken) when this
// process queued an event that is due now, so a pool need not wait for its
// next poll. Other processes' events are found by polling.
func (q EventQueue) Ready() <-chan struct{} { return q.ready }

// Claim leases up to n due events for lease. When none is due, it returns
// when the first queued event will be (zero when the queue is empty), so
// the caller knows how long it may sleep. When it leased some, it returns
// zero, or now when it left due ones for want of room in this process's
// share of their destination (as CallbackQueue.Claim).
func (q EventQueue) Claim(ctx context.Context, now time.Time, lease time.Duration, n int) ([]Job, time.Time, error) {
	s := q.s
	spec := claimSpec{valueInfixes: []string{infixRecord, infixBody}}
	if q.flowOn() {
		spec.destMode, spec.destByType, spec.flow = "types", q.destByType, q.flow
	}
	cs, next, err := s.claim(ctx, q.kind, spec, now, lease, n)
	jobs := make([]Job, 0, claimedCount(cs))
	for _, c := range cs {
		var orphans []Lease
		for i, id := range c.ids {
			l := c.leaseAt(i)
			var rec Record
			if err := decode([]byte(c.values[0][i]), &rec); err != nil || c.values[1][i] == "" {
				s.log.Warn("queued event has no readable record; dropping it", "event_id", id, "err", err)
				orphans = append(orphans, l)
				continue
			}
			rec.Attempts = c.attempts[i]
			jobs = append(jobs, Job{Lease: l, Attempt: c.attempts[i], Record: rec, Body: []byte(c.values[1][i])})
		}
		if err := s.dropOrphans(ctx, s.parts[c.part].queue(q.kind), orphans); err != nil {
			return jobs, time.Time{}, err
		}
	}
	return jobs, next, err
}

// dropOrphans removes leased items whose data is gone from their queue.
func (s *Redis) dropOrphans(ctx context.Context, q queue, leases []Lease) error {
	if len(leases) == 0 {
		return nil
	}
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
	// Flow tells the flow control of the event's destination (a forward
	// route's) what the attempt says of its health: FlowOK, FlowFailed,
	// FlowPause(d) or FlowNone.
	Flow string
}

// Finish records outcomes of leased events. For each outcome it returns
// nil, or ErrLeaseLost when the lease is no longer held (another worker
// claimed the event after the lease expired), in which case nothing of that
// outcome was written.
func (q EventQueue) Finish(ctx context.Context, now time.Time, outs []Outcome) ([]error, error) {
	s := q.s
	queued := false
	items := make([]finishItem, len(outs))
	for i, o := range outs {
		it := finishItem{lease: o.Lease, flow: o.Flow}
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
		if it.record, err = marshalRecord(&o.Record); err != nil {
			return nil, fmt.Errorf("store: finish %s: %w", o.ID, err)
		}
		if o.Callback != nil {
			if it.callback, err = marshalCallback(o.Callback); err != nil {
				return nil, fmt.Errorf("store: finish %s: %w", o.ID, err)
			}
			it.queueCallback = o.Callback.Status == event.CallbackPending
			if it.queueCallback {
				it.dest = DestinationOf(o.Callback.URL)
			}
		}
		items[i] = it
	}
	var flow *Flow
	if q.flowOn() {
		flow = &q.flow
	}
	applied, err := s.finish(ctx, q.kind, flow, now, items)
	if applied == nil {
		return nil, err
	}
	for i, ok := range applied {
		if ok && items[i].queueCallback {
			queued = true
			s.pickers[kindCallbacks].wake(partitionOf(items[i].lease.ID, len(s.parts)))
		}
	}
	if queued {
		signal(s.callbacksReady)
	}
	var ended []Record
	for i, ok := range applied {
		if r := outs[i].Record; ok && r.OrderingKey != "" && r.Status.Terminal() {
			ended = append(ended, r)
		}
	}
	if len(ended) > 0 {
		s.advanceOrder(ctx, now, ended)
	}
	return s.leaseErrors(s.parts[0].queue(q.kind).name, applied), err
}

// leaseErrors turns a finish script's results into ErrLeaseLost for each
// outcome the fence rejected, and tells the observer how many it rejected.
func (s *Redis) leaseErrors(queue string, applied []bool) []error {
	errs := make([]error, len(applied))
	lost := 0
	for i, ok := range applied {
		if !ok {
			errs[i] = ErrLeaseLost
			lost++
		}
	}
	if lost > 0 {
		s.obs.LeasesLost(queue, lost)
	}
	return errs
}

// Renew extends the leases of events still running to now+lease, and
// returns the ids whose lease was lost.
func (q EventQueue) Renew(ctx context.Context, now time.Time, lease time.Duration, leases []Lease) ([]string, error) {
	return q.s.renew(ctx, q.kind, q.flowOn(), now.Add(lease), leases)
}

// Release gives leased events back to the queue, due now, as a stopping
// worker does with the attempts it will not finish. The attempts are not
// counted. It returns how many leases were still held.
func (q EventQueue) Release(ctx context.Context, now time.Time, leases []Lease) (int, error) {
	released, err := q.s.release(ctx, q.kind, q.flowOn(), now, leases)
	return len(released), err
}
