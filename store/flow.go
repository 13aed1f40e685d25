package store

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limits is the flow control of one callback destination: how many
// deliveries may be in flight at once, how fast they may start, and when
// its circuit breaker opens. A zero or negative field turns its limit off
// here; callback.Config reads a zero as "the default" (see Or).
type Limits struct {
	// MaxInFlight caps the deliveries in flight at once.
	MaxInFlight int
	// Rate is the deliveries started per second, with Burst more at once.
	Rate float64
	// Burst is the token bucket's size; 0 means max(1, Rate).
	Burst int
	// FailureThreshold is the consecutive failed deliveries (network
	// errors, timeouts, 5xx, 408) that open the breaker.
	FailureThreshold int
	// ErrorRate opens the breaker when at least this share of the
	// deliveries of the last Window failed, once there were MinRequests.
	ErrorRate   float64
	MinRequests int
	Window      time.Duration
	// Cooldown is how long an open breaker defers deliveries before one
	// probe goes out (half-open); the probe's success closes it, its
	// failure opens it for another Cooldown.
	Cooldown time.Duration
}

// Or returns l with each zero field taken from fallback; a negative field
// (a limit turned off) stays.
func (l Limits) Or(fallback Limits) Limits {
	or := func(v *int, f int) {
		if *v == 0 {
			*v = f
		}
	}
	orF := func(v *float64, f float64) {
		if *v == 0 {
			*v = f
		}
	}
	orD := func(v *time.Duration, f time.Duration) {
		if *v == 0 {
			*v = f
		}
	}
	or(&l.MaxInFlight, fallback.MaxInFlight)
	orF(&l.Rate, fallback.Rate)
	or(&l.Burst, fallback.Burst)
	or(&l.FailureThreshold, fallback.FailureThreshold)
	orF(&l.ErrorRate, fallback.ErrorRate)
	or(&l.MinRequests, fallback.MinRequests)
	orD(&l.Window, fallback.Window)
	orD(&l.Cooldown, fallback.Cooldown)
	return l
}

// Flow is the flow control of every destination: Default, and the limits
// of the destinations named in PerDestination (by DestinationOf's form).
type Flow struct {
	Default        Limits
	PerDestination map[string]Limits
	// Local, when set, caps what this process has in flight to any one
	// destination (a share of its own workers, so that a destination that
	// hangs cannot take them all, whatever the global MaxInFlight).
	// LocalInFlight returns what it has in flight now, by destination.
	Local         int
	LocalInFlight func() map[string]int
}

// Deferral waits: a delivery deferred because its destination is at
// MaxInFlight waits busyWait for each MaxInFlight deliveries ahead of it in
// the same claim; one deferred while a half-open breaker's probe is out
// waits probeWait.
const (
	busyWait  = 100 * time.Millisecond
	probeWait = 500 * time.Millisecond
)

// DestinationOf returns the destination of a callback URL, the unit of flow
// control: scheme://host:port, lower case, with the scheme's default port
// when the URL names none. A URL that does not parse is its own
// destination.
func DestinationOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return raw
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// args appends the flow's limits for a script: the default's, the number
// of per-destination limits, then each destination and its limits.
func (f Flow) args(args []any) []any {
	args = append(args, f.Default.encode(), len(f.PerDestination))
	for d, l := range f.PerDestination {
		args = append(args, d, l.encode())
	}
	return args
}

// encode writes l as the scripts read it: comma-separated numbers, times
// in ms.
func (l Limits) encode() string {
	rate := max(l.Rate, 0)
	burst := l.Burst
	if burst <= 0 {
		burst = max(1, int(rate))
	}
	return fmt.Sprintf("%d,%g,%d,%d,%g,%d,%d,%d", max(l.MaxInFlight, 0), rate, burst, max(l.FailureThreshold, 0),
		max(l.ErrorRate, 0), max(l.MinRequests, 0), max(l.Window.Milliseconds(), 0), max(l.Cooldown.Milliseconds(), 0))
}

