package metrics

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// redisCollector reads the state kept in Redis at each scrape: the queues
// in one round trip (store.Redis.Stats) and the destinations' breakers.
// When Redis does not answer within the timeout, the scrape leaves these
// metrics out (and boomerang_redis_errors_total counts the failure) rather
// than failing whole.
type redisCollector struct {
	src     Source
	timeout time.Duration
}

var (
	queueItemsDesc = prometheus.NewDesc("boomerang_queue_items",
		"Items in the queue: due, scheduled for later (retries, deferred deliveries) and leased.", []string{"queue"}, nil)
	queueDueDesc = prometheus.NewDesc("boomerang_queue_due",
		"Items due now and not leased: the backlog waiting for a worker.", []string{"queue"}, nil)
	queueAgeDesc = prometheus.NewDesc("boomerang_queue_oldest_due_age_seconds",
		"How long the item due the longest has waited since it became due; 0 when none is due.", []string{"queue"}, nil)
	heldDesc = prometheus.NewDesc("boomerang_events_held",
		"Events of ordering keys held out of the event queue until the event before them in their key ends.", nil, nil)
	destinationsDesc = prometheus.NewDesc("boomerang_destinations",
		"Destinations (callback URLs' and forward routes' scheme://host:port) by breaker state: closed, open, half-open.",
		[]string{"state"}, nil)
)

func (c *redisCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueItemsDesc
	ch <- queueDueDesc
	ch <- queueAgeDesc
	ch <- heldDesc
	ch <- destinationsDesc
}

func (c *redisCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	now := time.Now()
	if st, err := c.src.Stats(ctx, now); err == nil {
		for _, q := range []struct {
			name  string
			items int64
			due   int64
			since time.Time
		}{
			{"events", st.Events.Items, st.Events.Due, st.Events.OldestDue},
			{"callbacks", st.Callbacks.Items, st.Callbacks.Due, st.Callbacks.OldestDue},
		} {
			age := 0.0
			if !q.since.IsZero() {
				age = max(now.Sub(q.since).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(queueItemsDesc, prometheus.GaugeValue, float64(q.items), q.name)
			ch <- prometheus.MustNewConstMetric(queueDueDesc, prometheus.GaugeValue, float64(q.due), q.name)
			ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, age, q.name)
		}
		ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(st.Held))
	}
	if dests, err := c.src.Destinations(ctx, now); err == nil {
		counts := map[string]int{"closed": 0, "open": 0, "half-open": 0}
		for _, d := range dests {
			counts[d.State]++
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(destinationsDesc, prometheus.GaugeValue, float64(n), state)
		}
	}
}

// RedisHook returns a go-redis hook that counts failed commands and
// pipelines in boomerang_redis_errors_total. A miss (redis.Nil), a script
// not yet cached (NOSCRIPT: go-redis loads it and runs it again) and a
// command cancelled by its caller are not failures.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m} }

type redisHook struct{ m *Metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if failed(err) {
			h.m.redisErrors.Inc()
		}
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err != nil {
			for _, cmd := range cmds {
				if failed(cmd.Err()) {
					h.m.redisErrors.Inc()
					break
				}
			}
		}
		return err
	}
}

// failed reports whether err, a command's error, is a failure of Redis or
// of the connection to it.
func failed(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !errors.Is(err, context.Canceled) &&
		!strings.HasPrefix(err.Error(), "NOSCRIPT")
}
