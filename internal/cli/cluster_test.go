package cli

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestClusterSpreadsEvents runs 10,000 events with callbacks through a
// server on the Redis Cluster at $REDIS_CLUSTER_URL: every callback is
// delivered, and every master holds at least 20% of the store's keys (the
// partitions spread over the slots; see store/partition.go).
func TestClusterSpreadsEvents(t *testing.T) {
	const events = 10000
	b := redistest.Cluster(t)
	rcv := fakes.NewReceiver(t)
	base, _ := startServer(t, testConfig(b))

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > events {
					return
				}
				body := eventJSON(fmt.Sprintf("spread-%05d", i), "user_created", rcv)
				req, _ := http.NewRequest(http.MethodPost, base+"/event", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d events were not accepted", n, events)
	}
	got := rcv.WaitFor(t, events, 3*time.Minute)
	ids := map[string]bool{}
	for _, cb := range got {
		ids[cb.Body.EventID] = true
	}
	if len(ids) != events {
		t.Errorf("callbacks: got %d distinct events of %d", len(ids), events)
	}

	// Keys per master.
	cc := b.Client.(*redis.ClusterClient)
	var mu sync.Mutex
	perMaster := map[string]int{}
	total := 0
	err := cc.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
		n := 0
		iter := node.Scan(ctx, 0, redistest.PrefixPattern(b.Prefix), 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		mu.Lock()
		perMaster[node.Options().Addr] = n
		total += n
		mu.Unlock()
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("keys per master: %v (total %d)", perMaster, total)
	if len(perMaster) < 3 {
		t.Fatalf("masters: got %d, want at least 3", len(perMaster))
	}
	for addr, n := range perMaster {
		if n*5 < total {
			t.Errorf("master %s holds %d of %d keys (%.0f%%), want at least 20%%", addr, n, total, 100*float64(n)/float64(total))
		}
	}
}
