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
}

// Stats reads the state of the event and callback queues at now in one
// round trip (a pipeline of read-only commands), so a metrics scrape costs
// Redis one round trip whatever the backlog.
func (s *Redis) Stats(ctx context.Context, now time.Time) (Stats, error) {
	type cmds struct {
		items, due *redis.IntCmd
		first      *redis.ZSliceCmd
	}
	nowMs := strconv.FormatInt(now.UnixMilli(), 10)
	var ev, cb cmds
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, q := range []struct {
			key string
			c   *cmds
		}{{s.keys.events, &ev}, {s.keys.callbacks, &cb}} {
			q.c.items = p.ZCard(ctx, q.key)
			q.c.due = p.ZCount(ctx, q.key, "-inf", nowMs)
			q.c.first = p.ZRangeWithScores(ctx, q.key, 0, 0)
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("store: stats: %w", err)
	}
	read := func(c cmds) QueueStats {
		qs := QueueStats{Items: c.items.Val(), Due: c.due.Val()}
		if first := c.first.Val(); qs.Due > 0 && len(first) == 1 {
			qs.OldestDue = time.UnixMilli(int64(first[0].Score))
		}
		return qs
	}
	return Stats{Events: read(ev), Callbacks: read(cb)}, nil
}
