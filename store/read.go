package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/redis/go-redis/v9"
)

// Snapshot is what the store knows of one event at one moment.
type Snapshot struct {
	// Record is the event's record. Its Status is StatusProcessing while a
	// worker holds a lease on it, and its Attempts include an attempt in
	// flight.
	Record Record
	// Callback is the event's callback record, nil before a terminal
	// outcome. Its Attempts include a delivery in flight.
	Callback *Callback
	// Waiting says why a due delivery of the callback waits for its
	// destination; nil when it does not.
	Waiting *Waiting
	// EventWaiting says why the due event waits for the destination of
	// its forward route; nil when it does not.
	EventWaiting *Waiting
}

// Get returns the snapshot of event id, or ErrNotFound.
func (s *Redis) Get(ctx context.Context, id string) (Snapshot, error) {
	snaps, _, err := s.snapshots(ctx, []string{id})
	if err != nil {
		return Snapshot{}, fmt.Errorf("store: get %s: %w", id, err)
	}
	if snaps[0] == nil {
		return Snapshot{}, ErrNotFound
	}
	return *snaps[0], nil
}

// Body returns the body of event id as it was accepted, or ErrNotFound.
func (s *Redis) Body(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, s.part(id).body(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: body %s: %w", id, err)
	}
	return b, nil
}

// snapshotScript reads what makes the snapshots of some events of one
// partition, in one atomic step, so each snapshot is consistent.
//
//	KEYS[1]  event leases   KEYS[2]  event attempts   KEYS[3]  callback attempts
//	KEYS[4]  callback waiting reasons   KEYS[5]  event waiting reasons (hashes)
//	ARGV[1]  key tag   ARGV[2]  record infix   ARGV[3]  callback infix   ARGV[4..]  ids
//
// Returns {records, callback records, then the values of each hash}, each
// in the order of the ids (false when missing).
var snapshotScript = redis.NewScript(`
local ids = {}
for i = 4, #ARGV do ids[#ids+1] = ARGV[i] end
local recs, cbs = {}, {}
for i, id in ipairs(ids) do
  recs[i] = ARGV[1] .. ARGV[2] .. id
  cbs[i] = ARGV[1] .. ARGV[3] .. id
end
local out = {redis.call('MGET', unpack(recs)), redis.call('MGET', unpack(cbs))}
for k = 1, 5 do out[#out+1] = redis.call('HMGET', KEYS[k], unpack(ids)) end
return out
`)

// snapshots reads the snapshots of ids in one round trip (per node), one
// snapshotScript per partition; a missing event is nil. raws holds the
// records as stored ("" when missing).
func (s *Redis) snapshots(ctx context.Context, ids []string) (snaps []*Snapshot, raws []string, err error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	groups := s.byPartition(len(ids), func(i int) string { return ids[i] })
	calls := make([]scriptCall, 0, len(groups))
	order := make([][]int, 0, len(groups))
	for part, idx := range groups {
		k := s.parts[part]
		args := make([]any, 0, 3+len(idx))
		args = append(args, k.tag, infixRecord, infixCallback)
		for _, i := range idx {
			args = append(args, ids[i])
		}
		calls = append(calls, scriptCall{snapshotScript,
			[]string{k.eventLease, k.eventAttempts, k.callbackAttempts, k.callbackWaiting, k.eventWaiting}, args})
		order = append(order, idx)
	}
	cmds, err := s.runScripts(ctx, calls)
	if err != nil {
		return nil, nil, err
	}
	snaps, raws = make([]*Snapshot, len(ids)), make([]string, len(ids))
	for g, cmd := range cmds {
		res, _ := cmd.Val().([]any)
		if len(res) != 7 {
			return nil, nil, fmt.Errorf("snapshots: unexpected reply %v", cmd.Val())
		}
		r := snapshotReads{}
		for i, v := range []*[]any{&r.recs, &r.cbs, &r.leases, &r.attempts, &r.cbAttempts, &r.waiting, &r.evWaiting} {
			*v, _ = res[i].([]any)
		}
		for j, i := range order[g] {
			if snaps[i], raws[i], err = r.snapshot(ids[i], j); err != nil {
				return nil, nil, err
			}
		}
	}
	return snaps, raws, nil
}

// snapshotReads is the reply of one snapshotScript: the j-th value of each
// is that of its j-th id.
type snapshotReads struct {
	recs, cbs                                        []any
	leases, attempts, cbAttempts, waiting, evWaiting []any
}

