package store

import (
	"context"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"sync"
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

// Enqueue records events and queues them for the workers, in one atomic
// step per partition, all partitions in one round trip. For each event it returns nil when the event was created, or
// a *DuplicateError holding the record already stored under its id. The
// second result is an error of Redis itself: then the events of some
// partitions may have been written and others not, and the caller does not
// know which (an event is written whole or not at all).
func (s *Redis) Enqueue(ctx context.Context, now time.Time, evs []NewEvent) ([]error, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	recs := make([][]byte, len(evs))
	for i := range evs {
		rec := evs[i].Record
		rec.Status, rec.Run = event.StatusQueued, 1
		rec.AcceptedAt, rec.UpdatedAt = now, now
		var err error
		if recs[i], err = json.Marshal(rec); err != nil {
			return nil, fmt.Errorf("store: enqueue %s: %w", rec.ID, err)
		}
	}
	// One script per partition, all in one pipeline.
	groups := s.byPartition(len(evs), func(i int) string { return evs[i].Record.ID })
	calls := make([]scriptCall, 0, len(groups))
	order := make([][]int, 0, len(groups))
	parts := make([]int, 0, len(groups))
	for p, idx := range groups {
		k := s.parts[p]
		args := make([]any, 0, 4+3*len(idx))
		args = append(args, k.tag, now.UnixMilli(), infixRecord, infixBody)
		for _, i := range idx {
			args = append(args, evs[i].Record.ID, recs[i], evs[i].Body)
		}
		calls = append(calls, scriptCall{enqueueScript, []string{k.events, k.recent}, args})
		order = append(order, idx)
		parts = append(parts, p)
	}
	var cmds []*redis.Cmd
	var err error
	if s.waitReplicas > 0 {
		cmds, err = s.runReplicated(ctx, calls)
	} else {
		cmds, err = s.runScripts(ctx, calls)
	}
	if err != nil {
		// Partitions are written independently: on an error some may
		// hold their events. A retry of the request finds those as
		// repeats of the same body, which is what the caller is told to do.
		return nil, fmt.Errorf("store: enqueue %d events: %w", len(evs), err)
	}
	out := make([]error, len(evs))
	for g, cmd := range cmds {
		res, err := cmd.Slice()
		if err != nil {
			return nil, fmt.Errorf("store: enqueue %d events: %w", len(evs), err)
		}
		idx := order[g]
		if len(res) != len(idx) {
			return nil, fmt.Errorf("store: enqueue: got %d results, want %d", len(res), len(idx))
		}
		created := false
		for j, v := range res {
			i := idx[j]
			old, _ := v.(string)
			if old == "" {
				created = true
				continue
			}
			var rec Record
			if err := decode([]byte(old), &rec); err != nil {
				return nil, fmt.Errorf("store: enqueue: decode record %s: %w", evs[i].Record.ID, err)
			}
			out[i] = &DuplicateError{Record: rec}
		}
		if created {
			s.pickers[kindEvents].wake(parts[g])
			signal(s.eventsReady)
		}
	}
	return out, nil
}

// runReplicated runs each call followed by WAIT on the same connection to
// the master of its keys, all nodes at once, and returns the calls'
// replies; a WAIT that counts fewer than waitReplicas replicas is
// ErrNotReplicated.
func (s *Redis) runReplicated(ctx context.Context, calls []scriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { cmds[i], errs[i] = s.runWaited(ctx, c) })
	}
	wg.Wait()
	return cmds, errors.Join(errs...)
}

// runWaited runs one call and WAIT in one pipeline on the connection of
// its master.
func (s *Redis) runWaited(ctx context.Context, c scriptCall) (*redis.Cmd, error) {
	var node redis.Cmdable = s.rdb
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var err error
		if node, err = cc.MasterForKey(ctx, c.keys[0]); err != nil {
			return nil, err
		}
	}
	run := func(eval func(p redis.Pipeliner) *redis.Cmd) (*redis.Cmd, *redis.Cmd, error) {
		var cmd, wait *redis.Cmd
		_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
			cmd = eval(p)
			wait = p.Do(ctx, "WAIT", s.waitReplicas, s.waitTimeout.Milliseconds())
			return nil
		})
		return cmd, wait, err
	}
	cmd, wait, err := run(func(p redis.Pipeliner) *redis.Cmd { return c.script.EvalSha(ctx, p, c.keys, c.args...) })
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd, wait, err = run(func(p redis.Pipeliner) *redis.Cmd { return c.script.Eval(ctx, p, c.keys, c.args...) })
	}
	if err != nil {
		return cmd, err
	}
	if n, _ := wait.Int64(); n < int64(s.waitReplicas) {
		return cmd, fmt.Errorf("%w: %d of %d within %v", ErrNotReplicated, n, s.waitReplicas, s.waitTimeout)
	}
	return cmd, nil
}
