package store

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is a claim on one queued item: only the holder of Token may record
// the item's outcome, and only while no other claim has replaced it.
type Lease struct {
	ID    string
	Token int64
}

// claimScript leases up to a number of due items, from the queues of g
// partitions in turn (one on a cluster, where a script stays in one slot;
// any number on a single node, see groupCalls) until it has that many.
//
//	KEYS[6j-5..6j]  partition j: due (zset), leases (hash), attempts (hash), token counter,
//	                destinations of items (hash), waiting reasons (hash): the last two only
//	                with flow control
//	ARGV[1]  now (unix ms)   ARGV[2]  lease deadline (unix ms)   ARGV[3]  max items, in all
//	ARGV[4]  where the items' destinations are: "" (none), "hash" (in the destinations hash),
//	         or "types" (from the event type in the item's record, the first infix's key,
//	         recorded in the destinations hash)
//	ARGV[5]  k, the number of infixes of per-item keys to read (":st:", ":ev:", ":cb:"), then those k
//	then     with "types": m, the number of event types with a route, then m pairs: type ("*": any
//	         other), and its destination ("" for a route with none);
//	         with "hash": this process's local share of a destination (0: none), then q, then q
//	         pairs: destination, and the room left in its share
//	then     g, then the g partitions' key tags
//
// With "hash" and a local share, a due item whose destination has no room
// left in this process's share is not leased: it stays due, untouched, for
// a claim that has room (the room is shared by the partitions of a call,
// and a partition that had such items is the last one looked at).
// Each leased item gets the deadline as its score, the partition's new
// token as its lease and one more attempt; its waiting reason, if any, is
// dropped. Returns one reply per partition: {token, reclaimed, ids,
// attempts, destinations ({} without flow control), 1 when due items were
// left for want of room in the local share else 0, values of the 1st
// infix's keys, ...}, or {0, score of the first item or -1} when no item is
// due, or {0, -2} when its due items all wait for room in the local share,
// or {0, -3} when it was not looked at (the call had its items already).
// reclaimed counts the leased items that still had a lease: one that
// expired, its holder dead (a finished or released item has none).
var claimScript = redis.NewScript(`
local now, deadline, budget, mode, nvals = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local at = 6 + nvals
local typeDest, share, room = {}, 0, {}
if mode == 'types' then
  local m = tonumber(ARGV[at])
  for i = 1, m do typeDest[ARGV[at + 2*i - 1]] = ARGV[at + 2*i] end
  at = at + 1 + 2*m
elseif mode == 'hash' then
  share = tonumber(ARGV[at])
  local q = tonumber(ARGV[at + 1])
  for i = 1, q do room[ARGV[at + 2*i]] = tonumber(ARGV[at + 2*i + 1]) end
  at = at + 2 + 2*q
end
local g = tonumber(ARGV[at])
local replies, full = {}, false
for j = 1, g do
  local tag, K = ARGV[at + j], 6*(j-1)
  if budget <= 0 or full then
    replies[j] = {0, '-3'}
  else
    local ids = redis.call('ZRANGEBYSCORE', KEYS[K+1], '-inf', now, 'LIMIT', 0, budget)
    local dests, cut = {}, 0
    if #ids > 0 and mode == 'hash' then
      dests = redis.call('HMGET', KEYS[K+5], unpack(ids))
      if share > 0 then
        local kept, keptDests = {}, {}
        for i, id in ipairs(ids) do
          local d = dests[i]
          local r = d and (room[d] or share) or 1
          if r > 0 then
            if d then room[d] = r - 1 end
            kept[#kept+1] = id; keptDests[#keptDests+1] = d
          else
            cut = 1
          end
        end
        ids, dests = kept, keptDests
        if #ids == 0 then replies[j] = {0, '-2'} end
        -- The next partitions would mostly hold more of the same: they
        -- wait for the next claim, which starts at the next partition.
        if cut == 1 then full = true end
      end
    elseif #ids == 0 then
      local first = redis.call('ZRANGE', KEYS[K+1], 0, 0, 'WITHSCORES')
      replies[j] = {0, first[2] or '-1'}
    end
    if #ids > 0 then
      budget = budget - #ids
      local token = redis.call('INCR', KEYS[K+4])
      local prev, reclaimed = redis.call('HMGET', KEYS[K+2], unpack(ids)), 0
      for i = 1, #ids do if prev[i] then reclaimed = reclaimed + 1 end end
      local due, lease = {}, {}
      for i, id in ipairs(ids) do
        due[2*i-1] = deadline; due[2*i] = id
        lease[2*i-1] = id; lease[2*i] = token
      end
      redis.call('ZADD', KEYS[K+1], unpack(due))
      redis.call('HSET', KEYS[K+2], unpack(lease))
      local att = redis.call('HMGET', KEYS[K+3], unpack(ids))
      local attset = {}
      for i, id in ipairs(ids) do
        att[i] = (tonumber(att[i]) or 0) + 1
        attset[2*i-1] = id; attset[2*i] = att[i]
      end
      redis.call('HSET', KEYS[K+3], unpack(attset))
      local vals = {}
      for v = 1, nvals do
        local keys = {}
        for i, id in ipairs(ids) do keys[i] = tag .. ARGV[5 + v] .. id end
        vals[v] = redis.call('MGET', unpack(keys))
      end
      if mode == 'types' then
        local held = {}
        for i, id in ipairs(ids) do
          -- Records start {"id":"<id>","event_type":"<type>": both are letters,
          -- digits and ._:- only (event.ValidateID, ValidateEventType).
          local t = vals[1][i] and string.match(vals[1][i], '"event_type":"([^"]*)"')
          local d = t and typeDest[t]
          if d == nil and t then d = typeDest['*'] end
          if d == nil or d == '' then
            dests[i] = false
          else
            dests[i] = d
            held[#held+1] = id; held[#held+1] = d
          end
        end
        if #held > 0 then redis.call('HSET', KEYS[K+5], unpack(held)) end
      end
      if mode ~= '' then redis.call('HDEL', KEYS[K+6], unpack(ids)) end
      local out = {token, reclaimed, ids, att, dests, cut}
      for v = 1, nvals do out[#out+1] = vals[v] end
      replies[j] = out
    end
  end
end
return replies
`)

