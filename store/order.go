package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Per-key ordering. An event with an ordering key joins its key's
// sequence when it is accepted, and starts only once every event before it
// in the sequence has reached a terminal status. The sequence lives under
// a hash tag of its own (as a destination's flow state does), so a key's
// events may sit in any partition:
//
//	{prefix:ord:<key>}     hash  seq: the counter that orders the sequence
//	{prefix:ord:<key>}:q   zset  id -> its place in the sequence; the head (lowest) may run
//	{prefix:ord:<key>}:at  hash  id -> when it joined (unix ms)
//	{prefix}:ordkeys       zset  key -> when last appended to or looked at (unix ms)
//	{t}:events:held        hash  id -> when it is to run: an event held out of the queue
//
// The steps, each atomic on its own slot:
//
//  1. join (Enqueue, before recording): the ids join their key's sequence,
//     in the order of the batch; an id already there keeps its place. Each
//     learns whether it is the head.
//  2. record (the enqueue script): the head is queued as any event; the
//     others are held (recorded, out of the queue) in their partition.
//  3. advance (when an event ends: Finish, Cancel): it leaves its sequence,
//     and the new head is activated: a held event is queued for its time.
//
// A crash between steps leaves a state that the healer (HealOrder, run by
// the engine every second) repairs, and that costs only time: a head that
// ended without its sequence advancing is popped; a held head is queued; a
// head that was never recorded (its request failed after step 1) is dropped
// after orderOrphanAfter. Nothing runs out of order meanwhile: an event
// runs only when it was the head.
const orderOrphanAfter = 30 * time.Second

// orderKeys names the keys of ordering key key.
type orderKeys struct{ state, q, at string }

func (s *Redis) orderKeys(key string) orderKeys {
	tag := "{" + s.prefix + ":ord:" + key + "}"
	return orderKeys{state: tag, q: tag + ":q", at: tag + ":at"}
}

func (s *Redis) orderIndex() string { return "{" + s.prefix + "}:ordkeys" }

// joinScript adds ids to a key's sequence, in order; an id already in it
// keeps its place.
//
//	KEYS[1]  state (hash)   KEYS[2]  sequence (zset)   KEYS[3]  joined at (hash)
//	ARGV[1]  now (unix ms)  ARGV[2..]  ids
//
// Returns the head of the sequence after the ids joined.
var joinScript = redis.NewScript(`
for i = 2, #ARGV do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('ZADD', KEYS[2], seq, ARGV[i])
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[1])
  end
end
return redis.call('ZRANGE', KEYS[2], 0, 0)[1]
`)

