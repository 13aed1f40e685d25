package store

import (
	"context"
	"fmt"
	"time"

	"github.com/boomerang-events/boomerang/event"
)

// CallbackJob is a callback leased to a sender for one delivery.
type CallbackJob struct {
	Lease
	// Attempt is the number of the delivery this lease starts, 1 for the
	// first.
	Attempt  int
	Callback Callback
}

// CallbackQueue is the outbox of callbacks due for delivery. Its methods are
// the lease protocol of internal/worker's pools: Claim, Renew, Finish,
// Release.
type CallbackQueue struct {
	s      *Redis
	flow   Flow
	flowOn bool
}

// WithFlow returns the queue with the destinations' flow control of f: a
// claim leases only the deliveries their destination admits now and
// defers the others (see admitScript).
func (q CallbackQueue) WithFlow(f Flow) CallbackQueue {
	q.flow, q.flowOn = f, true
	return q
}

// Callbacks returns the queue the callback dispatcher claims from.
func (s *Redis) Callbacks() CallbackQueue {
	return CallbackQueue{s: s}
}

func (q CallbackQueue) spec() claimSpec {
	spec := claimSpec{valueInfixes: []string{infixCallback}}
	if q.flowOn {
		spec.destMode, spec.flow = "hash", q.flow
	}
	return spec
}

// Ready is signalled (without blocking; one waiter is woken) when this
// process queued a callback for delivery now.
func (q CallbackQueue) Ready() <-chan struct{} { return q.s.callbacksReady }

// Claim leases up to n due callbacks for lease. When none is due, it
// returns when the first queued one will be (zero when none is queued).
// When it leased some, it returns zero, or now when it left due ones for
// want of room in this process's share of their destination (Flow.Local):
// the caller should claim again once its running deliveries make room,
// not wait for more to arrive.
func (q CallbackQueue) Claim(ctx context.Context, now time.Time, lease time.Duration, n int) ([]CallbackJob, time.Time, error) {
	s := q.s
	cs, next, err := s.claim(ctx, kindCallbacks, q.spec(), now, lease, n)
	jobs := make([]CallbackJob, 0, claimedCount(cs))
	for _, c := range cs {
		var orphans []Lease
		for i, id := range c.ids {
			l := c.leaseAt(i)
			var cb Callback
			if err := decode([]byte(c.values[0][i]), &cb); err != nil {
				s.log.Warn("queued callback has no readable record; dropping it", "event_id", id, "err", err)
				orphans = append(orphans, l)
				continue
			}
			cb.Attempts = c.attempts[i]
			jobs = append(jobs, CallbackJob{Lease: l, Attempt: c.attempts[i], Callback: cb})
		}
		if err := s.dropOrphans(ctx, s.parts[c.part].queue(kindCallbacks), orphans); err != nil {
			return jobs, time.Time{}, err
		}
	}
	return jobs, next, err
}

// CallbackOutcome is what a sender records at the end of a delivery.
type CallbackOutcome struct {
	Lease
	// Callback is the new callback record. CallbackRetrying queues it again
	// for Callback.NextAttemptAt; CallbackDelivered and CallbackFailed end
	// its delivery.
	Callback Callback
	// Flow tells the destination's flow control what the delivery says of
	// the receiver's health: FlowOK, FlowFailed, FlowPause(d) or FlowNone.
	Flow string
}

// Finish records delivery outcomes. For each it returns nil, or
// ErrLeaseLost when the lease is no longer held, in which case nothing of
// that outcome was written.
func (q CallbackQueue) Finish(ctx context.Context, now time.Time, outs []CallbackOutcome) ([]error, error) {
	items := make([]callbackItem, len(outs))
	for i, o := range outs {
		it := callbackItem{lease: o.Lease, flow: o.Flow}
		switch o.Callback.Status {
		case event.CallbackRetrying:
			it.due = o.Callback.NextAttemptAt
		case event.CallbackDelivered:
		case event.CallbackFailed:
			it.dead = true
		default:
			return nil, fmt.Errorf("store: finish callback %s: status %s is not an outcome", o.ID, o.Callback.Status)
		}
		var err error
		if it.record, err = marshalCallback(&o.Callback); err != nil {
			return nil, fmt.Errorf("store: finish callback %s: %w", o.ID, err)
		}
		items[i] = it
	}
	flow := q.flow
	if !q.flowOn {
		flow = Flow{}
	}
	applied, err := q.s.finishCallbacks(ctx, flow, q.flowOn, now, items)
	if applied == nil {
		return nil, err
	}
	return q.s.leaseErrors(QueueCallbacks, applied), err
}

// Renew extends the leases of deliveries still running to now+lease, and
// returns the ids whose lease was lost.
func (q CallbackQueue) Renew(ctx context.Context, now time.Time, lease time.Duration, leases []Lease) ([]string, error) {
	return q.s.renew(ctx, kindCallbacks, q.flowOn, now.Add(lease), leases)
}

// Release gives leased callbacks back to their queue, due now, without
// counting the deliveries that did not finish.
func (q CallbackQueue) Release(ctx context.Context, now time.Time, leases []Lease) (int, error) {
	released, err := q.s.release(ctx, kindCallbacks, q.flowOn, now, leases)
	return len(released), err
}
