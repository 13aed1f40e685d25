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
// MaxInFlight waits at least busyWait, one deferred while a half-open
// breaker's probe is out at least probeWait; behind the deferrals before
// it, busyWait/MaxInFlight apart for busy ones (see admitScript).
const (
	busyWait  = 100 * time.Millisecond
	probeWait = 500 * time.Millisecond
	// spreadStep is how far apart deferrals that wait for a breaker or a
	// pause come back (see admitScript).
	spreadStep = 2 * time.Millisecond
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

// limitsOf returns the limits of destination d.
func (f Flow) limitsOf(d string) Limits {
	if l, ok := f.PerDestination[d]; ok {
		return l
	}
	return f.Default
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

// parseLimitsLua reads limits as Limits.encode writes them.
const parseLimitsLua = `
local function parseLimits(s)
  local t = {}
  for v in string.gmatch(s, '[^,]+') do t[#t+1] = tonumber(v) end
  return {cap = t[1], rate = t[2], burst = t[3], threshold = t[4], errrate = t[5], minreq = t[6], window = t[7], cooldown = t[8]}
end
`

// flowHashes returns the hashes of a queue's flow control in partition k:
// the destination of each item, and why a due item waits.
func (k keys) flowHashes(kind queueKind) (dest, waiting string) {
	if kind == kindCallbacks {
		return k.callbackDest, k.callbackWaiting
	}
	return k.eventDest, k.eventWaiting
}

// Flow control is a step of its own after a claim: a claim leases due
// items on their partition, then each destination of those items admits
// what may start now (admitScript, on the destination's own slot, one per
// destination, all in one round trip), and the items not admitted go back
// to their queue for when their destination should admit them (deferScript,
// on the partition), with the reason recorded and without counting an
// attempt. A deferred item moves out of the way, so a waiting destination
// never blocks the others (no head-of-line blocking). When every item is
// admitted, as with healthy receivers, the claim costs two round trips.
//
// A process that dies between the steps leaves leases (and, for admitted
// items, in-flight entries) that expire like any other: nothing is lost,
// the items wait one lease.

// admitScript admits items to one destination: those that may start now
// join its in-flight set; the others are told how long to wait and why. A
// destination whose breaker is open admits nothing until its cool-down
// ends; then one item goes out as the probe (half-open).
//
// Deferred items queue behind those deferred before them, by any claim
// of any process: the destination's defer_next is the earliest time the
// next deferral may come back, and each deferral moves it on by the time
// the destination needs for one more delivery (busy: the busy wait over
// the cap; rate: one token; otherwise a small step). So a backlog of
// thousands waiting for a sick or slow destination comes back spread out,
// at about the pace it can be served, instead of all at once to crowd
// every claim (and delay the other destinations' deliveries).
//
//	KEYS[1]  the destination's flow state (hash)   KEYS[2]  its in-flight set (zset)
//	ARGV[1]  now (unix ms)   ARGV[2]  lease deadline (unix ms)   ARGV[3]  busy wait (ms)
//	ARGV[4]  probe wait (ms)   ARGV[5]  its limits (Limits.encode)   ARGV[6]  spread step (ms)
//	ARGV[7..]  the items' ids
//
// Returns, for each item, {reason, wait (ms)}: reason "" when admitted.
var admitScript = redis.NewScript(parseLimitsLua + `
local now, deadline = tonumber(ARGV[1]), ARGV[2]
local busyWait, probeWait, spreadStep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local lim = parseLimits(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'open_until', 'tokens', 'tokens_at', 'paused_until', 'defer_next')
local openUntil, tokens, paused = tonumber(h[1]) or 0, tonumber(h[2]) or lim.burst, tonumber(h[4]) or 0
local deferNext = math.max(tonumber(h[5]) or 0, now)
local inflight = 0
-- The in-flight count matters for a cap, and for a half-open breaker (is
-- its probe out?): only then is it read.
if lim.cap > 0 or openUntil > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now) -- leases of dead senders
  inflight = redis.call('ZCARD', KEYS[2])
end
if lim.rate > 0 then
  local since = now - (tonumber(h[3]) or now)
  tokens = math.min(lim.burst, tokens + since * lim.rate / 1000)
end
local out, admitted, deferred = {}, {}, 0
for i = 7, #ARGV do
  local wait, why, step = 0, '', spreadStep
  if paused > now then wait, why = paused - now, 'paused'
  elseif openUntil > now then wait, why = openUntil - now, 'open'
  elseif openUntil > 0 and inflight > 0 then wait, why = probeWait, 'half-open'
  elseif lim.cap > 0 and inflight >= lim.cap then
    wait, why, step = busyWait, 'busy', busyWait / lim.cap
  elseif lim.rate > 0 and tokens < 1 then
    wait, why, step = math.ceil((1 - tokens) * 1000 / lim.rate), 'rate', 1000 / lim.rate
  else
    if lim.rate > 0 then tokens = tokens - 1 end
    inflight = inflight + 1
    admitted[#admitted+1] = deadline; admitted[#admitted+1] = ARGV[i]
  end
  if why ~= '' then
    -- Behind the deliveries deferred before it, by any claim: they come
    -- back spread out, about as fast as the destination can take them.
    local untilMs = math.max(now + wait, deferNext)
    deferNext = untilMs + step
    wait = math.ceil(untilMs - now)
    deferred = deferred + 1
  end
  out[#out+1] = why; out[#out+1] = wait
end
if #admitted > 0 then redis.call('ZADD', KEYS[2], unpack(admitted)) end
if lim.rate > 0 then redis.call('HSET', KEYS[1], 'tokens', tokens, 'tokens_at', now) end
if deferred > 0 then redis.call('HSET', KEYS[1], 'defer_next', deferNext) end
return out
`)

// deferScript gives leased items back to their queue for later, because
// their destination did not admit them: without counting the attempt, and
// with the reason recorded.
//
//	KEYS[1]  due (zset)   KEYS[2]  leases (hash)   KEYS[3]  attempts (hash)
//	KEYS[4]  waiting reasons (hash)   KEYS[5]  destinations of items in flight (hash)
//	ARGV[1]  the leases' token   ARGV[2]  "1" to drop the items' destinations (events)
//	ARGV[3i], ARGV[3i+1], ARGV[3i+2]  id, due (unix ms) and reason of item i
var deferScript = redis.NewScript(`
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[2], id) == ARGV[1] then
    redis.call('ZADD', KEYS[1], ARGV[i+1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HINCRBY', KEYS[3], id, -1)
    redis.call('HSET', KEYS[4], id, ARGV[i+2] .. '|' .. ARGV[i+1])
    if ARGV[2] == '1' then redis.call('HDEL', KEYS[5], id) end
  end
end
return 0
`)

// Waits of deferred items that no destination state sets: one deferred
// because this process's own share of a destination is taken waits
// localWait for each Local deliveries ahead of it; the deferrals of an
// open, paused or half-open destination are spread over up to spreadMax,
// so that they do not all come back at once, and the probe of a half-open
// breaker is any of its items (not always the one that always fails).
const (
	localWait = 10 * time.Millisecond
	spreadMax = time.Second
)

// admit asks the destinations of the items the claims cs leased which may
// start now, defers the others, and returns each claim with only its
// admitted items (and, as its next, when its first deferral comes back):
// one round trip for every destination of all of them, and one more when
// some must wait.
//
// here counts what this process has in flight by destination, for
// Flow.Local; admit adds the items it admits.
func (s *Redis) admit(ctx context.Context, kind queueKind, flow Flow, here map[string]int, cs []claimed, now time.Time, lease time.Duration) ([]claimed, error) {
	type item struct{ c, i int } // cs[c]'s i-th item
	type deferral struct {
		item
		wait   time.Duration
		reason string
	}
	var deferred []deferral
	byDest := make(map[string][]item)
	var order []string
	local := make(map[string]int) // deferred for this process's share, by destination
	for ci, c := range cs {
		for i, d := range c.dests {
			if d == "" {
				continue
			}
			if flow.Local > 0 && here[d]+len(byDest[d]) >= flow.Local {
				local[d]++
				deferred = append(deferred, deferral{item{ci, i}, localWait * time.Duration((local[d]+flow.Local-1)/flow.Local), "busy"})
				continue
			}
			if _, ok := byDest[d]; !ok {
				order = append(order, d)
			}
			byDest[d] = append(byDest[d], item{ci, i})
		}
	}
	if len(order) > 0 {
		deadline := now.Add(lease).UnixMilli()
		calls := make([]scriptCall, len(order))
		for j, d := range order {
			key := s.destKey(d)
			args := []any{now.UnixMilli(), deadline, busyWait.Milliseconds(), probeWait.Milliseconds(), flow.limitsOf(d).encode(),
				spreadStep.Milliseconds()}
			for _, it := range byDest[d] {
				args = append(args, cs[it.c].ids[it.i])
			}
			calls[j] = scriptCall{admitScript, []string{key, key + ":inflight"}, args}
		}
		seen := func(p redis.Pipeliner) {
			for _, d := range order {
				p.ZAdd(ctx, s.dests, redis.Z{Score: float64(now.UnixMilli()), Member: d})
			}
		}
		cmds, err := s.runScripts(ctx, calls, seen)
		if err != nil {
			// The items stay leased to nobody: they come back when the
			// lease expires.
			return nil, fmt.Errorf("store: admit to destinations: %w", err)
		}
		for j, d := range order {
			res, _ := cmds[j].Val().([]any)
			its := byDest[d]
			if len(res) != 2*len(its) {
				return nil, fmt.Errorf("store: admit to %s: unexpected reply %v", d, cmds[j].Val())
			}
			for k, it := range its {
				why, _ := res[2*k].(string)
				if why == "" {
					continue
				}
				ms, _ := res[2*k+1].(int64)
				wait := time.Duration(ms) * time.Millisecond
				if why == "open" || why == "paused" || why == "half-open" {
					wait += spread(cs[it.c].ids[it.i], now, min(wait, spreadMax))
				}
				deferred = append(deferred, deferral{it, wait, why})
			}
		}
	}
	out := make([][]bool, len(cs)) // deferred
	for ci, c := range cs {
		out[ci] = make([]bool, len(c.ids))
	}
	for _, d := range deferred {
		out[d.c][d.i] = true
	}
	for ci, c := range cs {
		for i, d := range c.dests {
			if here != nil && d != "" && !out[ci][i] {
				here[d]++
			}
		}
	}
	if len(deferred) == 0 {
		return cs, nil
	}
	// One defer script per claim that deferred some, all in one round trip.
	byClaim := make(map[int][]deferral)
	var claims []int
	for _, d := range deferred {
		if _, ok := byClaim[d.c]; !ok {
			claims = append(claims, d.c)
		}
		byClaim[d.c] = append(byClaim[d.c], d)
	}
	calls := make([]scriptCall, 0, len(claims))
	for _, ci := range claims {
		c := cs[ci]
		k := s.parts[c.part]
		q := k.queue(kind)
		destHash, waitHash := k.flowHashes(kind)
		args := make([]any, 0, 2+3*len(byClaim[ci]))
		args = append(args, c.token, flag(kind != kindCallbacks))
		for _, d := range byClaim[ci] {
			args = append(args, c.ids[d.i], now.Add(max(d.wait, time.Millisecond)).UnixMilli(), d.reason)
		}
		calls = append(calls, scriptCall{deferScript, []string{q.due, q.lease, q.attempts, waitHash, destHash}, args})
	}
	if _, err := s.runScripts(ctx, calls); err != nil {
		return nil, fmt.Errorf("store: defer %d items: %w", len(deferred), err)
	}
	kept := make([]claimed, len(cs))
	for ci, c := range cs {
		ds := byClaim[ci]
		if len(ds) == 0 {
			kept[ci] = c
			continue
		}
		// k.next: when the first deferral comes back.
		k := claimed{part: c.part, token: c.token, reclaimed: c.reclaimed, values: make([][]string, len(c.values)),
			localFull: c.localFull}
		for _, d := range ds {
			if d.reason == "busy" {
				k.localFull = true
			}
			if at := now.Add(max(d.wait, time.Millisecond)); k.next.IsZero() || at.Before(k.next) {
				k.next = at
			}
		}
		for i := range c.ids {
			if out[ci][i] {
				continue
			}
			k.ids = append(k.ids, c.ids[i])
			k.attempts = append(k.attempts, c.attempts[i])
			k.dests = append(k.dests, c.dests[i])
			for j := range c.values {
				k.values[j] = append(k.values[j], c.values[j][i])
			}
		}
		kept[ci] = k
	}
	return kept, nil
}

// spread returns a duration in [0, span) that varies with id and now.
func spread(id string, now time.Time, span time.Duration) time.Duration {
	if span < time.Millisecond {
		return 0
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * 1099511628211
	}
	h = (h ^ uint64(now.UnixMilli())) * 1099511628211
	return time.Duration(h%uint64(span.Milliseconds())) * time.Millisecond
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

// outcomeScript feeds one destination the outcomes of its finished
// items: each leaves the in-flight set, and the breaker takes the
// outcomes in order, with one read and one write of its state.
//
//	KEYS[1]  the destination's flow state (hash)   KEYS[2]  its in-flight set (zset)
//	ARGV[1]  now (unix ms)   ARGV[2]  its limits (Limits.encode)
//	ARGV[2i+1], ARGV[2i+2]  id and flow outcome of item i
var outcomeScript = redis.NewScript(parseLimitsLua + `
local nowMs, lim = tonumber(ARGV[1]), parseLimits(ARGV[2])
local ids = {}
for i = 3, #ARGV, 2 do ids[#ids+1] = ARGV[i] end
redis.call('ZREM', KEYS[2], unpack(ids))
local h = redis.call('HMGET', KEYS[1], 'open_until', 'failures', 'win_start', 'win_total', 'win_failed', 'paused_until')
local openUntil, failures, winStart = tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0
local total, failed, paused = tonumber(h[4]) or 0, tonumber(h[5]) or 0, tonumber(h[6]) or 0
local changed = false
for i = 4, #ARGV, 2 do
  local outcome = ARGV[i]
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
  redis.call('HSET', KEYS[1], 'open_until', openUntil, 'failures', failures, 'win_start', winStart,
    'win_total', total, 'win_failed', failed, 'paused_until', paused)
end
return 0
`)

// flowOutcome is the flow outcome of one finished item to its destination.
type flowOutcome struct {
	id, dest, outcome string
}

// feedFlow runs outcomeScript for each destination of outs, in one round
// trip. It runs after the outcomes are recorded: a process that dies in
// between leaves in-flight entries that expire with their lease, and its
// breaker misses those outcomes.
func (s *Redis) feedFlow(ctx context.Context, flow Flow, now time.Time, outs []flowOutcome) error {
	if len(outs) == 0 {
		return nil
	}
	byDest := make(map[string][]any)
	for _, o := range outs {
		byDest[o.dest] = append(byDest[o.dest], o.id, o.outcome)
	}
	calls := make([]scriptCall, 0, len(byDest))
	for d, pairs := range byDest {
		key := s.destKey(d)
		args := append([]any{now.UnixMilli(), flow.limitsOf(d).encode()}, pairs...)
		calls = append(calls, scriptCall{outcomeScript, []string{key, key + ":inflight"}, args})
	}
	if _, err := s.runScripts(ctx, calls); err != nil {
		return fmt.Errorf("store: feed destinations: %w", err)
	}
	return nil
}

// feedFlowAfter feeds the destinations the outcomes just recorded. Those
// are recorded whatever happens here, so an error is only logged: the
// in-flight entries expire with their lease, and the breakers miss those
// outcomes.
func (s *Redis) feedFlowAfter(ctx context.Context, flow Flow, now time.Time, outs []flowOutcome) {
	if err := s.feedFlow(ctx, flow, now, outs); err != nil {
		s.log.Warn("delivery outcomes recorded, but their destinations' flow state was not updated", "err", err)
	}
}

// touchInflight moves the deadlines of ids in their destinations'
// in-flight sets to deadline, or drops them when it is zero, in one round
// trip.
func (s *Redis) touchInflight(ctx context.Context, ids map[string][]string, deadline time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for d, list := range ids {
			key := s.destKey(d) + ":inflight"
			if deadline.IsZero() {
				p.ZRem(ctx, key, anys(list)...)
				continue
			}
			zs := make([]redis.Z, len(list))
			for i, id := range list {
				zs[i] = redis.Z{Score: float64(deadline.UnixMilli()), Member: id}
			}
			p.ZAddXX(ctx, key, zs...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: in-flight deliveries: %w", err)
	}
	return nil
}

// finishCallbackScript records delivery outcomes whose lease is still held,
// like finishScript, with multi-key commands for the whole batch. The
// batch is in g groups, one per partition, as enqueueScript's (see
// groupCalls).
//
//	KEYS[6j-5..6j]  group j's partition: due (zset), leases (hash), attempts (hash),
//	                dead letters (zset), destinations of callbacks (hash), waiting reasons (hash)
//	ARGV[1]  now (unix ms)   ARGV[2]  callback record infix   ARGV[3]  g
//	ARGV[2+2j], ARGV[3+2j]  group j's key tag and number of items
//	then 5 values per item, the groups' items in order: id, token,
//	         due (unix ms, "" when done), record JSON, "1" when failed for good
//
// Returns {for each item in order 1 when applied and 0 when its lease was
// lost, the destinations of the applied items in order (false for none)}.
var finishCallbackScript = redis.NewScript(`
local now, g = ARGV[1], tonumber(ARGV[3])
local base = 4 + 2*g
local out, held, kv, e = {}, {}, {}, 0
for j = 1, g do
  local tag, n, K = ARGV[2 + 2*j], tonumber(ARGV[3 + 2*j]), 6*(j-1)
  local ids = {}
  for i = 1, n do ids[i] = ARGV[base + 5*(e+i-1)] end
  local cur = redis.call('HMGET', KEYS[K+2], unpack(ids))
  local requeue, done, applied, dead = {}, {}, {}, {}
  for i = 1, n do
    local b = base + 5*(e+i-1)
    local id = ids[i]
    if cur[i] == ARGV[b+1] then
      out[e+i] = 1
      applied[#applied+1] = id
      kv[#kv+1] = tag .. ARGV[2] .. id; kv[#kv+1] = ARGV[b+3]
      if ARGV[b+2] ~= '' then
        requeue[#requeue+1] = ARGV[b+2]; requeue[#requeue+1] = id
      else
        done[#done+1] = id
      end
      if ARGV[b+4] == '1' then dead[#dead+1] = now; dead[#dead+1] = id end
    else
      out[e+i] = 0
    end
  end
  e = e + n
  if #applied > 0 then
    redis.call('HDEL', KEYS[K+2], unpack(applied))
    redis.call('HDEL', KEYS[K+6], unpack(applied))
    local h = redis.call('HMGET', KEYS[K+5], unpack(applied))
    for x = 1, #applied do held[#held+1] = h[x] end
  end
  if #requeue > 0 then redis.call('ZADD', KEYS[K+1], unpack(requeue)) end
  if #done > 0 then
    redis.call('ZREM', KEYS[K+1], unpack(done))
    redis.call('HDEL', KEYS[K+3], unpack(done))
  end
  if #dead > 0 then redis.call('ZADD', KEYS[K+4], unpack(dead)) end
end
if #kv > 0 then redis.call('MSET', unpack(kv)) end
return {out, held}
`)

// callbackItem is one delivery outcome for finishCallbackScript.
type callbackItem struct {
	lease  Lease
	due    time.Time // zero: done
	record []byte
	dead   bool
	flow   string
}

// finishCallbacks runs finishCallbackScript on the partitions of items (one
// script per partition on a cluster, one in all on a single node), in one
// round trip, then feeds the destinations.
func (s *Redis) finishCallbacks(ctx context.Context, flow Flow, flowOn bool, now time.Time, items []callbackItem) ([]bool, error) {
	if len(items) == 0 {
		return nil, nil
	}
	groups := s.byPartition(len(items), func(i int) string { return items[i].lease.ID })
	calls, order, _ := s.groupCalls(finishCallbackScript, groups, []any{now.UnixMilli(), infixCallback},
		func(k keys) []string {
			q := k.queue(kindCallbacks)
			return []string{q.due, q.lease, q.attempts, k.dead, k.callbackDest, k.callbackWaiting}
		},
		func(to []any, i int) []any {
			it := items[i]
			due := ""
			if !it.due.IsZero() {
				due = strconv.FormatInt(it.due.UnixMilli(), 10)
			}
			return append(to, it.lease.ID, it.lease.Token, due, it.record, flag(it.dead))
		})
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("store: finish %d callbacks: %w", len(items), err)
	}
	applied, outs, err := finishReplies(cmds, order, len(items), func(i int) (string, string) { return items[i].lease.ID, items[i].flow })
	if err != nil {
		return nil, err
	}
	if flowOn {
		s.feedFlowAfter(ctx, flow, now, outs)
	}
	return applied, nil
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
	names, err := s.rdb.ZRevRangeWithScores(ctx, s.dests, 0, maxDestinations-1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: destinations: %w", err)
	}
	states := make([]*redis.SliceCmd, len(names))
	inflight := make([]*redis.IntCmd, len(names))
	if len(names) > 0 {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, z := range names {
				key := s.destKey(z.Member.(string))
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

// pruneScript forgets one destination's flow state unless a request to it
// is in flight or a deferral of its is still due (its breaker open, or
// paused, until after now).
//
//	KEYS[1]  the destination's flow state (hash)   KEYS[2]  its in-flight set (zset)
//	ARGV[1]  now (unix ms)
//
// Returns 1 when it forgot the destination.
var pruneScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'open_until', 'paused_until')
if redis.call('ZCARD', KEYS[2]) > 0 or (tonumber(h[1]) or 0) > tonumber(ARGV[1]) or (tonumber(h[2]) or 0) > tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)

// forgetScript drops destinations from the destinations zset unless they
// were active again since the time given.
//
//	KEYS[1]  destinations (zset)   ARGV[1]  idle since before (unix ms)   ARGV[2..]  destinations
var forgetScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local at = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if at and tonumber(at) < tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[i]); n = n + 1
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
	before := now.Add(-idle).UnixMilli()
	names, err := s.rdb.ZRangeByScore(ctx, s.dests, &redis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(before, 10), Count: pruneBatch,
	}).Result()
	if err != nil || len(names) == 0 {
		return 0, wrap("prune destinations", err)
	}
	calls := make([]scriptCall, len(names))
	for i, d := range names {
		key := s.destKey(d)
		calls[i] = scriptCall{pruneScript, []string{key, key + ":inflight"}, []any{now.UnixMilli()}}
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return 0, fmt.Errorf("store: prune destinations: %w", err)
	}
	args := []any{before}
	for i, cmd := range cmds {
		if n, _ := cmd.Int(); n == 1 {
			args = append(args, names[i])
		}
	}
	if len(args) == 1 {
		return 0, nil
	}
	n, err := forgetScript.Run(ctx, s.rdb, []string{s.dests}, args...).Int()
	return n, wrap("prune destinations", err)
}