// flowLua is the part of the flow scripts that reads the limits: after
// it, limitsOf(d) returns the limits of destination d. The limits start at
// ARGV[at].
const flowLua = `
local function parseLimits(s)
  local t = {}
  for v in string.gmatch(s, '[^,]+') do t[#t+1] = tonumber(v) end
  return {cap = t[1], rate = t[2], burst = t[3], threshold = t[4], errrate = t[5], minreq = t[6], window = t[7], cooldown = t[8]}
end
local defaultLimits = parseLimits(ARGV[at])
local perDest = {}
local nper = tonumber(ARGV[at + 1])
for i = 1, nper do perDest[ARGV[at + 2*i]] = parseLimits(ARGV[at + 2*i + 1]) end
local function limitsOf(d) return perDest[d] or defaultLimits end
local afterLimits = at + 2 + 2*nper
`

// claimFlowScript leases up to a number of due items whose destination
// admits them now, and defers the others: each is re-queued for when its
// destination should admit it, with the reason recorded, without counting
// an attempt or leasing anything. A destination whose breaker is open
// defers until its cool-down ends; then one item goes out as the probe.
// Deferred items move out of the way, so a waiting destination never
// blocks the others (no head-of-line blocking). An item's destination is
// read from the destinations hash (callbacks, recorded when queued), or
// derived from its event type (events: the destination of the type's
// forward route, recorded in the hash while the event is in flight).
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)   KEYS[4]  token counter
//	KEYS[5]  destinations of items (hash)   KEYS[6]  the queue's waiting reasons (hash)   KEYS[7]  destinations (zset)
//	ARGV[1]  key tag   ARGV[2]  now (unix ms)   ARGV[3]  lease deadline (unix ms)   ARGV[4]  max items
//	ARGV[5]  due items looked at, at most   ARGV[6]  destination infix   ARGV[7]  busy wait (ms)
//	ARGV[8]  probe wait (ms)   ARGV[9]  record infix, to read event types ("" for callbacks)
//	ARGV[10] k, the number of infixes of the values to return, then those k infixes
//	then     m, the number of event types with a route, then m pairs: type ("*": any other), and
//	         its destination ("" for a route with none)
//	then     the flow's limits (Flow.args)
//	then     this process's cap per destination (0: none), and p pairs: destination, in flight here
//
// Returns {token, reclaimed, ids, attempts, values of the 1st infix's keys,
// ...} like claimScript, or {0, score of the first item or -1} when nothing was leased.
var claimFlowScript = redis.NewScript(`
local nvals = tonumber(ARGV[10])
local ntypes = tonumber(ARGV[11 + nvals])
local typeDest = {}
for i = 1, ntypes do typeDest[ARGV[10 + nvals + 2*i]] = ARGV[11 + nvals + 2*i] end
local at = 12 + nvals + 2*ntypes` + flowLua + `
local tag, now, deadline, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local busyWait, probeWait, spreadMax = tonumber(ARGV[7]), tonumber(ARGV[8]), 1000
local localCap, localWait = tonumber(ARGV[afterLimits]), 10
local localInFlight = {}
for i = 1, tonumber(ARGV[afterLimits + 1]) do
  localInFlight[ARGV[afterLimits + 2*i]] = tonumber(ARGV[afterLimits + 2*i + 1])
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[5])
if #ids == 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, first[2] or '-1'}
end
local dests
if ARGV[9] == '' then
  dests = redis.call('HMGET', KEYS[5], unpack(ids))
else
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = tag .. ARGV[9] .. id end
  local recs = redis.call('MGET', unpack(keys))
  dests = {}
  for i = 1, #ids do
    -- Records start {"id":"<id>","event_type":"<type>": both are letters,
    -- digits and ._:- only (event.ValidateID, ValidateEventType).
    local t = recs[i] and string.match(recs[i], '"event_type":"([^"]*)"')
    local d = t and typeDest[t]
    if d == nil and t then d = typeDest['*'] end
    if d == '' then d = nil end
    dests[i] = d or false
  end
end
local states = {}
local function state(d)
  local s = states[d]
  if s then return s end
  local key = tag .. ARGV[6] .. d
  local h = redis.call('HMGET', key, 'open_until', 'tokens', 'tokens_at', 'paused_until')
  local lim = limitsOf(d)
  s = {key = key, lim = lim, openUntil = tonumber(h[1]) or 0, tokens = tonumber(h[2]) or lim.burst,
       paused = tonumber(h[4]) or 0, inflight = 0, deferred = 0, here = localInFlight[d] or 0, localDeferred = 0}
  -- The in-flight count matters for a cap, and for a half-open breaker
  -- (is its probe out?): only then is it read.
  if lim.cap > 0 or s.openUntil > 0 then
    redis.call('ZREMRANGEBYSCORE', key .. ':inflight', '-inf', '(' .. now) -- leases of dead senders
    s.inflight = redis.call('ZCARD', key .. ':inflight')
  end
  if lim.rate > 0 then
    local since = now - (tonumber(h[3]) or now)
    s.tokens = math.min(lim.burst, s.tokens + since * lim.rate / 1000)
  end
  states[d] = s
  return s
end
-- admit returns 0 when an item to s may start now, else how long it
-- should wait and why.
local function admit(s)
  local lim = s.lim
  if s.paused > now then return s.paused - now, 'paused' end
  if s.openUntil > now then return s.openUntil - now, 'open' end
  if s.openUntil > 0 and s.inflight > 0 then return probeWait, 'half-open' end
  if lim.cap > 0 and s.inflight >= lim.cap then
    s.deferred = s.deferred + 1
    return busyWait * math.ceil(s.deferred / lim.cap), 'busy'
  end
  if localCap > 0 and s.here >= localCap then
    -- This process's share is taken: its workers free up fast when the
    -- destination is healthy, so the wait is short, spread over the
    -- deliveries waiting for it.
    s.localDeferred = s.localDeferred + 1
    return localWait * math.ceil(s.localDeferred / localCap), 'busy'
  end
  if lim.rate > 0 and s.tokens < 1 then
    s.deferred = s.deferred + 1
    return math.ceil((s.deferred - s.tokens) * 1000 / lim.rate), 'rate'
  end
  if lim.rate > 0 then s.tokens = s.tokens - 1 end
  s.inflight = s.inflight + 1
  s.here = s.here + 1
  return 0
end
-- spread returns a number in [0, range) that varies with id and now, so
-- that items deferred to one moment come back in a different order each
-- time: the probe of a half-open breaker is any of its items, not always
-- the same one (which may be the one that always fails).
local function spread(id, range)
  if range < 1 then return 0 end
  local h = now % 1000003
  for c = 1, #id do h = (h * 31 + string.byte(id, c)) % 1000003 end
  return h % range
end
local taken, takenDest, deferred, reasons = {}, {}, {}, {}
for i, id in ipairs(ids) do
  if #taken >= n then break end
  local d = dests[i]
  local wait, why = 0, nil
  if d then wait, why = admit(state(d)) end
  if wait == 0 then
    taken[#taken+1] = id; takenDest[#taken] = d
  else
    if why == 'open' or why == 'paused' or why == 'half-open' then
      wait = wait + spread(id, math.min(wait, spreadMax))
    end
    local untilMs = now + math.max(wait, 1)
    deferred[#deferred+1] = untilMs; deferred[#deferred+1] = id
    reasons[#reasons+1] = id; reasons[#reasons+1] = why .. '|' .. untilMs
  end
end
if #deferred > 0 then
  redis.call('ZADD', KEYS[1], unpack(deferred))
  redis.call('HSET', KEYS[6], unpack(reasons))
end
for d, s in pairs(states) do
  redis.call('ZADD', KEYS[7], now, d)
  if s.lim.rate > 0 then redis.call('HSET', s.key, 'tokens', s.tokens, 'tokens_at', now) end
end
if #taken == 0 then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, first[2] or '-1'}
end
local token = redis.call('INCR', KEYS[4])
local prev, reclaimed = redis.call('HMGET', KEYS[2], unpack(taken)), 0
for i = 1, #taken do if prev[i] then reclaimed = reclaimed + 1 end end
local due, lease, attset, held, inflight = {}, {}, {}, {}, {}
local att = redis.call('HMGET', KEYS[3], unpack(taken))
for i, id in ipairs(taken) do
  due[2*i-1] = deadline; due[2*i] = id
  lease[2*i-1] = id; lease[2*i] = token
  att[i] = (tonumber(att[i]) or 0) + 1
  attset[2*i-1] = id; attset[2*i] = att[i]
  local d = takenDest[i]
  if d then
    local set = inflight[d]
    if not set then set = {}; inflight[d] = set end
    set[#set+1] = deadline; set[#set+1] = id
    if ARGV[9] ~= '' then held[#held+1] = id; held[#held+1] = d end
  end
end
for d, set in pairs(inflight) do redis.call('ZADD', tag .. ARGV[6] .. d .. ':inflight', unpack(set)) end
redis.call('ZADD', KEYS[1], unpack(due))
redis.call('HSET', KEYS[2], unpack(lease))
redis.call('HSET', KEYS[3], unpack(attset))
redis.call('HDEL', KEYS[6], unpack(taken))
if #held > 0 then redis.call('HSET', KEYS[5], unpack(held)) end
local out = {token, reclaimed, taken, att}
for j = 1, nvals do
  local keys = {}
  for i, id in ipairs(taken) do keys[i] = tag .. ARGV[10 + j] .. id end
  out[#out+1] = redis.call('MGET', unpack(keys))
end
return out
`)

