// Package redistest gives tests the Redis servers to run against: always an
// in-memory miniredis, also the real Redis at $REDIS_URL when it is set, and
// the Redis Cluster at $REDIS_CLUSTER_URL (redis+cluster://h1:p1,h2:p2) when
// that is set. Each test gets its own random key prefix on a real server and
// deletes only its own keys afterwards, so tests never disturb each other or
// other users of that server. StartServer and StartCluster start private
// redis-server processes for tests that stop or kill them.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backend is one Redis server a test runs against.
type Backend struct {
	// Name is "miniredis", "redis" or "cluster", for t.Run.
	Name string
	// URL reaches the server (for a subprocess or store.Open): redis://,
	// or redis+cluster:// for a cluster.
	URL string
	// Client is connected to the server and closed at the test's end: a
	// *redis.Client, or a *redis.ClusterClient for a cluster.
	Client redis.UniversalClient
	// Prefix is the test's own key prefix.
	Prefix string
	// Mini is the in-memory server, nil for the real one.
	Mini *miniredis.Miniredis
}

// Run runs f once per backend, each as a subtest.
func Run(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { f(t, Mini(t)) })
	if os.Getenv("REDIS_URL") != "" {
		t.Run("redis", func(t *testing.T) { f(t, Real(t)) })
	}
	if os.Getenv("REDIS_CLUSTER_URL") != "" {
		t.Run("cluster", func(t *testing.T) { f(t, Cluster(t)) })
	}
}

// Mini starts a miniredis for the test.
func Mini(t testing.TB) Backend {
	t.Helper()
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return Backend{Name: "miniredis", URL: "redis://" + m.Addr(), Client: c, Prefix: "test", Mini: m}
}

// Real connects to $REDIS_URL with a fresh random prefix, or skips the test
// when REDIS_URL is not set. Its keys are deleted at the test's end.
func Real(t testing.TB) Backend {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		t.Skip("REDIS_URL not set")
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	opts.DisableIdentity = true
	c := redis.NewClient(opts)
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("REDIS_URL does not answer: %v", err)
	}
	prefix := "test-" + RandomHex(8)
	t.Cleanup(func() {
		DeletePrefix(t, c, prefix)
		c.Close()
	})
	return Backend{Name: "redis", URL: url, Client: c, Prefix: prefix}
}

// Cluster connects to the Redis Cluster at $REDIS_CLUSTER_URL (a
// redis+cluster:// URL) with a fresh random prefix, or skips the test when
// REDIS_CLUSTER_URL is not set. Its keys are deleted at the test's end.
func Cluster(t testing.TB) Backend {
	t.Helper()
	url := os.Getenv("REDIS_CLUSTER_URL")
	if url == "" {
		t.Skip("REDIS_CLUSTER_URL not set")
	}
	opts, err := ParseClusterURL(url)
	if err != nil {
		t.Fatalf("REDIS_CLUSTER_URL: %v", err)
	}
	c := redis.NewClusterClient(opts)
	if err := c.ForEachShard(context.Background(), func(ctx context.Context, n *redis.Client) error {
		return n.Ping(ctx).Err()
	}); err != nil {
		c.Close()
		t.Fatalf("REDIS_CLUSTER_URL does not answer: %v", err)
	}
	prefix := "test-" + RandomHex(8)
	t.Cleanup(func() {
		DeletePrefix(t, c, prefix)
		c.Close()
	})
	return Backend{Name: "cluster", URL: url, Client: c, Prefix: prefix}
}

// ParseClusterURL reads a redis+cluster:// URL
// (redis+cluster://[user:password@]h1:p1,h2:p2[?options], as store.Open
// takes it) into go-redis' options, with DisableIdentity set.
func ParseClusterURL(s string) (*redis.ClusterOptions, error) {
	rest, ok := strings.CutPrefix(s, "redis+cluster://")
	if !ok {
		return nil, errors.New("want a redis+cluster:// URL")
	}
	authority, query, _ := strings.Cut(rest, "?")
	authority = strings.TrimSuffix(authority, "/")
	userinfo, hosts := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	list := strings.Split(hosts, ",")
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, err
	}
	for _, h := range list[1:] {
		q.Add("addr", h)
	}
	opts, err := redis.ParseClusterURL("redis://" + userinfo + list[0] + "?" + q.Encode())
	if err != nil {
		return nil, err
	}
	opts.DisableIdentity = true
	return opts, nil
}

// DeletePrefix deletes the keys of one store prefix: those of its hash tag
// ({prefix}:...) and those of its partitions' tags ({prefix:...}...). On a
// cluster it deletes them on every master.
func DeletePrefix(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	pattern := PrefixPattern(prefix)
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return deleteMatching(ctx, node, pattern, true)
		})
	} else {
		err = deleteMatching(ctx, c, pattern, false)
	}
	if err != nil {
		t.Logf("redistest: delete prefix %s: %v", prefix, err)
	}
}

// PrefixPattern is the SCAN pattern of every key of a store prefix, under
// its tag {prefix}:... or a partition's {prefix:...}.
func PrefixPattern(prefix string) string {
	return "{" + prefix + "[}:]*"
}

// deleteMatching deletes the keys of c that match pattern, 500 at a time:
// one DEL of many keys on a single node; one DEL per key on a cluster's
// node, whose keys are in different slots.
func deleteMatching(ctx context.Context, c redis.Cmdable, pattern string, perKey bool) error {
	del := func(keys []string) error {
		if !perKey {
			return c.Del(ctx, keys...).Err()
		}
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Del(ctx, k)
			}
			return nil
		})
		return err
	}
	iter := c.Scan(ctx, 0, pattern, 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			if err := del(keys); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return del(keys)
	}
	return nil
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
