package store

import (
	"context"
	"errors"
	"fmt"
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
	// Settled, when set, is the event's outcome decided at ingest, for a
	// route that needs no work (an accept route): Enqueue writes it as the
	// event's record, with its callback queued for delivery, in the same
	// atomic step that records the event, and the event never enters the
	// event queue. Nil queues the event for the workers.
	Settled *Settled
	// Delay, when positive, schedules the first attempt that long after
	// the event is recorded (Record.DeliverAt is set from it).
	// Record.DeliverAt, when set, schedules it then.
	Delay time.Duration

	// held: the event waits for the one before it in its ordering key's
	// sequence (set by Enqueue).
	held bool
}

// Settled is the outcome of an event decided at ingest: its terminal
// record, and its callback record (nil for none; one with status
// CallbackPending is queued for delivery). See NewEvent.Settled.
type Settled struct {
	Record   Record
	Callback *Callback
}

// enqueueScript records a batch of events, in one atomic step: it queues
// the new ones for the workers, or, for those settled at ingest, writes
// their final record and queues their callback. An id already stored, or
// seen earlier in the batch, is left as it is. The batch is in g groups,
// one per partition: on Redis Cluster a call has one group (its keys share
// the partition's slot); on a single node one call takes every partition
// of a flush, as slots mean nothing there.
//
//	KEYS[5j-4..5j]  group j's partition: event queue (zset), recent index (zset),
//	                callback queue (zset), destinations of callbacks (hash),
//	                events held for their ordering key (hash)
//	ARGV[1]  now (unix ms)   ARGV[2]  record key infix   ARGV[3]  body key infix
//	ARGV[4]  callback key infix   ARGV[5]  g
//	ARGV[4+2j], ARGV[5+2j]  group j's key tag and number of events
//	then 8 values per event, the groups' events in order: id, record JSON, body JSON,
//	         "1" when settled at ingest, callback JSON ("" for none),
//	         the destination of the callback to queue ("" for none),
//	         when it is due (unix ms), "1" to hold it (an ordering key's event
//	         that must wait for the one before it) instead of queueing it
//
// Returns, for each event in order, "" when it was created, or the stored
// record JSON.
var enqueueScript = redis.NewScript(`
local now, g = ARGV[1], tonumber(ARGV[5])
local base = 6 + 2*g
local stkeys, e = {}, 0
for j = 1, g do
  local tag = ARGV[4 + 2*j]
  for i = 1, tonumber(ARGV[5 + 2*j]) do
    e = e + 1
    stkeys[e] = tag .. ARGV[2] .. ARGV[base + 8*(e-1)]
  end
end
local cur = redis.call('MGET', unpack(stkeys))
local out, kv, seen = {}, {}, {}
e = 0
for j = 1, g do
  local tag = ARGV[4 + 2*j]
  local recent, queued, outbox, dests, held = {}, {}, {}, {}, {}
  for i = 1, tonumber(ARGV[5 + 2*j]) do
    e = e + 1
    local b = base + 8*(e-1)
    local id, st = ARGV[b], ARGV[b+1]
    local old = cur[e] or seen[stkeys[e]]
    if old then
      out[e] = old
    else
      seen[stkeys[e]] = st
      out[e] = ''
      kv[#kv+1] = stkeys[e]; kv[#kv+1] = st
      kv[#kv+1] = tag .. ARGV[3] .. id; kv[#kv+1] = ARGV[b+2]
      recent[#recent+1] = now; recent[#recent+1] = id
      if ARGV[b+7] == '1' then
        held[#held+1] = id; held[#held+1] = ARGV[b+6]
      elseif ARGV[b+3] ~= '1' then
        queued[#queued+1] = ARGV[b+6]; queued[#queued+1] = id
      elseif ARGV[b+4] ~= '' then
        kv[#kv+1] = tag .. ARGV[4] .. id; kv[#kv+1] = ARGV[b+4]
        if ARGV[b+5] ~= '' then
          outbox[#outbox+1] = now; outbox[#outbox+1] = id
          dests[#dests+1] = id; dests[#dests+1] = ARGV[b+5]
        end
      end
    end
  end
  if #recent > 0 then redis.call('ZADD', KEYS[5*j-3], unpack(recent)) end
  if #queued > 0 then redis.call('ZADD', KEYS[5*j-4], unpack(queued)) end
  if #outbox > 0 then
    redis.call('ZADD', KEYS[5*j-2], unpack(outbox))
    redis.call('HSET', KEYS[5*j-1], unpack(dests))
  end
  if #held > 0 then redis.call('HSET', KEYS[5*j], unpack(held)) end
end
if #kv > 0 then redis.call('MSET', unpack(kv)) end
return out
`)

// enqueueArgs are one event's arguments of enqueueScript.
type enqueueArgs struct {
	record, callback []byte
	settled          string // "1" when settled at ingest
	dest             string // the destination of the callback to queue, "" for none
	due              int64  // when the event is due (unix ms)
	held             string // "1" to hold it for its ordering key
}