// claimed is what one claim on one partition leased: ids[i] with
// attempts[i], dests[i] its destination ("" for none, or without flow
// control), and values[j][i] the value of the j-th infix's key of ids[i]
// ("" when missing).
type claimed struct {
	part      int
	token     int64
	reclaimed int // leased items whose previous lease had expired
	ids       []string
	attempts  []int
	dests     []string
	values    [][]string
	next      time.Time // when nothing was due: the first item's score, or zero
	// localFull is set by the claim script, or by admit, when this
	// process's share of a destination left due items unclaimed, or
	// (Flow.Local) deferred some of the items.
	localFull bool
}

// claimedCount is the number of items leased by the claims cs.
func claimedCount(cs []claimed) int {
	n := 0
	for _, c := range cs {
		n += len(c.ids)
	}
	return n
}

// leaseAt returns the lease of the i-th item.
func (c claimed) leaseAt(i int) Lease { return Lease{ID: c.ids[i], Token: c.token} }

// replyStrings converts a script's array reply to strings, nil becoming "".
func replyStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, len(arr))
	for i, x := range arr {
		out[i], _ = x.(string)
	}
	return out
}

// claimSpec says what a claim reads besides the leases: the values of the
// items' keys of valueInfixes, and, with flow control (destMode not ""),
// where the items' destinations are.
type claimSpec struct {
	valueInfixes []string
	destMode     string            // "", "hash" or "types"
	destByType   map[string]string // with "types"
	flow         Flow
}