// snapshot returns the j-th event's snapshot and its record as stored;
// nil when the record is missing.
func (r *snapshotReads) snapshot(id string, j int) (*Snapshot, string, error) {
	raw, ok := r.recs[j].(string)
	if !ok {
		return nil, "", nil
	}
	snap := &Snapshot{}
	if err := decode([]byte(raw), &snap.Record); err != nil {
		return nil, "", fmt.Errorf("decode record %s: %w", id, err)
	}
	rec := &snap.Record
	if _, held := r.leases[j].(string); held && !rec.Status.Terminal() {
		rec.Status = event.StatusProcessing
	}
	rec.Attempts = max(rec.Attempts, hashInt(r.attempts[j]))
	if w, ok := r.evWaiting[j].(string); ok && !rec.Status.Terminal() {
		snap.EventWaiting = parseWaiting(w)
	}
	if cbRaw, ok := r.cbs[j].(string); ok {
		snap.Callback = &Callback{}
		if err := decode([]byte(cbRaw), snap.Callback); err != nil {
			return nil, "", fmt.Errorf("decode callback %s: %w", id, err)
		}
		snap.Callback.Attempts = max(snap.Callback.Attempts, hashInt(r.cbAttempts[j]))
		if w, ok := r.waiting[j].(string); ok && (snap.Callback.Status == event.CallbackPending || snap.Callback.Status == event.CallbackRetrying) {
			snap.Waiting = parseWaiting(w)
		}
	}
	return snap, raw, nil
}

func hashInt(v any) int {
	s, _ := v.(string)
	n, _ := strconv.Atoi(s)
	return n
}

// ListOptions selects the events List returns.
type ListOptions struct {
	// Limit is the most events returned. Default 50, at most 1000.
	Limit int
	// Status keeps only events in this status; zero keeps all.
	Status event.Status
	// EventType keeps only events of this type; "" keeps all.
	EventType string
	// Since keeps only events accepted at or after it; zero keeps all.
	Since time.Time
	// Until keeps only events accepted before it; zero keeps all.
	Until time.Time
	// Cursor continues a listing where the previous page ended.
	Cursor string
}

// ErrBadCursor is returned by List for a cursor it did not issue.
var ErrBadCursor = errors.New("store: bad cursor")

// listScanBudget bounds the index entries one List call reads while
// filtering, so a rare status cannot make it read the whole index.
const listScanBudget = 5000

// List returns recorded events, newest first, and the cursor of the next
// page ("" after the last). With a Status filter a page may hold fewer than
// Limit events and still have a next one.
func (s *Redis) List(ctx context.Context, opts ListOptions) ([]Snapshot, string, error) {
	keep := func(snap *Snapshot) bool {
		return (opts.Status == 0 || snap.Record.Status == opts.Status) &&
			(opts.EventType == "" || snap.Record.EventType == opts.EventType)
	}
	within := window{since: opts.Since, until: opts.Until}
	entries, next, err := s.scan(ctx, func(k keys) string { return k.recent }, within, opts.Limit, opts.Cursor, keep)
	if err != nil {
		return nil, "", fmt.Errorf("store: list: %w", err)
	}
	out := make([]Snapshot, len(entries))
	for i, e := range entries {
		out[i] = e.Snapshot
	}
	return out, next, nil
}

// DeadLetter is an event that failed for good, or whose callback did.
type DeadLetter struct {
	Snapshot
	// Kind is "event" when the event failed, else "callback".
	Kind string
	// FailedAt is when it failed for good (the later of the two, when both did).
	FailedAt time.Time
}

// DeadOptions selects the dead letters ListDead returns.
type DeadOptions struct {
	// Limit is the most returned. Default 50, at most 1000.
	Limit int
	// EventType keeps only dead letters of this event type; "" keeps all.
	EventType string
	// Kind keeps only dead letters of this kind ("event" or "callback",
	// as DeadLetter.Kind); "" keeps all.
	Kind string
	// Cursor continues a listing where the previous page ended.
	Cursor string
}

// ListDead returns the dead letters, most recent failure first, and the
// cursor of the next page ("" after the last).
func (s *Redis) ListDead(ctx context.Context, opts DeadOptions) ([]DeadLetter, string, error) {
	keep := func(snap *Snapshot) bool {
		failed := snap.Record.Status == event.StatusFailed ||
			(snap.Callback != nil && snap.Callback.Status == event.CallbackFailed)
		return failed && (opts.EventType == "" || snap.Record.EventType == opts.EventType) &&
			(opts.Kind == "" || opts.Kind == deadKind(snap))
	}
	entries, next, err := s.scan(ctx, func(k keys) string { return k.dead }, window{}, opts.Limit, opts.Cursor, keep)
	if err != nil {
		return nil, "", fmt.Errorf("store: list dead letters: %w", err)
	}
	out := make([]DeadLetter, len(entries))
	for i, e := range entries {
		out[i] = DeadLetter{Snapshot: e.Snapshot, Kind: deadKind(&e.Snapshot), FailedAt: time.UnixMilli(int64(e.score))}
	}
	return out, next, nil
}

// deadKind is the kind of a dead letter: "event" when the event failed,
// else "callback".
func deadKind(snap *Snapshot) string {
	if snap.Record.Status == event.StatusFailed {
		return "event"
	}
	return "callback"
}

type scanned struct {
	Snapshot
	score float64
}

// window bounds the scores (unix ms) scan reads: since inclusive, until
// exclusive; a zero time leaves its side open.
type window struct{ since, until time.Time }

