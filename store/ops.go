package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/redis/go-redis/v9"
)

// Errors of the operator actions.
var (
	ErrSucceeded  = errors.New("store: event succeeded; there is nothing to retry")
	ErrNoCallback = errors.New("store: event has no callback to deliver")
	ErrBusy       = errors.New("store: the event's callback is still being delivered")
	ErrContended  = errors.New("store: record changed while being updated; try again")
)

// requeueScript replaces a record and queues its id, unless the record
// changed meanwhile or the id is queued already.
//
//	KEYS[1]  record key (string)   KEYS[2]  queue (zset)   KEYS[3]  attempts (hash)   KEYS[4]  dead letters (zset)
//	ARGV[1]  expected value        ARGV[2]  new value      ARGV[3]  due (unix ms)
//	ARGV[4]  id                    ARGV[5]  "1" to remove the id from the dead letters
//
// The queue's attempt count of the id restarts. Returns 1 when done, 0 when
// the record changed, -1 when the id is already queued.
var requeueScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('ZSCORE', KEYS[2], ARGV[4]) then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('HDEL', KEYS[3], ARGV[4])
if ARGV[5] == '1' then redis.call('ZREM', KEYS[4], ARGV[4]) end
return 1
`)

// requeue runs requeueScript; change builds the new value from the current
// one, or returns done=true to leave it as it is. It retries a few times
// when the record changes underneath.
func (s *Redis) requeue(ctx context.Context, k keys, key string, q queue, now time.Time, id string,
	change func(cur []byte) (next []byte, dropDead, done bool, err error)) (bool, error) {
	for range 3 {
		cur, err := s.rdb.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return false, ErrNotFound
		}
		if err != nil {
			return false, err
		}
		next, dropDead, done, err := change(cur)
		if err != nil || done {
			return false, err
		}
		res, err := requeueScript.Run(ctx, s.rdb, []string{key, q.due, q.attempts, k.dead},
			cur, next, now.UnixMilli(), id, flag(dropDead)).Int()
		if err != nil {
			return false, err
		}
		switch res {
		case 1:
			return true, nil
		case -1:
			return false, nil
		}
	}
	return false, ErrContended
}

// Retry runs a failed (or canceled) event again, as a new run with fresh attempts, and
// reports whether it was queued. An event that is queued, running or
// retrying already is left as it is (false, nil), so asking twice is
// harmless; a succeeded one is ErrSucceeded. An event whose callback is
// still being delivered is ErrBusy: its outcome's callback comes first.
func (s *Redis) Retry(ctx context.Context, now time.Time, id string) (bool, error) {
	snap, err := s.Get(ctx, id)
	if err != nil {
		return false, err
	}
	if cb := snap.Callback; snap.Record.Status == event.StatusFailed && cb != nil &&
		(cb.Status == event.CallbackPending || cb.Status == event.CallbackRetrying) {
		return false, ErrBusy
	}
	k := s.part(id)
	queued, err := s.requeue(ctx, k, k.record(id), k.queue(kindEvents), now, id, func(cur []byte) ([]byte, bool, bool, error) {
		var rec Record
		if err := decode(cur, &rec); err != nil {
			return nil, false, false, err
		}
		switch rec.Status {
		case event.StatusFailed, event.StatusCanceled:
		case event.StatusSucceeded:
			return nil, false, false, ErrSucceeded
		default:
			return nil, false, true, nil
		}
		rec.AddAttempt(Attempt{Run: rec.Run, StartedAt: now, Outcome: event.StatusQueued,
			Note: fmt.Sprintf("retry requested: run %d", rec.Run+1)})
		rec.Run++
		rec.Status, rec.Attempts, rec.LastError = event.StatusQueued, 0, ""
		rec.FirstAttemptAt, rec.NextAttemptAt, rec.CompletedAt = time.Time{}, time.Time{}, time.Time{}
		rec.UpdatedAt = now
		next, err := json.Marshal(rec)
		return next, true, false, err
	})
	if err != nil {
		return false, fmt.Errorf("store: retry %s: %w", id, err)
	}
	if queued {
		s.pickers[kindEvents].wake(partitionOf(id, len(s.parts)))
		signal(s.eventsReady)
	}
	return queued, nil
}

// Redeliver sends an event's callback again, with fresh delivery attempts
// and the same webhook-id, and reports whether it was queued. A callback
// pending or retrying already is left as it is (false, nil). An event
// without a callback URL, or without an outcome yet, is ErrNoCallback.
func (s *Redis) Redeliver(ctx context.Context, now time.Time, id string) (bool, error) {
	snap, err := s.Get(ctx, id)
	if err != nil {
		return false, err
	}
	if snap.Callback == nil || snap.Callback.URL == "" {
		return false, fmt.Errorf("store: redeliver %s: %w", id, ErrNoCallback)
	}
	eventFailed := snap.Record.Status == event.StatusFailed
	k := s.part(id)
	queued, err := s.requeue(ctx, k, k.callback(id), k.queue(kindCallbacks), now, id, func(cur []byte) ([]byte, bool, bool, error) {
		var cb Callback
		if err := decode(cur, &cb); err != nil {
			return nil, false, false, err
		}
		if cb.Status != event.CallbackDelivered && cb.Status != event.CallbackFailed {
			return nil, false, true, nil
		}
		cb.AddDelivery(Delivery{StartedAt: now, Outcome: event.CallbackPending, Note: "redelivery requested"})
		cb.Status, cb.Attempts, cb.LastError = event.CallbackPending, 0, ""
		cb.QueuedAt, cb.UpdatedAt, cb.NextAttemptAt = now, now, time.Time{}
		next, err := json.Marshal(cb)
		return next, !eventFailed, false, err
	})
	if err != nil {
		return false, fmt.Errorf("store: redeliver %s: %w", id, err)
	}
	if queued {
		s.pickers[kindCallbacks].wake(partitionOf(id, len(s.parts)))
		signal(s.callbacksReady)
	}
	return queued, nil
}

// sweepScript deletes events whose record is still the one the caller
// decided to delete.
//
//	KEYS[1..5]  recent, dead, events, callbacks, inline (zsets)
//	KEYS[6..13] event leases, event attempts, callback leases, callback attempts,
//	            callback destinations, callback waiting reasons, event destinations,
//	            event waiting reasons (hashes)
//	ARGV[1]     key tag    ARGV[2..4]  infixes of the body, record and callback keys
//	ARGV[2i+3], ARGV[2i+4]  id and its expected record JSON ("" when gone)
//
// Returns the number of events deleted.
var sweepScript = redis.NewScript(`
local n = 0
for i = 1, (#ARGV - 4) / 2 do
  local id, want = ARGV[2*i+3], ARGV[2*i+4]
  local st = redis.call('GET', ARGV[1] .. ARGV[3] .. id)
  if (st or '') == want then
    redis.call('DEL', ARGV[1] .. ARGV[2] .. id, ARGV[1] .. ARGV[3] .. id, ARGV[1] .. ARGV[4] .. id)
    for k = 1, 5 do redis.call('ZREM', KEYS[k], id) end
    for k = 6, 13 do redis.call('HDEL', KEYS[k], id) end
    n = n + 1
  end
end
return n
`)

// sweepBatch bounds the events one Sweep call looks at in each partition.
const sweepBatch = 500

// Sweep deletes events accepted before now-retention that are settled: a
// terminal outcome whose callback is delivered, failed or none. Their
// record, body, callback and dead letter go together, so an id is
// remembered (and a repeat of it answered) exactly as long as its record
// exists. Events still in flight are kept, however old. It returns how
// many events were deleted; more may be due while it deletes some.
func (s *Redis) Sweep(ctx context.Context, now time.Time, retention time.Duration) (int, error) {
	total := 0
	for _, k := range s.parts {
		n, err := s.sweepPart(ctx, k, now, retention)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Redis) sweepPart(ctx context.Context, k keys, now time.Time, retention time.Duration) (int, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, k.recent, &redis.ZRangeBy{
		Min: "-inf", Max: fmt.Sprint(now.Add(-retention).UnixMilli()), Count: sweepBatch,
	}).Result()
	if err != nil || len(ids) == 0 {
		return 0, wrap("sweep", err)
	}
	snaps, raws, err := s.snapshots(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("store: sweep: %w", err)
	}
	// The script deletes an event only if its record is still the one
	// decided on here.
	args := []any{k.tag, infixBody, infixRecord, infixCallback}
	for i, snap := range snaps {
		if snap == nil || settled(snap) {
			args = append(args, ids[i], raws[i])
		}
	}
	if len(args) == 4 {
		return 0, nil
	}
	n, err := sweepScript.Run(ctx, s.rdb, []string{k.recent, k.dead, k.events, k.callbacks, k.inline,
		k.eventLease, k.eventAttempts, k.callbackLease, k.callbackAttempts, k.callbackDest, k.callbackWaiting, k.eventDest, k.eventWaiting}, args...).Int()
	return n, wrap("sweep", err)
}

// settled reports whether nothing more will happen to an event by itself.
func settled(snap *Snapshot) bool {
	if !snap.Record.Status.Terminal() {
		return false
	}
	cb := snap.Callback
	return cb == nil || cb.Status == event.CallbackNone || cb.Status == event.CallbackDelivered || cb.Status == event.CallbackFailed
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
