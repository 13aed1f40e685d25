package store

import (
	"context"
	"fmt"
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

// claimScript leases up to a number of due items of a queue.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)   KEYS[4]  token counter
//	ARGV[1]  key tag      ARGV[2]  now (unix ms)   ARGV[3]  lease deadline (unix ms)   ARGV[4]  max items
//	ARGV[5..] infixes of per-item keys to read (":st:", ":ev:", ":cb:")
//
// Each leased item gets the deadline as its score, the new token as its lease
// and one more attempt. Returns {token, reclaimed, ids, attempts, values of
// ARGV[5] keys, values of ARGV[6] keys, ...}, or {0, score of the first item
// or -1} when no item is due. reclaimed counts the leased items that still
// had a lease: one that expired, its holder dead (a finished or released
// item has none).
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
if #ids == 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, first[2] or '-1'}
end
local token = redis.call('INCR', KEYS[4])
local prev, reclaimed = redis.call('HMGET', KEYS[2], unpack(ids)), 0
for i = 1, #ids do if prev[i] then reclaimed = reclaimed + 1 end end
local due, lease = {}, {}
for i, id in ipairs(ids) do
  due[2*i-1] = ARGV[3]; due[2*i] = id
  lease[2*i-1] = id; lease[2*i] = token
end
redis.call('ZADD', KEYS[1], unpack(due))
redis.call('HSET', KEYS[2], unpack(lease))
local att = redis.call('HMGET', KEYS[3], unpack(ids))
local attset = {}
for i, id in ipairs(ids) do
  att[i] = (tonumber(att[i]) or 0) + 1
  attset[2*i-1] = id; attset[2*i] = att[i]
end
redis.call('HSET', KEYS[3], unpack(attset))
local out = {token, reclaimed, ids, att}
for j = 5, #ARGV do
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = ARGV[1] .. ARGV[j] .. id end
  out[#out+1] = redis.call('MGET', unpack(keys))
end
return out
`)

// claimed is what claim leased: ids[i] with attempts[i], and values[j][i]
// the value of the j-th infix's key of ids[i] ("" when missing).
type claimed struct {
	token     int64
	reclaimed int // leased items whose previous lease had expired
	ids       []string
	attempts  []int
	values    [][]string
	next      time.Time // when nothing was due: the first item's score, or zero
}

func (s *Redis) claim(ctx context.Context, q queue, now time.Time, lease time.Duration, n int, infixes ...string) (claimed, error) {
	args := make([]any, 0, 4+len(infixes))
	args = append(args, s.keys.tag, now.UnixMilli(), now.Add(lease).UnixMilli(), n)
	for _, in := range infixes {
		args = append(args, in)
	}
	res, err := claimScript.Run(ctx, s.rdb, []string{q.due, q.lease, q.attempts, s.keys.token}, args...).Slice()
	if err != nil {
		return claimed{}, fmt.Errorf("store: claim from %s: %w", q.due, err)
	}
	return s.parseClaim(q, res), nil
}

// parseClaim reads the reply of a claim script.
// It tells the observer of the leases reclaimed.
func (s *Redis) parseClaim(q queue, res []any) claimed {
	token, _ := res[0].(int64)
	if token == 0 {
		var c claimed
		if ms, err := strconv.ParseFloat(fmt.Sprint(res[1]), 64); err == nil && ms >= 0 {
			c.next = time.UnixMilli(int64(ms))
		}
		return c
	}
	reclaimed, _ := res[1].(int64)
	c := claimed{token: token, reclaimed: int(reclaimed), ids: replyStrings(res[2])}
	for _, a := range res[3].([]any) {
		v, _ := a.(int64)
		c.attempts = append(c.attempts, int(v))
	}
	if c.reclaimed > 0 {
		s.obs.LeasesReclaimed(q.name, c.reclaimed)
	}
	for _, vals := range res[4:] {
		c.values = append(c.values, replyStrings(vals))
	}
	return c
}

// replyStrings converts a script's array reply to strings, nil becoming "".
func replyStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, len(arr))
	for i, x := range arr {
		out[i], _ = x.(string)
	}
	return out
}

// renewScript extends the leases still held.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)
//	ARGV[1]  new deadline (unix ms)   ARGV[2i], ARGV[2i+1]  id and token of lease i
//
// Returns the ids whose lease is no longer held by the token.
var renewScript = redis.NewScript(`
local n = (#ARGV - 1) / 2
local ids = {}
for i = 1, n do ids[i] = ARGV[2*i] end
local cur = redis.call('HMGET', KEYS[2], unpack(ids))
local due, lost = {}, {}
for i = 1, n do
  if cur[i] == ARGV[2*i+1] then
    due[#due+1] = ARGV[1]; due[#due+1] = ids[i]
  else
    lost[#lost+1] = ids[i]
  end
end
if #due > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(due)) end
return lost
`)

func (s *Redis) renew(ctx context.Context, q queue, deadline time.Time, leases []Lease) ([]string, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+2*len(leases))
	args = append(args, deadline.UnixMilli())
	for _, l := range leases {
		args = append(args, l.ID, l.Token)
	}
	lost, err := renewScript.Run(ctx, s.rdb, []string{q.due, q.lease}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("store: renew %d leases on %s: %w", len(leases), q.due, err)
	}
	return lost, nil
}

// finishScript records the outcomes of leased items whose lease is still
// held, in one atomic step.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)
//	KEYS[4]  callback queue (zset)   KEYS[5]  dead letters (zset)   KEYS[6]  destinations of callbacks (hash)
//	KEYS[7]  destinations of the items in flight (hash)   KEYS[8]  the items' waiting reasons (hash)
//	ARGV[1]  key tag      ARGV[2]  now (unix ms)   ARGV[3]  infix of the item's record key
//	ARGV[4]  infix of the callback record key   ARGV[5]  destination infix
//	ARGV[6]  "1" when items may have a destination (flow control), else ""
//	ARGV[7..] the flow's limits (Flow.args), then 9 values for each item: id, token,
//	         due (unix ms, "" when done), record JSON, callback JSON ("" for none), "1" to
//	         queue the callback for delivery, "1" when the item failed for good (a dead
//	         letter), the callback's destination (for its flow control), and the item's
//	         flow outcome (store.FlowOK, ...) for its own destination
//
// An applied item's record is written and its lease dropped; with a due time
// it is queued again for then, without one it leaves the queue and its
// attempt count is dropped (the record holds the final count). A callback is
// written under the item's id and, when asked, queued for delivery now. A
// dead item is added to the dead letters. A queued callback's destination
// is recorded with it. With flow control, an applied item with a
// destination leaves its in-flight set and feeds its breaker.
// Returns, for each item, 1 when applied and 0 when its lease was lost.
var finishScript = redis.NewScript(`local at = 7` + flowLua + `
local nowMs, destInfix = tonumber(ARGV[2]), ARGV[5]
` + flowFinishLua + `
local n = (#ARGV - afterLimits + 1) / 9
local ids = {}
for i = 1, n do ids[i] = ARGV[afterLimits + 9*(i-1)] end
local cur = redis.call('HMGET', KEYS[2], unpack(ids))
local out, kv, requeue, done, applied, outbox, dead, dests, outcomes = {}, {}, {}, {}, {}, {}, {}, {}, {}
for i = 1, n do
  local b = afterLimits + 9*(i-1)
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
    outcomes[#applied] = ARGV[b+8]
  else
    out[i] = 0
  end
end
if #applied > 0 then
  redis.call('MSET', unpack(kv))
  redis.call('HDEL', KEYS[2], unpack(applied))
  if ARGV[6] == '1' then
    redis.call('HDEL', KEYS[8], unpack(applied))
    flowFinish(redis.call('HMGET', KEYS[7], unpack(applied)), applied, outcomes)
    redis.call('HDEL', KEYS[7], unpack(applied))
  end
end
if #requeue > 0 then redis.call('ZADD', KEYS[1], unpack(requeue)) end
if #done > 0 then
  redis.call('ZREM', KEYS[1], unpack(done))
  redis.call('HDEL', KEYS[3], unpack(done))
end
if #outbox > 0 then redis.call('ZADD', KEYS[4], unpack(outbox)) end
if #dests > 0 then redis.call('HSET', KEYS[6], unpack(dests)) end
if #dead > 0 then redis.call('ZADD', KEYS[5], unpack(dead)) end
return out
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

// finish runs finishScript; flow is the flow control of the queue's items,
// nil when they have none.
func (s *Redis) finish(ctx context.Context, q queue, flow *Flow, now time.Time, recordInfix string, items []finishItem) ([]bool, error) {
	if len(items) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 10+9*len(items))
	args = append(args, s.keys.tag, now.UnixMilli(), recordInfix, infixCallback, infixDest, flag(flow != nil))
	if flow != nil {
		args = flow.args(args)
	} else {
		args = Flow{}.args(args)
	}
	for _, it := range items {
		due := ""
		if !it.due.IsZero() {
			due = strconv.FormatInt(it.due.UnixMilli(), 10)
		}
		args = append(args, it.lease.ID, it.lease.Token, due, it.record, it.callback, flag(it.queueCallback), flag(it.dead), it.dest, it.flow)
	}
	res, err := finishScript.Run(ctx, s.rdb, []string{q.due, q.lease, q.attempts, s.keys.callbacks, s.keys.dead,
		s.keys.callbackDest, s.keys.eventDest, s.keys.eventWaiting}, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("store: finish %d items on %s: %w", len(items), q.due, err)
	}
	return appliedFlags(res, len(items))
}

// appliedFlags reads a finish script's reply: for each of n items, 1 when
// its outcome was applied, 0 when its lease was lost.
func appliedFlags(res []int64, n int) ([]bool, error) {
	if len(res) != n {
		return nil, fmt.Errorf("store: finish: got %d results, want %d", len(res), n)
	}
	applied := make([]bool, n)
	for i, v := range res {
		applied[i] = v == 1
	}
	return applied, nil
}

// releaseScript gives leased items back to their queue, due now, without
// counting the attempt that did not finish.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)
//	ARGV[1]  now (unix ms)   ARGV[2i], ARGV[2i+1]  id and token of lease i
//
// Returns the ids whose lease was still held, and so released.
var releaseScript = redis.NewScript(`
local released = {}
for i = 1, (#ARGV - 1) / 2 do
  local id, token = ARGV[2*i], ARGV[2*i+1]
  if redis.call('HGET', KEYS[2], id) == token then
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HINCRBY', KEYS[3], id, -1)
    released[#released+1] = id
  end
end
return released
`)

// release gives leases back (releaseScript) and returns the ids released:
// a lease taken over meanwhile is someone else's and is left alone.
func (s *Redis) release(ctx context.Context, q queue, now time.Time, leases []Lease) ([]string, error) {
	if len(leases) == 0 {
		return nil, nil
	}
	args := make([]any, 0, 1+2*len(leases))
	args = append(args, now.UnixMilli())
	for _, l := range leases {
		args = append(args, l.ID, l.Token)
	}
	ids, err := releaseScript.Run(ctx, s.rdb, []string{q.due, q.lease, q.attempts}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("store: release %d leases on %s: %w", len(leases), q.due, err)
	}
	return ids, nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}