// claimParts runs claimScript on partitions parts, in that order, for up
// to n items in all, in one call (several partitions only on a single
// node), and returns what it found in each partition it looked at.
//
// here counts this process's deliveries in flight by destination, for the
// local share (Flow.Local) the script leaves room for; nil for none.
func (s *Redis) claimParts(ctx context.Context, parts []int, kind queueKind, spec claimSpec, here map[string]int, now time.Time, lease time.Duration, n int) ([]claimed, error) {
	args := make([]any, 0, 8+len(spec.valueInfixes)+2*len(spec.destByType)+2*len(here)+len(parts))
	args = append(args, now.UnixMilli(), now.Add(lease).UnixMilli(), n, spec.destMode, len(spec.valueInfixes))
	for _, in := range spec.valueInfixes {
		args = append(args, in)
	}
	switch spec.destMode {
	case "types":
		args = append(args, len(spec.destByType))
		for t, d := range spec.destByType {
			args = append(args, t, d)
		}
	case "hash":
		args = append(args, spec.flow.Local, len(here))
		for d, n := range here {
			args = append(args, d, max(spec.flow.Local-n, 0))
		}
	}
	args = append(args, len(parts))
	keys := make([]string, 0, 6*len(parts))
	for _, p := range parts {
		k := s.parts[p]
		q := k.queue(kind)
		destHash, waitHash := k.flowHashes(kind)
		keys = append(keys, q.due, q.lease, q.attempts, k.token, destHash, waitHash)
		args = append(args, k.tag)
	}
	q := s.parts[parts[0]].queue(kind)
	res, err := claimScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("store: claim from %s: %w", q.due, err)
	}
	if len(res) != len(parts) {
		return nil, fmt.Errorf("store: claim from %s: got %d replies, want %d", q.due, len(res), len(parts))
	}
	out := make([]claimed, 0, len(parts))
	for j, r := range res {
		reply, _ := r.([]any)
		if len(reply) < 2 {
			return nil, fmt.Errorf("store: claim from %s: unexpected reply %v", q.due, r)
		}
		c, looked := s.parseClaim(q, reply)
		if !looked {
			continue
		}
		c.part = parts[j]
		out = append(out, c)
	}
	return out, nil
}

// parseClaim reads one partition's reply of claimScript, and whether the
// script looked at that partition at all. It tells the observer of the
// leases reclaimed.
func (s *Redis) parseClaim(q queue, res []any) (claimed, bool) {
	token, _ := res[0].(int64)
	if token == 0 {
		var c claimed
		ms, err := strconv.ParseFloat(fmt.Sprint(res[1]), 64)
		switch {
		case err == nil && ms >= 0:
			c.next = time.UnixMilli(int64(ms))
		case err == nil && ms == -2:
			c.localFull = true
		case err == nil && ms == -3:
			return c, false
		}
		return c, true
	}
	reclaimed, _ := res[1].(int64)
	c := claimed{token: token, reclaimed: int(reclaimed), ids: replyStrings(res[2])}
	for _, a := range res[3].([]any) {
		v, _ := a.(int64)
		c.attempts = append(c.attempts, int(v))
	}
	if dests := replyStrings(res[4]); len(dests) == len(c.ids) {
		c.dests = dests
	}
	if c.reclaimed > 0 {
		s.obs.LeasesReclaimed(q.name, c.reclaimed)
	}
	c.localFull = res[5] == int64(1)
	for _, vals := range res[6:] {
		c.values = append(c.values, replyStrings(vals))
	}
	return c, true
}

