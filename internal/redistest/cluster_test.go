package redistest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/boomerang-events/boomerang/store"
)

// TestClusterFailover starts 3 masters with a replica each, writes keys
// over every master through a client from store.Open, SIGKILLs one master
// and checks that the same client, without a restart, serves every key
// again once the replica has taken over, with no acknowledged write lost
// (each write was WAITed for on its replica). Then the killed node comes
// back as a replica.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 redis-server processes")
	}
	cl := StartCluster(t, 3, 1)
	if got := len(cl.Masters(t)); got != 3 {
		t.Fatalf("got %d masters, want 3", got)
	}
	conn, err := store.Open(cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rdb := conn.UniversalClient.(*redis.ClusterClient)
	ctx := context.Background()

	const n = 200
	key := func(i int) string { return fmt.Sprintf("failover:%d", i) }
	for i := range n {
		if err := rdb.Set(ctx, key(i), "v1", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key(i), err)
		}
	}
	// Every master holds some keys, and each has its replica acknowledge
	// them.
	var mu sync.Mutex // guards perMaster: ForEachMaster calls in parallel
	perMaster := map[string]int64{}
	err = rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		size, err := m.DBSize(ctx).Result()
		if err != nil {
			return err
		}
		if acked, err := m.Wait(ctx, 1, 5000).Result(); err != nil || acked < 1 {
			return fmt.Errorf("WAIT 1 on %s: %d replicas, %v", m.Options().Addr, acked, err)
		}
		mu.Lock()
		perMaster[m.Options().Addr] = size
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(perMaster) != 3 {
		t.Fatalf("keys on %d masters (%v), want 3", len(perMaster), perMaster)
	}
	for addr, size := range perMaster {
		if size < n/10 {
			t.Errorf("master %s holds %d of %d keys, want at least %d", addr, size, n, n/10)
		}
	}

	owner, err := rdb.MasterForKey(ctx, key(0))
	if err != nil {
		t.Fatal(err)
	}
	victim := cl.Node(owner.Options().Addr)
	if victim == nil {
		t.Fatalf("no node at %s", owner.Options().Addr)
	}
	victim.Kill(t)
	killed := time.Now()

	// The client serves every key again, with its value, within the bound.
	const bound = 20 * time.Second
	var lastErr error
	for {
		lastErr = checkAll(ctx, rdb, n, key)
		if lastErr == nil {
			break
		}
		if time.Since(killed) > bound {
			t.Fatalf("%v after the kill, still failing: %v", bound, lastErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("served again %v after the master was killed", time.Since(killed).Round(10*time.Millisecond))
	masters := cl.Masters(t)
	if len(masters) != 3 || slices.Contains(masters, victim) {
		t.Errorf("got masters %v, want 3 without the killed %s", addrsOf(masters), victim.Addr)
	}

	// The killed node comes back as a replica of its successor.
	victim.Start(t)
	cl.WaitReady(t, 30*time.Second)
	if role := victim.Role(t); role != "replica" {
		t.Errorf("restarted node is a %s, want a replica", role)
	}
	if err := checkAll(ctx, rdb, n, key); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}

// checkAll reads back the n keys, and writes each again.
func checkAll(ctx context.Context, rdb redis.UniversalClient, n int, key func(int) string) error {
	for i := range n {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		v, err := rdb.Get(ctx, key(i)).Result()
		if err == nil && v != "v1" {
			err = fmt.Errorf("got %q, want v1", v)
		}
		if err == nil {
			err = rdb.Set(ctx, key(i), "v1", 0).Err()
		}
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", key(i), err)
		}
	}
	return nil
}

func addrsOf(nodes []*ClusterNode) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.Addr)
	}
	return strings.Join(s, ",")
}

// TestDeletePrefixCluster writes keys of both tag forms of a prefix, and
// of another prefix, over a cluster's masters: DeletePrefix deletes the
// first and leaves the others.
func TestDeletePrefixCluster(t *testing.T) {
	var rdb redis.UniversalClient
	if os.Getenv("REDIS_CLUSTER_URL") != "" {
		rdb = Cluster(t).Client
	} else {
		if testing.Short() {
			t.Skip("starts 3 redis-server processes")
		}
		rdb = StartCluster(t, 3, 0).Client(t)
	}
	testDeletePrefix(t, rdb)
}

func TestDeletePrefixReal(t *testing.T) {
	testDeletePrefix(t, Real(t).Client)
}

func testDeletePrefix(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	prefix, other := "dp-"+RandomHex(4), "dp-"+RandomHex(4)
	var mine, theirs []string
	for i := range 64 {
		// {p}:..., and partitions {p:N}... whose slots differ.
		mine = append(mine, fmt.Sprintf("{%s}:k:%d", prefix, i), fmt.Sprintf("{%s:%d}:k", prefix, i),
			fmt.Sprintf("{%s:%d:ab}:ev:x", prefix, i))
		theirs = append(theirs, fmt.Sprintf("{%s}:k:%d", other, i), fmt.Sprintf("{%s:%d}:k", other, i),
			fmt.Sprintf("{%sx:%d}", prefix, i), fmt.Sprintf("%s:%d", prefix, i))
	}
	for _, k := range append(slices.Clone(mine), theirs...) {
		if err := rdb.Set(ctx, k, "v", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, k := range theirs {
			rdb.Del(ctx, k)
		}
	})
	DeletePrefix(t, rdb, prefix)
	for _, k := range mine {
		if n, err := rdb.Exists(ctx, k).Result(); n != 0 || err != nil {
			t.Errorf("%s: EXISTS %d, %v after DeletePrefix; want 0", k, n, err)
		}
	}
	for _, k := range theirs {
		if n, err := rdb.Exists(ctx, k).Result(); n != 1 || err != nil {
			t.Errorf("%s: EXISTS %d, %v after DeletePrefix; want 1 (not the prefix's)", k, n, err)
		}
	}
}