// claimScan bounds the due items one claim looks at, as a multiple of the
// items it may lease: past deferred ones, to fill the claim.
const claimScan = 4

// flowClaim is what claimFlow needs to know of a queue: where its items'
// destinations are, and how to read an event's type.
type flowClaim struct {
	destHash     string
	waitHash     string
	recordInfix  string            // "" for callbacks: their destinations are in destHash already
	destByType   map[string]string // events: the destination of each event type's forward route
	valueInfixes []string
}

func (s *Redis) claimFlow(ctx context.Context, q queue, fc flowClaim, flow Flow, now time.Time, lease time.Duration, n int) (claimed, error) {
	k := s.keys
	args := []any{k.tag, now.UnixMilli(), now.Add(lease).UnixMilli(), n, min(claimScan*n, 1024),
		infixDest, busyWait.Milliseconds(), probeWait.Milliseconds(), fc.recordInfix, len(fc.valueInfixes)}
	for _, in := range fc.valueInfixes {
		args = append(args, in)
	}
	args = append(args, len(fc.destByType))
	for t, d := range fc.destByType {
		args = append(args, t, d)
	}
	args = flow.args(args)
	var here map[string]int
	if flow.Local > 0 && flow.LocalInFlight != nil {
		here = flow.LocalInFlight()
	}
	args = append(args, max(flow.Local, 0), len(here))
	for d, n := range here {
		args = append(args, d, n)
	}
	res, err := claimFlowScript.Run(ctx, s.rdb, []string{q.due, q.lease, q.attempts, k.token,
		fc.destHash, fc.waitHash, k.dests}, args...).Slice()
	if err != nil {
		return claimed{}, fmt.Errorf("store: claim from %s: %w", q.due, err)
	}
	return s.parseClaim(q, res), nil
}