// claim leases up to n due items of a queue, going round the partitions
// that may have due work (see picker): each claim starts at the next
// partition, and takes from the following ones until it has n. With flow
// control, each partition's leased items are then admitted by their
// destinations, and the others deferred (see admit). When nothing is due,
// it returns when the first partition may have work.
func (s *Redis) claim(ctx context.Context, kind queueKind, spec claimSpec, now time.Time, lease time.Duration, n int) ([]claimed, time.Time, error) {
	pk := s.pickers[kind]
	cands, err := s.duePartitions(ctx, kind, pk, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	var here map[string]int // this process's deliveries in flight, for Flow.Local
	if spec.destMode != "" && spec.flow.Local > 0 && spec.flow.LocalInFlight != nil {
		here = maps.Clone(spec.flow.LocalInFlight())
		if here == nil {
			here = make(map[string]int)
		}
	}
	var local map[string]int
	if spec.destMode == "hash" {
		local = here
	}
	var out []claimed
	got := 0
	left := false // due items were left for want of room in this process's share
	for len(cands) > 0 && got < n && !left {
		// One partition per call on a cluster; all of them on a single node.
		batch := cands[:1]
		if s.crossSlot {
			batch = cands
		}
		cands = cands[len(batch):]
		cs, err := s.claimParts(ctx, batch, kind, spec, local, now, lease, n-got)
		if err != nil {
			return out, time.Time{}, err
		}
		var leased []claimed
		for _, c := range cs {
			if c.localFull && len(c.ids) == 0 {
				// Its due items all wait for room in this process's
				// share: look again when a delivery ends, or soon.
				pk.found(c.part, now, false, now.Add(localWait))
				left = true
				continue
			}
			pk.found(c.part, now, len(c.ids) > 0, c.next)
			if len(c.ids) > 0 {
				leased = append(leased, c)
			}
		}
		if spec.destMode != "" && len(leased) > 0 {
			if leased, err = s.admit(ctx, kind, spec.flow, here, leased, now, lease); err != nil {
				return out, time.Time{}, err
			}
		}
		for _, c := range leased {
			if len(c.ids) > 0 {
				out = append(out, c)
				got += len(c.ids)
			} else {
				// Everything it leased was deferred: look again when
				// the first deferral comes back, not at once (a pool
				// with workers free for other destinations only would
				// spin).
				pk.found(c.part, now, false, c.next)
			}
			if c.localFull {
				// This process has its share of a destination in
				// flight: more partitions would mostly have deliveries
				// to leave or defer again. The next claim starts at the
				// next partition.
				left = true
			}
		}
	}
	if got > 0 {
		if left {
			return out, now, nil
		}
		return out, time.Time{}, nil
	}
	return nil, pk.earliest(now), nil
}

// duePartitions returns the partitions a claim at now should take from,
// in turn: those whose last claim leased something or that were woken, and
// those found due by one pipelined peek at the first item of each
// partition whose time to be looked at came.
func (s *Redis) duePartitions(ctx context.Context, kind queueKind, pk *picker, now time.Time) ([]int, error) {
	cands := pk.due(now)
	var peek []int
	for _, c := range cands {
		if c.peek {
			peek = append(peek, c.part)
		}
	}
	due := make(map[int]bool, len(peek))
	if len(peek) > 0 {
		firsts := make([]*redis.ZSliceCmd, len(peek))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, part := range peek {
				firsts[i] = p.ZRangeWithScores(ctx, s.parts[part].queue(kind).due, 0, 0)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: look for due work: %w", err)
		}
		for i, part := range peek {
			var next time.Time
			if z := firsts[i].Val(); len(z) == 1 {
				next = time.UnixMilli(int64(z[0].Score))
			}
			if !next.IsZero() && !next.After(now) {
				due[part] = true
			} else {
				pk.found(part, now, false, next)
			}
		}
	}
	out := make([]int, 0, len(cands))
	for _, c := range cands {
		if !c.peek || due[c.part] {
			out = append(out, c.part)
		}
	}
	return out, nil
}

// renewScript extends the leases still held.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  destinations of items (hash)
//	ARGV[1]  new deadline (unix ms)   ARGV[2]  "1" to return the destinations of held items
//	ARGV[2i+1], ARGV[2i+2]  id and token of lease i
//
// Returns {ids whose lease is no longer held by the token, ids renewed,
// their destinations in order (false for none; {} unless asked)}.
var renewScript = redis.NewScript(`
local n = (#ARGV - 2) / 2
local ids = {}
for i = 1, n do ids[i] = ARGV[2*i+1] end
local cur = redis.call('HMGET', KEYS[2], unpack(ids))
local due, lost, held = {}, {}, {}
for i = 1, n do
  if cur[i] == ARGV[2*i+2] then
    due[#due+1] = ARGV[1]; due[#due+1] = ids[i]
    held[#held+1] = ids[i]
  else
    lost[#lost+1] = ids[i]
  end
end
local dests = {}
if #due > 0 then
  redis.call('ZADD', KEYS[1], 'XX', unpack(due))
  if ARGV[2] == '1' then dests = redis.call('HMGET', KEYS[3], unpack(held)) end
end
return {lost, held, dests}
`)

// renew runs renewScript on each partition of leases, in one round trip,
// and with flow control moves the renewed items' deadlines in their
// destinations' in-flight sets too.
func (s *Redis) renew(ctx context.Context, kind queueKind, flowOn bool, deadline time.Time, leases []Lease) ([]string, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	calls := s.leaseCalls(kind, leases, func(k keys, q queue, destHash string) scriptCall {
		return scriptCall{renewScript, []string{q.due, q.lease, destHash}, []any{deadline.UnixMilli(), flag(flowOn)}}
	})
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("store: renew %d leases: %w", len(leases), err)
	}
	var lost []string
	inflight := make(map[string][]string) // destination -> ids renewed
	for _, cmd := range cmds {
		res, _ := cmd.Val().([]any)
		if len(res) != 3 {
			return nil, fmt.Errorf("store: renew: unexpected reply %v", cmd.Val())
		}
		lost = append(lost, replyStrings(res[0])...)
		held, dests := replyStrings(res[1]), replyStrings(res[2])
		for i, d := range dests {
			if d != "" && i < len(held) {
				inflight[d] = append(inflight[d], held[i])
			}
		}
	}
	return lost, s.touchInflight(ctx, inflight, deadline)
}

