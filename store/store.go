// Package store keeps everything Boomerang knows in Redis: event records and
// their bodies, the work queue with leases and delayed retries, the callback
// outbox, and the index of recent events.
//
// Every state change is one atomic Lua script, and every script works on a
// batch of events, so that concurrent requests and workers share round trips
// (see internal/batch). Leases carry fencing tokens: a worker whose lease
// expired cannot record an outcome for an event another worker now holds.
//
// The key layout is documented on the keys type and in docs/architecture.md.
//
// Records are JSON, encoded with github.com/goccy/go-json: 2.4 times faster
// than encoding/json on them, and they are encoded or decoded several times
// per event. (It does not know omitzero, so unset times are stored as the
// zero time; they read back the same.) It only ever decodes data that
// encoding/json's scanner found well formed; see decode.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Errors of the store. Redis' own errors (connection refused, timeouts) are
// returned wrapped, and mean the store is unavailable.
var (
	ErrNotFound  = errors.New("store: event not found")
	ErrLeaseLost = errors.New("store: lease lost")
)

// DuplicateError reports an event id that is already recorded. Record is
// the stored record, so the caller can compare bodies.
type DuplicateError struct {
	Record Record
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("store: event %s already recorded (%s)", e.Record.ID, e.Record.Status)
}

// Config tunes a Redis store. The zero value works.
type Config struct {
	// Prefix starts every key, inside a {hash tag}. Default "boomerang".
	Prefix string
	// Logger receives the store's rare warnings (a record that cannot be
	// decoded). Default slog.Default().
	Logger *slog.Logger
	// Observer is told what the lease scripts see, for metrics. Default:
	// nobody.
	Observer Observer
}

// Observer is told what the lease protocol sees, for metrics. Its methods
// are called on the claim and finish paths, so they must be quick.
type Observer interface {
	// LeasesReclaimed reports n items of queue claimed while an earlier
	// lease of theirs was still recorded: it had expired, its holder dead
	// or cut off from Redis.
	LeasesReclaimed(queue string, n int)
	// LeasesLost reports n outcomes on queue that the fence rejected
	// (ErrLeaseLost): their lease had been taken over.
	LeasesLost(queue string, n int)
}

// Names of the queues, as an Observer is told them.
const (
	QueueEvents    = "events"
	QueueCallbacks = "callbacks"
	QueueInline    = "inline" // events run in-request, claimed by the engine's reaper
)

type nopObserver struct{}

func (nopObserver) LeasesReclaimed(string, int) {}
func (nopObserver) LeasesLost(string, int)      {}

// DefaultPrefix is the key prefix of a Config that names none.
const DefaultPrefix = "boomerang"

// Redis is the store on a Redis server or cluster. It is safe for
// concurrent use.
type Redis struct {
	rdb  redis.UniversalClient
	keys keys
	log  *slog.Logger
	obs  Observer

	// Signalled when this process queued work due now (see
	// EventQueue.Ready); buffered, sent to without blocking.
	eventsReady, callbacksReady chan struct{}
}

// New returns a store using rdb. It does not contact Redis.
func New(rdb redis.UniversalClient, cfg Config) (*Redis, error) {
	if rdb == nil {
		return nil, errors.New("store: nil redis client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("store: prefix %q must not contain braces", cfg.Prefix)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	return &Redis{
		rdb: rdb, keys: newKeys(cfg.Prefix), log: cfg.Logger, obs: cfg.Observer,
		eventsReady: make(chan struct{}, 1), callbacksReady: make(chan struct{}, 1),
	}, nil
}

// signal wakes one waiter of c, if any, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Ping checks that Redis answers.
func (s *Redis) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}