// newEnqueueArgs encodes ev's record as Enqueue stores it at now: queued
// for the workers, or, settled at ingest, its final record and callback.
func newEnqueueArgs(ev NewEvent, now time.Time) (enqueueArgs, error) {
	var a enqueueArgs
	rec := ev.Record
	rec.Status, rec.Run = event.StatusQueued, 1
	rec.AcceptedAt, rec.UpdatedAt = now, now
	if ev.Delay > 0 {
		rec.DeliverAt = now.Add(ev.Delay)
	}
	a.due = now.UnixMilli()
	if rec.DeliverAt.After(now) {
		a.due = rec.DeliverAt.UnixMilli()
		rec.NextAttemptAt = rec.DeliverAt
	}
	if ev.held {
		a.held = "1"
	}
	if st := ev.Settled; st != nil {
		if !st.Record.Status.Terminal() {
			return a, fmt.Errorf("store: enqueue %s: settled with status %s, which is not terminal", rec.ID, st.Record.Status)
		}
		rec, a.settled = st.Record, "1"
		if cb := st.Callback; cb != nil {
			var err error
			if a.callback, err = marshalCallback(cb); err != nil {
				return a, fmt.Errorf("store: enqueue %s: %w", rec.ID, err)
			}
			if cb.Status == event.CallbackPending {
				a.dest = DestinationOf(cb.URL)
			}
		}
	}
	var err error
	if a.record, err = marshalRecord(&rec); err != nil {
		return a, fmt.Errorf("store: enqueue %s: %w", rec.ID, err)
	}
	return a, nil
}

// Enqueue records events and queues them for the workers (or, settled at
// ingest, queues their callbacks: NewEvent.Settled), in one atomic step
// per partition, all partitions in one round trip. For each event it
// returns nil when the event was created, or a *DuplicateError holding the
// record already stored under its id. The second result is an error of
// Redis itself: then the events of some partitions may have been written
// and others not, and the caller does not know which (an event is written
// whole or not at all).
func (s *Redis) Enqueue(ctx context.Context, now time.Time, evs []NewEvent) ([]error, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	ordered := false
	for i := range evs {
		ordered = ordered || (evs[i].Record.OrderingKey != "" && evs[i].Settled == nil)
	}
	if ordered {
		// Each ordered event joins its key's sequence first, and learns
		// whether it may run now or is held (see order.go).
		if err := s.join(ctx, now, evs); err != nil {
			return nil, fmt.Errorf("store: enqueue %d events: %w", len(evs), err)
		}
	}
	enc := make([]enqueueArgs, len(evs))
	for i := range evs {
		var err error
		if enc[i], err = newEnqueueArgs(evs[i], now); err != nil {
			return nil, err
		}
	}
	// One script per partition, all in one pipeline; on a single node,
	// one script for all of them.
	groups := s.byPartition(len(evs), func(i int) string { return evs[i].Record.ID })
	calls, order, parts := s.groupCalls(enqueueScript, groups,
		[]any{now.UnixMilli(), infixRecord, infixBody, infixCallback},
		func(k keys) []string { return []string{k.events, k.recent, k.callbacks, k.callbackDest, k.held} },
		func(to []any, i int) []any {
			e := enc[i]
			return append(to, evs[i].Record.ID, e.record, evs[i].Body, e.settled, e.callback, e.dest, e.due, e.held)
		})
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
	queued, called := false, false
	for g, cmd := range cmds {
		res, err := cmd.Slice()
		if err != nil {
			return nil, fmt.Errorf("store: enqueue %d events: %w", len(evs), err)
		}
		idx := order[g]
		if len(res) != len(idx) {
			return nil, fmt.Errorf("store: enqueue: got %d results, want %d", len(res), len(idx))
		}
		for j, v := range res {
			i := idx[j]
			old, _ := v.(string)
			if old == "" {
				switch {
				case enc[i].settled == "":
					queued = true
					s.pickers[kindEvents].wake(parts[g][j])
				case enc[i].dest != "":
					called = true
					s.pickers[kindCallbacks].wake(parts[g][j])
				}
				continue
			}
			var rec Record
			if err := decode([]byte(old), &rec); err != nil {
				return nil, fmt.Errorf("store: enqueue: decode record %s: %w", evs[i].Record.ID, err)
			}
			out[i] = &DuplicateError{Record: rec}
		}
	}
	if queued {
		signal(s.eventsReady)
	}
	if called {
		signal(s.callbacksReady)
	}
	if ordered {
		s.kickAfterEnqueue(ctx, now, evs, out)
	}
	return out, nil
}

// kickAfterEnqueue looks again at the sequences of the ordered events just
// recorded held, and of the repeats: the event before a held one may have
// ended between joining and recording (so its advance found no record to
// let run), and a repeat of an event that already ended re-joined its
// sequence. Either would wait for the healer otherwise.
func (s *Redis) kickAfterEnqueue(ctx context.Context, now time.Time, evs []NewEvent, out []error) {
	seen := map[string]bool{}
	var keys []string
	for i := range evs {
		k := evs[i].Record.OrderingKey
		if k == "" || evs[i].Settled != nil || seen[k] || (!evs[i].held && out[i] == nil) {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return
	}
	if _, err := s.kick(ctx, now, keys); err != nil {
		s.log.Warn("ordering keys not looked at after enqueue; the healer will", "keys", len(keys), "err", err)
	}
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