// finishScript records the outcomes of leased items whose lease is still
// held, in one atomic step on one partition.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)
//	KEYS[4]  callback queue (zset)   KEYS[5]  dead letters (zset)   KEYS[6]  destinations of callbacks (hash)
//	KEYS[7]  destinations of the items in flight (hash)   KEYS[8]  the items' waiting reasons (hash)
//	ARGV[1]  key tag      ARGV[2]  now (unix ms)   ARGV[3]  infix of the item's record key
//	ARGV[4]  infix of the callback record key
//	ARGV[5]  "1" when items may have a destination (flow control), else ""
//	ARGV[6]  the prefix of the channels told of an item done (its id follows), "" for none
//	ARGV[7..] 8 values for each item: id, token, due (unix ms, "" when done), record JSON,
//	         callback JSON ("" for none), "1" to queue the callback for delivery, "1" when
//	         the item failed for good (a dead letter), the callback's destination
//
// An applied item's record is written and its lease dropped; with a due time
// it is queued again for then, without one it leaves the queue and its
// attempt count is dropped (the record holds the final count). A callback is
// written under the item's id and, when asked, queued for delivery now. A
// dead item is added to the dead letters. A queued callback's destination
// is recorded with it. With flow control, an applied item's destination
// and waiting reason are dropped.
// Returns {for each item 1 when applied and 0 when its lease was lost, the
// destinations of the applied items in order (false for none; {} without
// flow control)}.
var finishScript = redis.NewScript(`
local n = (#ARGV - 6) / 8
local ids = {}
for i = 1, n do ids[i] = ARGV[7 + 8*(i-1)] end
local cur = redis.call('HMGET', KEYS[2], unpack(ids))
local out, kv, requeue, done, applied, outbox, dead, dests = {}, {}, {}, {}, {}, {}, {}, {}
for i = 1, n do
  local b = 7 + 8*(i-1)
  local id = ARGV[b]
  if cur[i] == ARGV[b+1] then
    out[i] = 1
    applied[#applied+1] = id
    kv[#kv+1] = ARGV[1] .. ARGV[3] .. id; kv[#kv+1] = ARGV[b+3]
    if ARGV[b+2] ~= '' then
      requeue[#requeue+1] = ARGV[b+2]; requeue[#requeue+1] = id
    else
      done[#done+1] = id
    end
    if ARGV[b+4] ~= '' then
      kv[#kv+1] = ARGV[1] .. ARGV[4] .. id; kv[#kv+1] = ARGV[b+4]
      if ARGV[b+5] == '1' then
        outbox[#outbox+1] = ARGV[2]; outbox[#outbox+1] = id
        if ARGV[b+7] ~= '' then dests[#dests+1] = id; dests[#dests+1] = ARGV[b+7] end
      end
    end
    if ARGV[b+6] == '1' then dead[#dead+1] = ARGV[2]; dead[#dead+1] = id end
  else
    out[i] = 0
  end
end
local held = {}
if #applied > 0 then
  redis.call('MSET', unpack(kv))
  redis.call('HDEL', KEYS[2], unpack(applied))
  if ARGV[5] == '1' then
    redis.call('HDEL', KEYS[8], unpack(applied))
    held = redis.call('HMGET', KEYS[7], unpack(applied))
    redis.call('HDEL', KEYS[7], unpack(applied))
  end
end
if #requeue > 0 then redis.call('ZADD', KEYS[1], unpack(requeue)) end
if #done > 0 then
  redis.call('ZREM', KEYS[1], unpack(done))
  redis.call('HDEL', KEYS[3], unpack(done))
  if ARGV[6] ~= '' then
    for _, id in ipairs(done) do redis.call('PUBLISH', ARGV[6] .. id, 'done') end
  end
end
if #outbox > 0 then redis.call('ZADD', KEYS[4], unpack(outbox)) end
if #dests > 0 then redis.call('HSET', KEYS[6], unpack(dests)) end
if #dead > 0 then redis.call('ZADD', KEYS[5], unpack(dead)) end
return {out, held}
`)