// Flow outcomes of a delivery, for the destination's breaker.
const (
	// FlowNone leaves the destination's state as it is: the delivery says
	// nothing of its health (an address refused before dialling).
	FlowNone = ""
	// FlowOK is an answer from a working receiver: 2xx, or a 4xx that no
	// retry mends. It closes the breaker.
	FlowOK = "ok"
	// FlowFailed is a network error, a timeout, 5xx or 408.
	FlowFailed = "fail"
)

// FlowPause is the flow outcome of a 429 or a Retry-After: the destination
// gets no delivery for d.
func FlowPause(d time.Duration) string {
	return "pause:" + strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}

// flowFinishLua feeds the destinations of applied outcomes, in one batch:
// each delivery leaves its destination's in-flight set, and each
// destination's breaker takes its outcomes in order, with one read and one
// write of its state. It needs flowLua, the key tag in ARGV[1], now in
// nowMs and the destination infix in destInfix, and defines
// flowFinish(dests, ids, outcomes): dests[i] is the destination of ids[i]
// (false for none) and outcomes[i] its flow outcome.
const flowFinishLua = `
local function flowFinish(dests, ids, outcomes)
  local groups, order = {}, {}
  for i, id in ipairs(ids) do
    local d = dests[i]
    if d then
      local g = groups[d]
      if not g then g = {ids = {}, outcomes = {}}; groups[d] = g; order[#order+1] = d end
      g.ids[#g.ids+1] = id
      g.outcomes[#g.outcomes+1] = outcomes[i]
    end
  end
  for _, d in ipairs(order) do
    local g = groups[d]
    local key = ARGV[1] .. destInfix .. d
    redis.call('ZREM', key .. ':inflight', unpack(g.ids))
    local lim = limitsOf(d)
    local h = redis.call('HMGET', key, 'open_until', 'failures', 'win_start', 'win_total', 'win_failed', 'paused_until')
    local openUntil, failures, winStart = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
    local total, failed, paused = tonumber(h[4]) or 0, tonumber(h[5]) or 0, tonumber(h[6]) or 0
    local changed = false
    for _, outcome in ipairs(g.outcomes) do
      local pause = string.match(outcome, '^pause:(%d+)$')
      if pause then
        paused = math.max(paused, nowMs + tonumber(pause)); changed = true
      elseif outcome == 'ok' or outcome == 'fail' then
        changed = true
        if lim.window <= 0 or nowMs - winStart >= lim.window then winStart, total, failed = nowMs, 0, 0 end
        total = total + 1
        if outcome == 'ok' then
          openUntil, failures = 0, 0
        else
          failed, failures = failed + 1, failures + 1
          if openUntil > 0 -- a failed probe, or a request out before the breaker opened
            or (lim.threshold > 0 and failures >= lim.threshold)
            or (lim.errrate > 0 and total >= lim.minreq and failed / total >= lim.errrate) then
            openUntil = nowMs + math.max(lim.cooldown, 1)
          end
        end
      end
    end
    if changed then
      redis.call('HSET', key, 'open_until', openUntil, 'failures', failures, 'win_start', winStart,
        'win_total', total, 'win_failed', failed, 'paused_until', paused)
    end
  end
end
`