// min is the window's lower bound as ZRANGEBYSCORE takes it.
func (w window) min() string {
	if w.since.IsZero() {
		return "-inf"
	}
	return strconv.FormatInt(w.since.UnixMilli(), 10)
}

// max is the upper bound of a read from pos within the window.
func (w window) max(pos scanPos) string {
	if !w.until.IsZero() && float64(w.until.UnixMilli()) <= pos.score {
		return "(" + strconv.FormatInt(w.until.UnixMilli(), 10)
	}
	if math.IsInf(pos.score, 1) {
		return "+inf"
	}
	return strconv.FormatInt(int64(pos.score), 10)
}

// scan pages through a zset index of event ids kept in every partition,
// highest score first (then highest id), merging the partitions, and keeps
// the snapshots within w that keep accepts. A cursor is "<score>.<id>" of the last entry
// read: the same position in every partition, so it stays correct while
// events arrive (they sort before it).
func (s *Redis) scan(ctx context.Context, index func(keys) string, w window, limit int, cursor string, keep func(*Snapshot) bool) ([]scanned, string, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	pos := scanPos{score: math.Inf(1)}
	if cursor != "" {
		score, id, ok := strings.Cut(cursor, ".")
		n, err := strconv.ParseInt(score, 10, 64)
		if !ok || err != nil || id == "" {
			return nil, "", ErrBadCursor
		}
		pos = scanPos{score: float64(n), id: id}
	}
	var out []scanned
	read := 0
	for len(out) < limit && read < listScanBudget {
		page := min(limit-len(out)+16, 500)
		entries, more, err := s.scanRound(ctx, index, w, pos, page)
		if err != nil {
			return nil, "", err
		}
		if len(entries) == 0 {
			return out, "", nil
		}
		read += len(entries)
		ids := make([]string, len(entries))
		for i, z := range entries {
			ids[i], _ = z.Member.(string)
		}
		snaps, _, err := s.snapshots(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		consumedAll := true
		for i, snap := range snaps {
			if len(out) == limit {
				consumedAll = false
				break
			}
			pos = scanPos{score: entries[i].Score, id: ids[i]}
			if snap == nil || !keep(snap) {
				continue
			}
			out = append(out, scanned{Snapshot: *snap, score: entries[i].Score})
		}
		if consumedAll && !more {
			return out, "", nil
		}
	}
	return out, fmt.Sprintf("%d.%s", int64(pos.score), pos.id), nil
}

// scanPos is a position in a scan: entries sort before it when their score
// is lower, or equal with a lower id.
type scanPos struct {
	score float64
	id    string // "" with score +inf: the start
}

func (p scanPos) after(z redis.Z) bool {
	id, _ := z.Member.(string)
	return z.Score < p.score || (z.Score == p.score && id < p.id)
}

// scanRound reads the next page entries after pos, merged from every
// partition's index in one round trip. more reports whether entries after
// those may exist.
func (s *Redis) scanRound(ctx context.Context, index func(keys) string, w window, pos scanPos, page int) (entries []redis.Z, more bool, err error) {
	hi, lo := w.max(pos), w.min()
	// Entries at pos's score with ids not below pos.id come first in each
	// partition: fetch past them, a few more each time there are many.
	fetch := int64(page + 16)
	for range 4 {
		cmds := make([]*redis.ZSliceCmd, len(s.parts))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range s.parts {
				cmds[i] = p.ZRevRangeByScoreWithScores(ctx, index(k), &redis.ZRangeBy{Max: hi, Min: lo, Count: fetch})
			}
			return nil
		})
		if err != nil {
			return nil, false, err
		}
		entries, more = entries[:0], false
		starved := false
		for _, cmd := range cmds {
			zs := cmd.Val()
			full := int64(len(zs)) == fetch
			kept := 0
			for _, z := range zs {
				if pos.after(z) {
					entries = append(entries, z)
					kept++
				}
			}
			more = more || full
			starved = starved || (full && kept == 0)
		}
		if !starved {
			break
		}
		fetch *= 4
	}
	slices.SortFunc(entries, func(a, b redis.Z) int {
		if a.Score != b.Score {
			return cmp.Compare(b.Score, a.Score)
		}
		return cmp.Compare(b.Member.(string), a.Member.(string))
	})
	if len(entries) > page {
		entries, more = entries[:page], true
	}
	return entries, more, nil
}

// Due returns how many events and callbacks are due now and not yet
// claimed (or whose lease expired): the backlog of all instances' workers.
// It costs one pipeline of two ZCOUNTs per partition.
func (s *Redis) Due(ctx context.Context, now time.Time) (int, error) {
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	cmds := make([]*redis.IntCmd, 0, 2*len(s.parts))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range s.parts {
			cmds = append(cmds, p.ZCount(ctx, k.events, "-inf", nowMs), p.ZCount(ctx, k.callbacks, "-inf", nowMs))
		}
		return nil
	})
	if err != nil {
		return 0, wrap("due", err)
	}
	total := 0
	for _, cmd := range cmds {
		total += int(cmd.Val())
	}
	return total, nil
}
