package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/redis/go-redis/v9"
)

// ErrStarted is Cancel's answer for an event that has started (or ended):
// only an event still waiting for its first attempt can be canceled.
var ErrStarted = errors.New("store: the event has started")

// cancelScript cancels a queued event that no worker holds: it leaves the
// queue (or the ordering key's hold) and its record becomes canceled,
// unless the record changed since it was read.
//
//	KEYS[1]  record key   KEYS[2]  event queue (zset)   KEYS[3]  leases (hash)
//	KEYS[4]  attempts (hash)   KEYS[5]  held events (hash)
//	ARGV[1]  the record as read   ARGV[2]  the canceled record   ARGV[3]  id
//	ARGV[4]  the channel told of the event's end
//
// Returns 1 when canceled, 0 when the record changed, -1 when a worker
// holds the event.
var cancelScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return -1 end
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
redis.call('HDEL', KEYS[5], ARGV[3])
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], 'canceled')
return 1
`)

// Cancel cancels an event that has not started: queued for its first
// attempt (scheduled for later, or held for its ordering key), with no
// worker holding it. Its record becomes canceled: terminal, with no
// callback. It returns the canceled record; ErrNotFound for an unknown id,
// ErrStarted (wrapped with the status) for an event that is running, has
// run, or has ended. The next event of its ordering key, if any, may then
// start.
func (s *Redis) Cancel(ctx context.Context, now time.Time, id string) (Record, error) {
	k := s.part(id)
	key := k.record(id)
	for range 3 {
		cur, err := s.rdb.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return Record{}, fmt.Errorf("store: cancel %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return Record{}, fmt.Errorf("store: cancel %s: %w", id, err)
		}
		var rec Record
		if err := decode(cur, &rec); err != nil {
			return Record{}, fmt.Errorf("store: cancel %s: %w", id, err)
		}
		if rec.Status != event.StatusQueued || rec.Attempts > 0 {
			return rec, fmt.Errorf("store: cancel %s: %w (status %s)", id, ErrStarted, rec.Status)
		}
		rec.AddAttempt(Attempt{Run: rec.Run, StartedAt: now, Outcome: event.StatusCanceled, Note: "canceled before it started"})
		rec.Status, rec.UpdatedAt, rec.CompletedAt, rec.NextAttemptAt = event.StatusCanceled, now, now, time.Time{}
		next, err := marshalRecord(&rec)
		if err != nil {
			return Record{}, fmt.Errorf("store: cancel %s: %w", id, err)
		}
		q := k.queue(kindEvents)
		res, err := cancelScript.Run(ctx, s.rdb, []string{key, q.due, q.lease, q.attempts, k.held},
			cur, next, id, s.doneChannel(id)).Int()
		if err != nil {
			return Record{}, fmt.Errorf("store: cancel %s: %w", id, err)
		}
		switch res {
		case 1:
			if rec.OrderingKey != "" {
				s.advanceOrder(ctx, now, []Record{rec})
			}
			return rec, nil
		case -1:
			return rec, fmt.Errorf("store: cancel %s: %w (status processing)", id, ErrStarted)
		}
	}
	return Record{}, fmt.Errorf("store: cancel %s: %w", id, ErrContended)
}

// doneChannel is the pub/sub channel told when event id reaches a
// terminal status (see Redis.WaitDone).
func (s *Redis) doneChannel(id string) string { return s.prefix + ":done:" + id }