// finishCallbackScript records delivery outcomes whose lease is still held,
// like finishScript, with multi-key commands for the whole batch, and
// feeds each destination's flow state.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)   KEYS[4]  dead letters (zset)
//	KEYS[5]  destinations of callbacks (hash)   KEYS[6]  waiting reasons (hash)
//	ARGV[1]  key tag   ARGV[2]  now (unix ms)   ARGV[3]  callback record infix   ARGV[4]  destination infix
//	ARGV[5..]  the flow's limits (Flow.args), then for each item 6 values: id, token,
//	          due (unix ms, "" when done), record JSON, "1" when failed for good, flow outcome
//
// Returns, for each item, 1 when applied and 0 when its lease was lost.
var finishCallbackScript = redis.NewScript(`local at = 5` + flowLua + `
local nowMs, destInfix = tonumber(ARGV[2]), ARGV[4]
` + flowFinishLua + `
local n = (#ARGV - afterLimits + 1) / 6
local ids = {}
for i = 1, n do ids[i] = ARGV[afterLimits + 6*(i-1)] end
local cur = redis.call('HMGET', KEYS[2], unpack(ids))
local out, kv, requeue, done, applied, outcomes, dead = {}, {}, {}, {}, {}, {}, {}
for i = 1, n do
  local b = afterLimits + 6*(i-1)
  local id = ids[i]
  if cur[i] == ARGV[b+1] then
    out[i] = 1
    applied[#applied+1] = id
    outcomes[#applied] = ARGV[b+5]
    kv[#kv+1] = ARGV[1] .. ARGV[3] .. id; kv[#kv+1] = ARGV[b+3]
    if ARGV[b+2] ~= '' then
      requeue[#requeue+1] = ARGV[b+2]; requeue[#requeue+1] = id
    else
      done[#done+1] = id
    end
    if ARGV[b+4] == '1' then dead[#dead+1] = ARGV[2]; dead[#dead+1] = id end
  else
    out[i] = 0
  end
end
if #applied > 0 then
  redis.call('MSET', unpack(kv))
  redis.call('HDEL', KEYS[2], unpack(applied))
  redis.call('HDEL', KEYS[6], unpack(applied))
  flowFinish(redis.call('HMGET', KEYS[5], unpack(applied)), applied, outcomes)
end
if #requeue > 0 then redis.call('ZADD', KEYS[1], unpack(requeue)) end
if #done > 0 then
  redis.call('ZREM', KEYS[1], unpack(done))
  redis.call('HDEL', KEYS[3], unpack(done))
end
if #dead > 0 then redis.call('ZADD', KEYS[4], unpack(dead)) end
return out
`)