// join puts the ordered events of evs (those with an ordering key and not
// settled) in their keys' sequences, one script per key in one round trip,
// and marks held those that are not their sequence's head.
func (s *Redis) join(ctx context.Context, now time.Time, evs []NewEvent) error {
	byKey := map[string][]int{}
	var keyOrder []string
	for i := range evs {
		k := evs[i].Record.OrderingKey
		if k == "" || evs[i].Settled != nil {
			continue
		}
		if _, ok := byKey[k]; !ok {
			keyOrder = append(keyOrder, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	if len(keyOrder) == 0 {
		return nil
	}
	calls := make([]scriptCall, len(keyOrder))
	index := make([]redis.Z, len(keyOrder))
	for j, key := range keyOrder {
		ok := s.orderKeys(key)
		args := []any{now.UnixMilli()}
		for _, i := range byKey[key] {
			args = append(args, evs[i].Record.ID)
		}
		calls[j] = scriptCall{joinScript, []string{ok.state, ok.q, ok.at}, args}
		index[j] = redis.Z{Score: float64(now.UnixMilli()), Member: key}
	}
	cmds, err := s.runScripts(ctx, calls, func(p redis.Pipeliner) { p.ZAdd(ctx, s.orderIndex(), index...) })
	if err != nil {
		return fmt.Errorf("store: join %d ordering keys: %w", len(keyOrder), err)
	}
	for j, key := range keyOrder {
		head, _ := cmds[j].Text()
		for _, i := range byKey[key] {
			evs[i].held = evs[i].Record.ID != head
		}
	}
	return nil
}

// activateScript lets the head of a sequence run.
//
//	KEYS[1]  record key   KEYS[2]  event queue (zset)   KEYS[3]  held events (hash)
//	ARGV[1]  id   ARGV[2]  now (unix ms)
//
// Returns 1 when the event is queued (now, or already: waiting, running or
// retrying), 2 when it has ended (neither held nor queued), 0 when it has
// no record.
var activateScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local due = redis.call('HGET', KEYS[3], ARGV[1])
if due then
  redis.call('HDEL', KEYS[3], ARGV[1])
  if tonumber(due) < tonumber(ARGV[2]) then due = ARGV[2] end
  redis.call('ZADD', KEYS[2], due, ARGV[1])
  return 1
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 1 end
return 2
`)

// popScript takes ids out of a key's sequence and returns its head after
// ("" when it is empty: a nil reply would fail a whole pipeline), so the
// next step needs no read of its own.
//
//	KEYS[1]  sequence (zset)   KEYS[2]  joined at (hash)   ARGV  ids
var popScript = redis.NewScript(`
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return redis.call('ZRANGE', KEYS[1], 0, 0)[1] or ''
`)

// popCall is the popScript call that takes ids out of key's sequence.
func (s *Redis) popCall(key string, ids ...any) scriptCall {
	ok := s.orderKeys(key)
	return scriptCall{popScript, []string{ok.q, ok.at}, ids}
}

// advanceOrder takes ended events out of their sequences and lets each
// sequence's next event run: two round trips (pop, activate) when the next
// one is there to run. Its failure is logged, not returned: the outcomes
// stand, and the healer advances the sequences later.
func (s *Redis) advanceOrder(ctx context.Context, now time.Time, ended []Record) {
	if s.skipAdvance {
		return
	}
	byKey := map[string][]any{}
	for _, r := range ended {
		if r.OrderingKey != "" {
			byKey[r.OrderingKey] = append(byKey[r.OrderingKey], r.ID)
		}
	}
	if len(byKey) == 0 {
		return
	}
	calls := make([]scriptCall, 0, len(byKey))
	keys := make([]string, 0, len(byKey))
	for key, ids := range byKey {
		calls = append(calls, s.popCall(key, ids...))
		keys = append(keys, key)
	}
	err := func() error {
		cmds, err := s.runScripts(ctx, calls)
		if err != nil {
			return err
		}
		heads := make([]string, len(cmds))
		for i, cmd := range cmds {
			if heads[i], err = cmd.Text(); err != nil {
				return err
			}
		}
		_, err = s.activateHeads(ctx, now, keys, heads)
		return err
	}()
	if err != nil {
		s.log.Warn("ordering keys not advanced; the healer will", "keys", len(keys), "err", err)
	}
}

// kick makes sure the head of each key's sequence may run (see
// activateHeads), and returns the keys whose sequence is empty.
func (s *Redis) kick(ctx context.Context, now time.Time, keys []string) (empty []string, err error) {
	cmds := make([]*redis.StringSliceCmd, len(keys))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range keys {
			cmds[i] = p.ZRange(ctx, s.orderKeys(key).q, 0, 0)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("store: read the heads of %d ordering keys: %w", len(keys), err)
	}
	heads := make([]string, len(keys))
	for i, c := range cmds {
		if hs := c.Val(); len(hs) > 0 {
			heads[i] = hs[0]
		}
	}
	return s.activateHeads(ctx, now, keys, heads)
}

// activateHeads lets heads[i], the head of keys[i]'s sequence ("" for an
// empty one), run: a held head is queued; an ended one (or one never
// recorded, after orderOrphanAfter) is popped and the next looked at, up
// to 64 per key per call. It returns the keys whose sequence is empty.
func (s *Redis) activateHeads(ctx context.Context, now time.Time, keys, heads []string) (empty []string, err error) {
	woke := map[int]bool{}
	defer func() {
		if len(woke) > 0 {
			signal(s.eventsReady)
		}
	}()
	for round := 0; round < 64 && len(keys) > 0; round++ {
		var calls []scriptCall
		var live, ids []string
		for i, key := range keys {
			id := heads[i]
			if id == "" {
				empty = append(empty, key)
				continue
			}
			k := s.part(id)
			calls = append(calls, scriptCall{activateScript, []string{k.record(id), k.events, k.held}, []any{id, now.UnixMilli()}})
			live, ids = append(live, key), append(ids, id)
		}
		if len(calls) == 0 {
			break
		}
		cmds, err := s.runScripts(ctx, calls)
		if err != nil {
			return empty, fmt.Errorf("store: activate %d ordering heads: %w", len(calls), err)
		}
		var pops []scriptCall
		var next []string
		for i, cmd := range cmds {
			res, _ := cmd.Int()
			id, key := ids[i], live[i]
			switch {
			case res == 1:
				if p := partitionOf(id, len(s.parts)); !woke[p] {
					woke[p] = true
					s.pickers[kindEvents].wake(p)
				}
			case res == 2 || (res == 0 && s.orphaned(ctx, key, id, now)):
				pops = append(pops, s.popCall(key, id))
				next = append(next, key)
			}
		}
		if len(pops) == 0 {
			break
		}
		popped, err := s.runScripts(ctx, pops)
		if err != nil {
			return empty, fmt.Errorf("store: pop %d ended ordering heads: %w", len(pops), err)
		}
		keys, heads = next, make([]string, len(popped))
		for i, cmd := range popped {
			if heads[i], err = cmd.Text(); err != nil {
				return empty, fmt.Errorf("store: pop %d ended ordering heads: %w", len(pops), err)
			}
		}
	}
	return empty, nil
}

// orphaned reports whether id, the head of key's sequence with no record,
// joined longer than orderOrphanAfter ago: its request failed between
// joining and recording, and was not sent again.
func (s *Redis) orphaned(ctx context.Context, key, id string, now time.Time) bool {
	v, err := s.rdb.HGet(ctx, s.orderKeys(key).at, id).Result()
	if err != nil {
		return err == redis.Nil // no time: joined before the time was kept, or popped meanwhile
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	return err == nil && now.Sub(time.UnixMilli(ms)) > orderOrphanAfter
}

// forgetScript drops a key from the index when its sequence is empty and
// nothing joined it since cutoff.
//
//	KEYS[1]  index (zset)   ARGV[1]  key   ARGV[2]  cutoff (unix ms)
var forgetKeyScript = redis.NewScript(`
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if at and tonumber(at) < tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1
`)

// HealOrder repairs the sequences of up to n ordering keys, those looked
// at longest ago: it lets each one's head run (see kick) and forgets keys
// whose sequence has been empty for a minute. The engine runs it every
// second; it returns how many keys it looked at.
func (s *Redis) HealOrder(ctx context.Context, now time.Time, n int) (int, error) {
	keys, err := s.rdb.ZRange(ctx, s.orderIndex(), 0, int64(n-1)).Result()
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	empty, err := s.kick(ctx, now, keys)
	if err != nil {
		return len(keys), err
	}
	isEmpty := make(map[string]bool, len(empty))
	for _, k := range empty {
		isEmpty[k] = true
	}
	cutoff := now.Add(-time.Minute).UnixMilli()
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		var touched []redis.Z
		for _, k := range keys {
			if isEmpty[k] {
				forgetKeyScript.Eval(ctx, p, []string{s.orderIndex()}, k, cutoff)
			} else {
				touched = append(touched, redis.Z{Score: float64(now.UnixMilli()), Member: k})
			}
		}
		if len(touched) > 0 {
			p.ZAdd(ctx, s.orderIndex(), touched...)
		}
		return nil
	})
	return len(keys), err
}

// OrderHead returns the event at the head of key's sequence, the one the
// others of the key wait for ("" when the sequence is empty).
func (s *Redis) OrderHead(ctx context.Context, key string) (string, error) {
	ids, err := s.rdb.ZRange(ctx, s.orderKeys(key).q, 0, 0).Result()
	if err != nil || len(ids) == 0 {
		return "", err
	}
	return ids[0], nil
}