// finishItem is one outcome for finishScript.
type finishItem struct {
	lease         Lease
	due           time.Time // zero: done, leave the queue
	record        []byte
	callback      []byte // nil: none
	queueCallback bool
	dest          string // the queued callback's destination
	dead          bool   // failed for good: add to the dead letters
	flow          string // the flow outcome for the item's own destination
}

// finish runs finishScript on each partition of items, in one round trip;
// with flow control (flow not nil) it then feeds the items' destinations.
// It returns which outcomes were applied, and which partitions had a
// callback queued.
func (s *Redis) finish(ctx context.Context, kind queueKind, flow *Flow, now time.Time, items []finishItem) ([]bool, error) {
	if len(items) == 0 {
		return nil, nil
	}
	groups := s.byPartition(len(items), func(i int) string { return items[i].lease.ID })
	calls := make([]scriptCall, 0, len(groups))
	order := make([][]int, 0, len(groups))
	for p, idx := range groups {
		k := s.parts[p]
		q := k.queue(kind)
		args := make([]any, 0, 6+8*len(idx))
		done := ""
		if kind != kindCallbacks {
			done = s.doneChannel("")
		}
		args = append(args, k.tag, now.UnixMilli(), infixRecord, infixCallback, flag(flow != nil), done)
		for _, i := range idx {
			it := items[i]
			due := ""
			if !it.due.IsZero() {
				due = strconv.FormatInt(it.due.UnixMilli(), 10)
			}
			args = append(args, it.lease.ID, it.lease.Token, due, it.record, it.callback, flag(it.queueCallback), flag(it.dead), it.dest)
		}
		calls = append(calls, scriptCall{finishScript, []string{q.due, q.lease, q.attempts, k.callbacks, k.dead,
			k.callbackDest, k.eventDest, k.eventWaiting}, args})
		order = append(order, idx)
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("store: finish %d items: %w", len(items), err)
	}
	applied, outs, err := finishReplies(cmds, order, len(items), func(i int) (string, string) { return items[i].lease.ID, items[i].flow })
	if err != nil {
		return nil, err
	}
	if flow != nil {
		s.feedFlowAfter(ctx, *flow, now, outs)
	}
	return applied, nil
}

// finishReplies reads the replies of finish scripts run per partition
// (order[g] the indexes of the items of the g-th) for n items: which were
// applied, and the flow outcome of each applied item that has a
// destination; item returns an item's id and flow outcome.
func finishReplies(cmds []*redis.Cmd, order [][]int, n int, item func(i int) (id, flow string)) ([]bool, []flowOutcome, error) {
	applied := make([]bool, n)
	var outs []flowOutcome
	for g, cmd := range cmds {
		idx := order[g]
		flags, held, err := finishReply(cmd, len(idx))
		if err != nil {
			return nil, nil, err
		}
		h := 0
		for j, ok := range flags {
			applied[idx[j]] = ok
			if !ok {
				continue
			}
			if h < len(held) && held[h] != "" {
				id, flow := item(idx[j])
				outs = append(outs, flowOutcome{id: id, dest: held[h], outcome: flow})
			}
			h++
		}
	}
	return applied, outs, nil
}

