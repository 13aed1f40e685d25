package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
	"github.com/redis/go-redis/v9"
)

// With WaitReplicas, Enqueue returns once the replicas have the events:
// then they are on the replica, whatever happens to the master. Without a
// replica it is ErrNotReplicated, and the events are on the master only.
func TestEnqueueWaitsForReplicas(t *testing.T) {
	master := redistest.StartServer(t)
	replica := redistest.StartServer(t)
	ctx := context.Background()
	mc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", master.Port)})
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", replica.Port)})
	t.Cleanup(func() { mc.Close(); rc.Close() })

	s, err := store.New(mc, store.Config{Prefix: "w", WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Enqueue(ctx, t0, []store.NewEvent{newEvent("alone")})
	if !errors.Is(err, store.ErrNotReplicated) {
		t.Fatalf("no replica: got %v, want ErrNotReplicated", err)
	}

	if err := rc.ReplicaOf(ctx, "127.0.0.1", fmt.Sprint(master.Port)).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !linked(ctx, rc) {
		if time.Now().After(deadline) {
			t.Fatal("replica did not link within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ids []string
	for i := range 50 {
		ids = append(ids, fmt.Sprintf("r%02d", i))
	}
	enqueue(t, s, t0, ids...)
	// Read the replica at once: WAIT promised it has them.
	onReplica, err := store.New(rc, store.Config{Prefix: "w"})
	if err != nil {
		t.Fatal(err)
	}
	snaps, _, err := onReplica.List(ctx, store.ListOptions{Limit: 100})
	if err != nil || len(snaps) != 51 {
		t.Errorf("on the replica right after Enqueue: %d events, %v; want 51", len(snaps), err)
	}
}

func linked(ctx context.Context, c *redis.Client) bool {
	info, err := c.Info(ctx, "replication").Result()
	return err == nil && strings.Contains(info, "master_link_status:up")
}