// callbackItem is one delivery outcome for finishCallbackScript.
type callbackItem struct {
	lease  Lease
	due    time.Time // zero: done
	record []byte
	dead   bool
	flow   string
}

func (s *Redis) finishCallbacks(ctx context.Context, q queue, flow Flow, now time.Time, items []callbackItem) ([]bool, error) {
	if len(items) == 0 {
		return nil, nil
	}
	k := s.keys
	args := flow.args([]any{k.tag, now.UnixMilli(), infixCallback, infixDest})
	for _, it := range items {
		due := ""
		if !it.due.IsZero() {
			due = strconv.FormatInt(it.due.UnixMilli(), 10)
		}
		args = append(args, it.lease.ID, it.lease.Token, due, it.record, flag(it.dead), it.flow)
	}
	res, err := finishCallbackScript.Run(ctx, s.rdb, []string{q.due, q.lease, q.attempts, k.dead,
		k.callbackDest, k.callbackWaiting}, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("store: finish %d callbacks: %w", len(items), err)
	}
	return appliedFlags(res, len(items))
}

// Destination is the flow state of one callback destination.
type Destination struct {
	// Name is the destination: scheme://host:port.
	Name string `json:"destination"`
	// State is "closed" (deliveries flow), "open" (deferred until
	// NextProbeAt) or "half-open" (one probe may go out, or is out).
	State               string    `json:"state"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	InFlight            int       `json:"in_flight"`
	NextProbeAt         time.Time `json:"next_probe_at,omitzero"`
	PausedUntil         time.Time `json:"paused_until,omitzero"`
	// LastActiveAt is when a delivery to it was last claimed or deferred.
	LastActiveAt time.Time `json:"last_active_at"`
}

// maxDestinations bounds what Destinations returns.
const maxDestinations = 1000

// Destinations returns the flow state of the callback destinations seen,
// most recently active first, at most 1000.
func (s *Redis) Destinations(ctx context.Context, now time.Time) ([]Destination, error) {
	names, err := s.rdb.ZRevRangeWithScores(ctx, s.keys.dests, 0, maxDestinations-1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: destinations: %w", err)
	}
	states := make([]*redis.SliceCmd, len(names))
	inflight := make([]*redis.IntCmd, len(names))
	if len(names) > 0 {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range names {
				key := s.keys.dest(z.Member.(string))
				states[i] = p.HMGet(ctx, key, "open_until", "failures", "paused_until")
				inflight[i] = p.ZCount(ctx, key+":inflight", strconv.FormatInt(now.UnixMilli(), 10), "+inf")
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: destinations: %w", err)
		}
	}
	out := make([]Destination, len(names))
	for i, z := range names {
		v := states[i].Val()
		d := Destination{Name: z.Member.(string), State: "closed", ConsecutiveFailures: hashInt(v[1]),
			InFlight: int(inflight[i].Val()), LastActiveAt: time.UnixMilli(int64(z.Score)).UTC()}
		if ms := hashInt(v[0]); ms > 0 {
			d.NextProbeAt = time.UnixMilli(int64(ms)).UTC()
			d.State = "open"
			if !now.Before(d.NextProbeAt) {
				d.State = "half-open"
			}
		}
		if ms := hashInt(v[2]); int64(ms) > now.UnixMilli() {
			d.PausedUntil = time.UnixMilli(int64(ms)).UTC()
		}
		out[i] = d
	}
	return out, nil
}

// Waiting is why a due delivery was deferred by its destination's flow
// control, and until when.
type Waiting struct {
	// Reason is "open" (the breaker is open), "half-open" (its probe is
	// out), "busy" (MaxInFlight deliveries are in flight), "rate" (the
	// rate limit) or "paused" (the receiver asked, with 429 or
	// Retry-After).
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// parseWaiting reads a waiting reason as the claim script writes it.
func parseWaiting(v string) *Waiting {
	reason, ms, ok := strings.Cut(v, "|")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil {
		return nil
	}
	return &Waiting{Reason: reason, Until: time.UnixMilli(n).UTC()}
}

// inflightScript keeps the in-flight sets of destinations in step with
// renewed or released delivery leases.
//
//	KEYS[1]  destinations of the items (hash)
//	ARGV[1]  key tag   ARGV[2]  destination infix   ARGV[3]  new deadline (unix ms), or "" to drop
//	ARGV[4..] ids
var inflightScript = redis.NewScript(`
local ids = {}
for i = 4, #ARGV do ids[#ids+1] = ARGV[i] end
local dests = redis.call('HMGET', KEYS[1], unpack(ids))
for i, id in ipairs(ids) do
  local d = dests[i]
  if d then
    local key = ARGV[1] .. ARGV[2] .. d .. ':inflight'
    if ARGV[3] == '' then redis.call('ZREM', key, id) else redis.call('ZADD', key, 'XX', ARGV[3], id) end
  end
end
return 0
`)

func (s *Redis) touchInflight(ctx context.Context, destHash, deadline string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, 3+len(ids))
	args = append(args, s.keys.tag, infixDest, deadline)
	for _, id := range ids {
		args = append(args, id)
	}
	if err := inflightScript.Run(ctx, s.rdb, []string{destHash}, args...).Err(); err != nil {
		return fmt.Errorf("store: in-flight deliveries: %w", err)
	}
	return nil
}

// pruneScript forgets destinations idle since before a time: their flow
// state and their entry in the destinations zset, unless a request to
// them is in flight or a deferral of theirs is still due (their breaker
// open, or paused, until after now).
//
//	KEYS[1]  destinations (zset)
//	ARGV[1]  key tag   ARGV[2]  destination infix   ARGV[3]  idle since before (unix ms)
//	ARGV[4]  now (unix ms)   ARGV[5]  most destinations looked at
//
// Returns the number of destinations forgotten.
var pruneScript = redis.NewScript(`
local idle = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3], 'LIMIT', 0, ARGV[5])
local n = 0
for _, d in ipairs(idle) do
  local key = ARGV[1] .. ARGV[2] .. d
  redis.call('ZREMRANGEBYSCORE', key .. ':inflight', '-inf', '(' .. ARGV[4])
  local h = redis.call('HMGET', key, 'open_until', 'paused_until')
  local busy = redis.call('ZCARD', key .. ':inflight') > 0
    or (tonumber(h[1]) or 0) > tonumber(ARGV[4]) or (tonumber(h[2]) or 0) > tonumber(ARGV[4])
  if not busy then
    redis.call('DEL', key, key .. ':inflight')
    redis.call('ZREM', KEYS[1], d)
    n = n + 1
  end
end
return n
`)

// pruneBatch bounds the destinations one PruneDestinations call looks at.
const pruneBatch = 500

// PruneDestinations forgets the flow state of destinations that no
// delivery was claimed for or deferred to since now-idle (and that have
// nothing in flight and no breaker open), so that a stream of one-off
// callback hosts does not grow Redis for ever. It returns how many it
// forgot; a full batch means more may be idle.
func (s *Redis) PruneDestinations(ctx context.Context, now time.Time, idle time.Duration) (int, error) {
	n, err := pruneScript.Run(ctx, s.rdb, []string{s.keys.dests}, s.keys.tag, infixDest,
		now.Add(-idle).UnixMilli(), now.UnixMilli(), pruneBatch).Int()
	if err != nil {
		return 0, fmt.Errorf("store: prune destinations: %w", err)
	}
	return n, nil
}
