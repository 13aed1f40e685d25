package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Conn is a Redis client opened by Open, with the embedded server it may
// have started.
type Conn struct {
	redis.UniversalClient
	// Embedded is true when Open started an in-memory Redis, whose data is
	// lost when Close stops it.
	Embedded bool

	mini *miniredis.Miniredis
}

// Timeouts of the clients Open makes: short, so that an unreachable or
// stalled Redis turns into an error (and a 503) quickly instead of a hung
// request. They bound calls whose context has no deadline (the workers'
// claims and renewals); a context's earlier deadline wins, as Open enables
// go-redis' ContextTimeoutEnabled.
const (
	dialTimeout = 2 * time.Second
	ioTimeout   = 3 * time.Second
)

// Open connects to the Redis at url: redis://, rediss:// (TLS) or unix://
// (a socket), as go-redis' ParseURL reads them. An empty url starts an
// embedded in-memory Redis (miniredis) on a loopback port, for development
// and tests. Open does not contact Redis; use Redis.Ping for that.
//
// The client honours its callers' context deadlines on the socket
// (go-redis' ContextTimeoutEnabled); a call without one is bounded by a 3s
// read or write timeout per attempt.
func Open(url string) (*Conn, error) {
	var opts *redis.Options
	var mini *miniredis.Miniredis
	if url == "" {
		var err error
		if mini, err = miniredis.Run(); err != nil {
			return nil, fmt.Errorf("store: start embedded redis: %w", err)
		}
		opts = &redis.Options{Addr: mini.Addr()}
	} else {
		var err error
		if opts, err = redis.ParseURL(url); err != nil {
			// The URL may hold a password: do not repeat it.
			return nil, errors.New("store: redis url: " + redactedParseError(err))
		}
	}
	opts.DialTimeout = dialTimeout
	opts.ReadTimeout = ioTimeout
	opts.WriteTimeout = ioTimeout
	// Without it go-redis gives the socket context.Background(): a
	// caller's deadline then only bounds the wait for a connection and the
	// pauses between retries, and a Redis that accepts a command and never
	// answers holds the call for ReadTimeout on each of its attempts
	// (requests of the API took up to about 24s). With it every read and
	// write ends at the earlier of ReadTimeout and the context's deadline,
	// and no retry starts after that deadline.
	opts.ContextTimeoutEnabled = true
	opts.DisableIdentity = true // one command less per connection
	return &Conn{UniversalClient: redis.NewClient(opts), Embedded: mini != nil, mini: mini}, nil
}

func redactedParseError(err error) string {
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return "cannot parse it (" + msg + ")"
}

// Close closes the client and stops the embedded Redis, if any.
func (c *Conn) Close() error {
	err := c.UniversalClient.Close()
	if c.mini != nil {
		c.mini.Close()
	}
	return err
}