// finishReply reads the reply of a finish script for n items: which were
// applied, and the destinations of the applied ones, in order.
func finishReply(cmd *redis.Cmd, n int) ([]bool, []string, error) {
	res, _ := cmd.Val().([]any)
	if len(res) != 2 {
		return nil, nil, fmt.Errorf("store: finish: unexpected reply %v", cmd.Val())
	}
	flags, _ := res[0].([]any)
	if len(flags) != n {
		return nil, nil, fmt.Errorf("store: finish: got %d results, want %d", len(flags), n)
	}
	applied := make([]bool, n)
	for i, v := range flags {
		applied[i] = v == int64(1)
	}
	return applied, replyStrings(res[1]), nil
}

// releaseScript gives leased items back to their queue, due now, without
// counting the attempt that did not finish.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)   KEYS[4]  destinations of items (hash)
//	ARGV[1]  now (unix ms)   ARGV[2]  "1" to return the destinations   ARGV[2i+1], ARGV[2i+2]  id and token of lease i
//
// Returns {the ids whose lease was still held, and so released, their
// destinations (false for none; {} unless asked)}.
var releaseScript = redis.NewScript(`
local released, dests = {}, {}
for i = 1, (#ARGV - 2) / 2 do
  local id, token = ARGV[2*i+1], ARGV[2*i+2]
  if redis.call('HGET', KEYS[2], id) == token then
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HINCRBY', KEYS[3], id, -1)
    released[#released+1] = id
    if ARGV[2] == '1' then dests[#released] = redis.call('HGET', KEYS[4], id) end
  end
end
return {released, dests}
`)

// release gives leases back (releaseScript) and returns the ids released:
// a lease taken over meanwhile is someone else's and is left alone. With
// flow control, the released items leave their destinations' in-flight
// sets.
func (s *Redis) release(ctx context.Context, kind queueKind, flowOn bool, now time.Time, leases []Lease) ([]string, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	calls := s.leaseCalls(kind, leases, func(k keys, q queue, destHash string) scriptCall {
		return scriptCall{releaseScript, []string{q.due, q.lease, q.attempts, destHash}, []any{now.UnixMilli(), flag(flowOn)}}
	})
	for _, l := range leases {
		s.pickers[kind].wake(partitionOf(l.ID, len(s.parts)))
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("store: release %d leases: %w", len(leases), err)
	}
	var released []string
	inflight := make(map[string][]string)
	for _, cmd := range cmds {
		res, _ := cmd.Val().([]any)
		if len(res) != 2 {
			return nil, fmt.Errorf("store: release: unexpected reply %v", cmd.Val())
		}
		ids, dests := replyStrings(res[0]), replyStrings(res[1])
		released = append(released, ids...)
		for i, d := range dests {
			if d != "" && i < len(ids) {
				inflight[d] = append(inflight[d], ids[i])
			}
		}
	}
	return released, s.touchInflight(ctx, inflight, time.Time{})
}

// leaseCalls groups leases by partition and returns one call per
// partition: call's keys and first arguments, then each lease's id and
// token.
func (s *Redis) leaseCalls(kind queueKind, leases []Lease, call func(k keys, q queue, destHash string) scriptCall) []scriptCall {
	groups := s.byPartition(len(leases), func(i int) string { return leases[i].ID })
	calls := make([]scriptCall, 0, len(groups))
	for p, idx := range groups {
		k := s.parts[p]
		destHash, _ := k.flowHashes(kind)
		c := call(k, k.queue(kind), destHash)
		for _, i := range idx {
			c.args = append(c.args, leases[i].ID, leases[i].Token)
		}
		calls = append(calls, c)
	}
	return calls
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}
