package store

import (
	"context"
	"errors"
	"fmt"
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
	b, err := s.rdb.Get(ctx, s.keys.body(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: body %s: %w", id, err)
	}
	return b, nil
}

// snapshots reads the snapshots of ids in one round trip; a missing event
// is nil. raws holds the records as stored ("" when missing).
func (s *Redis) snapshots(ctx context.Context, ids []string) (snaps []*Snapshot, raws []string, err error) {
	k := s.keys
	recKeys, cbKeys := make([]string, len(ids)), make([]string, len(ids))
	for i, id := range ids {
		recKeys[i], cbKeys[i] = k.record(id), k.callback(id)
	}
	var recs, cbs *redis.SliceCmd
	var leases, attempts, cbAttempts, waiting, evWaiting *redis.SliceCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		recs = p.MGet(ctx, recKeys...)
		cbs = p.MGet(ctx, cbKeys...)
		leases = p.HMGet(ctx, k.eventLease, ids...)
		attempts = p.HMGet(ctx, k.eventAttempts, ids...)
		cbAttempts = p.HMGet(ctx, k.callbackAttempts, ids...)
		waiting = p.HMGet(ctx, k.callbackWaiting, ids...)
		evWaiting = p.HMGet(ctx, k.eventWaiting, ids...)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]*Snapshot, len(ids))
	raws = make([]string, len(ids))
	for i, id := range ids {
		raw, ok := recs.Val()[i].(string)
		if !ok {
			continue
		}
		raws[i] = raw
		snap := &Snapshot{}
		if err := decode([]byte(raw), &snap.Record); err != nil {
			return nil, nil, fmt.Errorf("decode record %s: %w", id, err)
		}
		rec := &snap.Record
		if _, held := leases.Val()[i].(string); held && !rec.Status.Terminal() {
			rec.Status = event.StatusProcessing
		}
		rec.Attempts = max(rec.Attempts, hashInt(attempts.Val()[i]))
		if w, ok := evWaiting.Val()[i].(string); ok && !rec.Status.Terminal() {
			snap.EventWaiting = parseWaiting(w)
		}
		if raw, ok := cbs.Val()[i].(string); ok {
			snap.Callback = &Callback{}
			if err := decode([]byte(raw), snap.Callback); err != nil {
				return nil, nil, fmt.Errorf("decode callback %s: %w", id, err)
			}
			snap.Callback.Attempts = max(snap.Callback.Attempts, hashInt(cbAttempts.Val()[i]))
			if w, ok := waiting.Val()[i].(string); ok && (snap.Callback.Status == event.CallbackPending || snap.Callback.Status == event.CallbackRetrying) {
				snap.Waiting = parseWaiting(w)
			}
		}
		out[i] = snap
	}
	return out, raws, nil
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
	entries, next, err := s.scan(ctx, s.keys.recent, within, opts.Limit, opts.Cursor, keep)
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
	entries, next, err := s.scan(ctx, s.keys.dead, window{}, opts.Limit, opts.Cursor, keep)
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

// min and max are the window's bounds as ZRANGEBYSCORE takes them.
func (w window) min() string {
	if w.since.IsZero() {
		return "-inf"
	}
	return strconv.FormatInt(w.since.UnixMilli(), 10)
}

func (w window) max() string {
	if w.until.IsZero() {
		return "+inf"
	}
	return "(" + strconv.FormatInt(w.until.UnixMilli(), 10)
}

// scan pages through a zset index of event ids, highest score first,
// keeping the snapshots within w that keep accepts. A cursor is
// "<score>.<id>" of the last entry read.
func (s *Redis) scan(ctx context.Context, index string, w window, limit int, cursor string, keep func(*Snapshot) bool) ([]scanned, string, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	maxScore, afterID := w.max(), ""
	if cursor != "" {
		score, id, ok := strings.Cut(cursor, ".")
		n, err := strconv.ParseInt(score, 10, 64)
		if !ok || err != nil || id == "" {
			return nil, "", ErrBadCursor
		}
		if w.until.IsZero() || n < w.until.UnixMilli() { // else the window's end bounds it
			maxScore, afterID = score, id
		}
	}
	var (
		out    []scanned
		offset int
		read   int
		last   redis.Z
	)
	for len(out) < limit && read < listScanBudget {
		page := int64(min(limit-len(out)+16, 500))
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, index, &redis.ZRangeBy{
			Max: maxScore, Min: w.min(), Offset: int64(offset), Count: page,
		}).Result()
		if err != nil {
			return nil, "", err
		}
		if len(zs) == 0 {
			return out, "", nil
		}
		offset += len(zs)
		read += len(zs)
		var fresh []redis.Z
		for _, z := range zs {
			id, _ := z.Member.(string)
			// Entries at the cursor's score sort by member, descending: skip
			// those the previous page returned.
			if afterID != "" && strconv.FormatFloat(z.Score, 'f', -1, 64) == maxScore && id >= afterID {
				continue
			}
			fresh = append(fresh, z)
		}
		ids := make([]string, len(fresh))
		for i, z := range fresh {
			ids[i], _ = z.Member.(string)
		}
		var snaps []*Snapshot
		if len(ids) > 0 { // all may be entries the previous page returned
			var err error
			if snaps, _, err = s.snapshots(ctx, ids); err != nil {
				return nil, "", err
			}
		}
		for i, snap := range snaps {
			if len(out) == limit {
				break
			}
			last = fresh[i]
			if snap == nil || !keep(snap) {
				continue
			}
			out = append(out, scanned{Snapshot: *snap, score: fresh[i].Score})
		}
		if len(zs) < int(page) && len(out) < limit {
			return out, "", nil
		}
	}
	return out, fmt.Sprintf("%d.%s", int64(last.Score), last.Member), nil
}

// dueScript counts what waits for a worker: events and callbacks due now.
//
//	KEYS[1]  event queue (zset)   KEYS[2]  callback queue (zset)
//	ARGV[1]  now (unix ms)
var dueScript = redis.NewScript(`
return redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1]) + redis.call('ZCOUNT', KEYS[2], '-inf', ARGV[1])
`)

// Due returns how many events and callbacks are due now and not yet
// claimed (or whose lease expired): the backlog of all instances' workers.
func (s *Redis) Due(ctx context.Context, now time.Time) (int, error) {
	n, err := dueScript.Run(ctx, s.rdb, []string{s.keys.events, s.keys.callbacks}, now.UnixMilli()).Int()
	return n, wrap("due", err)
}
