package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/process"
	"github.com/boomerang-events/boomerang/store"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
)

var (
	_ store.Observer    = (*Metrics)(nil)
	_ process.Observer  = (*Metrics)(nil)
	_ callback.Observer = (*Metrics)(nil)
	_ handler.Observer  = (*Metrics)(nil)
	_ Source            = (*store.Redis)(nil)
)

// source is a Source with fixed answers.
type source struct {
	stats store.Stats
	dests []store.Destination
	err   error
}

func (s source) Stats(context.Context, time.Time) (store.Stats, error) { return s.stats, s.err }
func (s source) Destinations(context.Context, time.Time) ([]store.Destination, error) {
	return s.dests, s.err
}

func TestEventTypesFoldIntoOther(t *testing.T) {
	m := New(Config{MaxEventTypes: 3})
	for i := range 10 {
		m.Attempt(fmt.Sprintf("t%d", i), process.Success, time.Millisecond)
	}
	m.Attempt("t0", process.Retry, time.Millisecond)
	for typ, want := range map[string]float64{"t0": 1, "t1": 1, "t2": 1, "t3": 0, OtherEventType: 7} {
		if got := testutil.ToFloat64(m.attempts.WithLabelValues(typ, "success")); got != want {
			t.Errorf("successes of %s: got %g, want %g", typ, got, want)
		}
	}
	if got := testutil.ToFloat64(m.eventRetries); got != 1 {
		t.Errorf("retries scheduled: got %g, want 1", got)
	}
}

// Counting allocates nothing once a series exists: it is on the path of
// every event and request.
func TestCountingDoesNotAllocate(t *testing.T) {
	m := New(Config{})
	cb := &store.Callback{Status: event.CallbackDelivered, CreatedAt: time.Now(), EventAcceptedAt: time.Now(), DeliveredAt: time.Now()}
	m.Attempt("user_created", process.Success, time.Millisecond)
	m.Request("/event", http.MethodPost, http.StatusAccepted)
	for name, f := range map[string]func(){
		"Attempt":       func() { m.Attempt("user_created", process.Success, time.Millisecond) },
		"Request":       func() { m.Request("/event", http.MethodPost, http.StatusAccepted) },
		"EventAccepted": m.EventAccepted,
		"Delivery":      func() { m.Delivery(cb, time.Millisecond) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: got %g allocations, want 0", name, n)
		}
	}
}

func TestDeliveryOutcomes(t *testing.T) {
	m := New(Config{})
	accepted := time.Now().Add(-3 * time.Second)
	created := accepted.Add(time.Second)
	for _, st := range []event.CallbackStatus{event.CallbackRetrying, event.CallbackFailed, event.CallbackDelivered} {
		m.Delivery(&store.Callback{Status: st, EventAcceptedAt: accepted, CreatedAt: created, DeliveredAt: created.Add(time.Second)}, time.Millisecond)
	}
	m.Delivery(&store.Callback{Status: event.CallbackDelivered, CreatedAt: created, DeliveredAt: created}, time.Millisecond) // an old record: no accepted time
	for i, want := range []float64{2, 1, 1} {
		if got := testutil.ToFloat64(m.deliveries[i]); got != want {
			t.Errorf("deliveries[%d]: got %g, want %g", i, got, want)
		}
	}
	if got := testutil.ToFloat64(m.deadCallbacks) + testutil.ToFloat64(m.callbackRetries); got != 2 {
		t.Errorf("dead callbacks + callback retries: got %g, want 2", got)
	}
	body := scrape(t, m)
	for _, want := range []string{
		"boomerang_end_to_end_latency_seconds_count 1",
		"boomerang_end_to_end_latency_seconds_sum 2",
		"boomerang_callback_delivery_latency_seconds_count 2",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape: want %q in\n%s", want, grep(body, "latency"))
		}
	}
}

func TestScrapeWithoutRedis(t *testing.T) {
	m := New(Config{})
	m.ReadFrom(source{err: errors.New("redis down")})
	body := scrape(t, m) // the scrape still answers
	if strings.Contains(body, "boomerang_queue_items") || !strings.Contains(body, "boomerang_build_info") {
		t.Errorf("scrape with Redis down: want no queue gauges but the rest, got\n%s", grep(body, "boomerang_"))
	}
}

func TestQueueGauges(t *testing.T) {
	m := New(Config{})
	m.ReadFrom(source{
		stats: store.Stats{Events: store.QueueStats{Items: 5, Due: 2, OldestDue: time.Now().Add(-time.Minute)}, Held: 3},
		dests: []store.Destination{{State: "open"}, {State: "closed"}, {State: "open"}},
	})
	body := scrape(t, m)
	for _, want := range []string{
		`boomerang_queue_items{queue="events"} 5`, `boomerang_queue_due{queue="events"} 2`,
		`boomerang_events_held 3`, `boomerang_queue_items{queue="callbacks"} 0`, `boomerang_queue_oldest_due_age_seconds{queue="callbacks"} 0`,
		`boomerang_destinations{state="open"} 2`, `boomerang_destinations{state="half-open"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape: want %q in\n%s", want, grep(body, "boomerang_"))
		}
	}
	if !strings.Contains(body, `boomerang_queue_oldest_due_age_seconds{queue="events"} 60`) {
		t.Errorf("oldest due age of events: want about 60s in\n%s", grep(body, "oldest"))
	}
}

func TestRedisErrorsCounted(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{context.Canceled, false},
		{errors.New("NOSCRIPT No matching script"), false},
		{context.DeadlineExceeded, true},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{errors.New("ERR Error running script"), true},
	}
	for _, tc := range tests {
		if got := failed(tc.err); got != tc.want {
			t.Errorf("failed(%v): got %v, want %v", tc.err, got, tc.want)
		}
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("scrape: got %d, want 200:\n%s", w.Code, w.Body)
	}
	return w.Body.String()
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
