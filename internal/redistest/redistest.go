// Package redistest gives tests the Redis servers to run against: always an
// in-memory miniredis, and also the real Redis at $REDIS_URL when it is set.
// Each test gets its own random key prefix on the real server and deletes
// only its own keys afterwards, so tests never disturb each other or other
// users of that server.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Backend is one Redis server a test runs against.
type Backend struct {
	// Name is "miniredis" or "redis", for t.Run.
	Name string
	// URL reaches the server (for a subprocess or store.Open).
	URL string
	// Client is connected to the server and closed at the test's end.
	Client *redis.Client
	// Prefix is the test's own key prefix.
	Prefix string
	// Mini is the in-memory server, nil for the real one.
	Mini *miniredis.Miniredis
}

// Run runs f once per backend, each as a subtest.
func Run(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { f(t, Mini(t)) })
	if os.Getenv("REDIS_URL") == "" {
		return
	}
	t.Run("redis", func(t *testing.T) { f(t, Real(t)) })
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

// DeletePrefix deletes the keys of one store prefix ({prefix}:*).
func DeletePrefix(t testing.TB, c redis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, "{"+prefix+"}:*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
	if err := iter.Err(); err != nil {
		t.Logf("redistest: delete prefix %s: %v", prefix, err)
	}
}

// RandomHex returns n random bytes in hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
