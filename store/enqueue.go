package store

import (
	"context"
	"fmt"
	json "github.com/goccy/go-json"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/redis/go-redis/v9"
)

// NewEvent is an event to record: its initial record (ID, EventType,
// BodyHash, callback URLs) and its body.
type NewEvent struct {
	Record Record
	Body   []byte
}

// enqueueScript records a batch of events and queues the new ones, in one
// atomic step. An id already stored, or seen earlier in the batch, is left
// as it is.
//
//	KEYS[1]  event queue (zset)      KEYS[2]  recent index (zset)
//	ARGV[1]  key tag                 ARGV[2]  now (unix ms)
//	ARGV[3]  record key infix        ARGV[4]  body key infix
//	ARGV[3i+2], ARGV[3i+3], ARGV[3i+4] for event i (1-based): id, record JSON, body JSON
//
// Returns, for each event, "" when it was created, or the stored record JSON.
var enqueueScript = redis.NewScript(`
local tag, now = ARGV[1], ARGV[2]
local n = (#ARGV - 4) / 3
local stkeys = {}
for i = 1, n do stkeys[i] = tag .. ARGV[3] .. ARGV[3*i+2] end
local cur = redis.call('MGET', unpack(stkeys))
local out, kv, scored, seen = {}, {}, {}, {}
for i = 1, n do
  local id, st = ARGV[3*i+2], ARGV[3*i+3]
  local old = cur[i] or seen[id]
  if old then
    out[i] = old
  else
    seen[id] = st
    out[i] = ''
    kv[#kv+1] = stkeys[i]; kv[#kv+1] = st
    kv[#kv+1] = tag .. ARGV[4] .. id; kv[#kv+1] = ARGV[3*i+4]
    scored[#scored+1] = now; scored[#scored+1] = id
  end
end
if #kv > 0 then
  redis.call('MSET', unpack(kv))
  redis.call('ZADD', KEYS[1], unpack(scored))
  redis.call('ZADD', KEYS[2], unpack(scored))
end
return out
`)

// Enqueue records events and queues them for the workers, all in one
// atomic step. For each event it returns nil when the event was created, or
// a *DuplicateError holding the record already stored under its id. The
// second result is an error of Redis itself: then nothing was written.
func (s *Redis) Enqueue(ctx context.Context, now time.Time, evs []NewEvent) ([]error, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 4+3*len(evs))
	args = append(args, s.keys.tag, now.UnixMilli(), infixRecord, infixBody)
	for i := range evs {
		rec := evs[i].Record
		rec.Status, rec.Run = event.StatusQueued, 1
		rec.AcceptedAt, rec.UpdatedAt = now, now
		st, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("store: enqueue %s: %w", rec.ID, err)
		}
		args = append(args, rec.ID, st, evs[i].Body)
	}
	res, err := enqueueScript.Run(ctx, s.rdb, []string{s.keys.events, s.keys.recent}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("store: enqueue %d events: %w", len(evs), err)
	}
	if len(res) != len(evs) {
		return nil, fmt.Errorf("store: enqueue: got %d results, want %d", len(res), len(evs))
	}
	out := make([]error, len(evs))
	for i, v := range res {
		old, _ := v.(string)
		if old == "" {
			signal(s.eventsReady)
			continue
		}
		var rec Record
		if err := decode([]byte(old), &rec); err != nil {
			return nil, fmt.Errorf("store: enqueue: decode record %s: %w", evs[i].Record.ID, err)
		}
		out[i] = &DuplicateError{Record: rec}
	}
	return out, nil
}
