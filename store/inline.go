package store

import (
	"context"
	"fmt"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/redis/go-redis/v9"
)

// beginScript records an event run in-request (library mode) and leases it
// to the caller.
//
//	KEYS[1]  inline leases (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)
//	KEYS[4]  token counter          KEYS[5]  recent index (zset)
//	ARGV[1]  key tag   ARGV[2]  now (unix ms)   ARGV[3]  lease deadline (unix ms)
//	ARGV[4]  id        ARGV[5]  record JSON     ARGV[6]  body JSON
//	ARGV[7]  record key infix   ARGV[8]  body key infix
//
// A new event is created. An event whose earlier in-request lease expired
// (its caller died) is taken over. Returns {token, attempt, stored record
// JSON or ""} when the caller now holds the lease, or {0, 0, stored record
// JSON} when the event is done, queued elsewhere, or its lease is held.
var beginScript = redis.NewScript(`
local id = ARGV[4]
local stkey = ARGV[1] .. ARGV[7] .. id
local old = redis.call('GET', stkey)
if old then
  local dl = redis.call('ZSCORE', KEYS[1], id)
  if (not dl) or tonumber(dl) > tonumber(ARGV[2]) then return {0, 0, old} end
else
  redis.call('MSET', stkey, ARGV[5], ARGV[1] .. ARGV[8] .. id, ARGV[6])
  redis.call('ZADD', KEYS[5], ARGV[2], id)
  old = ''
end
local token = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[1], ARGV[3], id)
redis.call('HSET', KEYS[2], id, token)
local n = redis.call('HINCRBY', KEYS[3], id, 1)
return {token, n, old}
`)

// InlineQueue holds the leases of events run in-request by
// handler.NewGinEventHandler (library mode): Begin records and leases an
// event to its request, Finish records its outcome. A lease whose request
// died expires; the engine's reaper claims it (Claim) and finishes the
// event as failed.
type InlineQueue struct {
	EventQueue
}

// Inline returns the queue of events run in-request.
func (s *Redis) Inline() InlineQueue {
	return InlineQueue{EventQueue{s: s, kind: kindInline}}
}

// Begin records ev, if it is new, for an attempt run by the caller itself
// (handler.NewGinEventHandler's in-request processing) and leases it to the
// caller until now+lease. An event whose earlier in-request lease expired is
// taken over, with its next attempt number; then the returned Job holds the
// stored record, and the caller should check its BodyHash. An event that is
// done, queued for the workers, or leased by another caller returns a
// *DuplicateError with its record.
func (q InlineQueue) Begin(ctx context.Context, now time.Time, lease time.Duration, ev NewEvent) (Job, error) {
	s := q.s
	rec := ev.Record
	rec.Status, rec.Run = event.StatusQueued, 1
	rec.AcceptedAt, rec.UpdatedAt = now, now
	st, err := marshalRecord(&rec)
	if err != nil {
		return Job{}, fmt.Errorf("store: begin %s: %w", rec.ID, err)
	}
	k := s.part(rec.ID)
	res, err := beginScript.Run(ctx, s.rdb,
		[]string{k.inline, k.eventLease, k.eventAttempts, k.token, k.recent},
		k.tag, now.UnixMilli(), now.Add(lease).UnixMilli(), rec.ID, st, ev.Body, infixRecord, infixBody).Slice()
	if err != nil {
		return Job{}, fmt.Errorf("store: begin %s: %w", rec.ID, err)
	}
	token, _ := res[0].(int64)
	attempt, _ := res[1].(int64)
	if old, _ := res[2].(string); old != "" {
		if err := decode([]byte(old), &rec); err != nil {
			return Job{}, fmt.Errorf("store: begin %s: decode record: %w", rec.ID, err)
		}
	}
	if token == 0 {
		return Job{}, &DuplicateError{Record: rec}
	}
	rec.Attempts = int(attempt)
	return Job{Lease: Lease{ID: rec.ID, Token: token}, Attempt: int(attempt), Record: rec, Body: ev.Body}, nil
}

// Finish records the terminal outcomes of events leased by Begin (or
// claimed by the reaper), as EventQueue.Finish does for the workers'
// events, and wakes this process's callback dispatcher.
func (q InlineQueue) Finish(ctx context.Context, now time.Time, outs []Outcome) ([]error, error) {
	for _, o := range outs {
		if !o.Record.Status.Terminal() {
			return nil, fmt.Errorf("store: finish inline %s: status %s is not terminal", o.ID, o.Record.Status)
		}
	}
	return q.EventQueue.Finish(ctx, now, outs)
}
