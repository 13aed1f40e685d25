package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// QueueStats is the state of one work queue at a moment.
type QueueStats struct {
	// Items counts everything in the queue: due, scheduled for later
	// (retries, deferred deliveries) and leased.
	Items int64
	// Due counts the items due now and not leased (a lease past its
	// deadline counts: its holder is dead).
	Due int64
	// OldestDue is when the item due the longest became due; zero when
	// none is due.
	OldestDue time.Time
}

// Stats is the state of the store's queues, for metrics.
type Stats struct {
	Events, Callbacks QueueStats
	// Held counts the events of ordering keys held out of the event queue
	// until the one before them ends (see order.go).
	Held int64
}

// Stats reads the state of the event and callback queues at now in one
// round trip per node (a pipeline of read-only commands on every
// partition), so a metrics scrape costs Redis one round trip whatever the
// backlog.
func (s *Redis) Stats(ctx context.Context, now time.Time) (Stats, error) {
	type cmds struct {
		items, due *redis.IntCmd
		first      *redis.ZSliceCmd
	}
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	ev, cb := make([]cmds, len(s.parts)), make([]cmds, len(s.parts))
	held := make([]*redis.IntCmd, len(s.parts))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range s.parts {
			held[i] = p.HLen(ctx, k.held)
			for _, q := range []struct {
				key string
				c   *cmds
			}{{k.events, &ev[i]}, {k.callbacks, &cb[i]}} {
				q.c.items = p.ZCard(ctx, q.key)
				q.c.due = p.ZCount(ctx, q.key, "-inf", nowMs)
				q.c.first = p.ZRangeWithScores(ctx, q.key, 0, 0)
			}
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	read := func(parts []cmds) QueueStats {
		var qs QueueStats
		for _, c := range parts {
			qs.Items += c.items.Val()
			qs.Due += c.due.Val()
			if first := c.first.Val(); c.due.Val() > 0 && len(first) == 1 {
				if at := time.UnixMilli(int64(first[0].Score)); qs.OldestDue.IsZero() || at.Before(qs.OldestDue) {
					qs.OldestDue = at
				}
			}
		}
		return qs
	}
	st := Stats{Events: read(ev), Callbacks: read(cb)}
	for _, h := range held {
		st.Held += h.Val()
	}
	return st, nil
}
