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
// Records are JSON: written by hand-written encoders that produce exactly
// encoding/json's bytes (encode.go), read with encoding/json (see decode
// for why not a faster codec). Records written earlier by goccy/go-json
// hold unset times as the zero time; they read back the same.
package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

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
	// Partitions is the number of partitions the keys are split into (see
	// partition.go); a store must always be opened with the number it was
	// created with (Check). Default DefaultPartitions, at most
	// MaxPartitions.
	Partitions int
	// Logger receives the store's rare warnings (a record that cannot be
	// decoded). Default slog.Default().
	Logger *slog.Logger
	// Observer is told what the lease scripts see, for metrics. Default:
	// nobody.
	Observer Observer
	// WaitReplicas, when above 0, makes Enqueue wait until that many
	// replicas of each partition's master have its events (Redis WAIT on
	// the connection that wrote them), so that an event Enqueue reports
	// recorded survives the loss of its master. Fewer within WaitTimeout
	// is ErrNotReplicated. Default 0: Enqueue returns once the master has
	// the events.
	WaitReplicas int
	// WaitTimeout bounds that wait. Default 1s.
	WaitTimeout time.Duration
}

// ErrNotReplicated is returned by Enqueue, with WaitReplicas set, when the
// events were written but fewer replicas than asked acknowledged them in
// time: they are recorded on the master, and may be lost with it.
var ErrNotReplicated = errors.New("store: events not acknowledged by enough replicas")

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
	rdb    redis.UniversalClient
	parts  []keys // the partitions' keys
	prefix string
	meta   string // {prefix}:meta
	dests  string // {prefix}:dests
	log    *slog.Logger
	obs    Observer

	waitReplicas int
	waitTimeout  time.Duration
	// crossSlot is true on a single node (or a Sentinel group's master),
	// where one script may take the keys of several partitions: slots
	// mean nothing there. On a cluster each script stays in one slot.
	crossSlot bool

	// Which partition each queue's claims look at (by queueKind).
	pickers [3]*picker

	// Signalled when this process queued work due now (see
	// EventQueue.Ready); buffered, sent to without blocking.
	eventsReady, callbacksReady chan struct{}

	// skipAdvance, set by tests only, leaves the ordering keys' sequences
	// as they are when events end, as a crash would (see order.go).
	skipAdvance bool
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
	switch {
	case cfg.Partitions == 0:
		cfg.Partitions = DefaultPartitions
	case cfg.Partitions < 0 || cfg.Partitions > MaxPartitions:
		return nil, fmt.Errorf("store: partitions %d: must be 1 to %d", cfg.Partitions, MaxPartitions)
	}
	client := rdb
	if c, ok := client.(*Conn); ok {
		client = c.UniversalClient
	}
	_, single := client.(*redis.Client)
	if cfg.WaitReplicas > 0 {
		rdb = client
		switch rdb.(type) {
		case *redis.Client, *redis.ClusterClient:
		default:
			return nil, fmt.Errorf("store: wait replicas: needs a single-node, Sentinel or Cluster client, got %T", rdb)
		}
		if cfg.WaitTimeout <= 0 {
			cfg.WaitTimeout = time.Second
		}
	}
	s := &Redis{
		rdb: rdb, prefix: cfg.Prefix, meta: "{" + cfg.Prefix + "}:meta", dests: "{" + cfg.Prefix + "}:dests",
		log: cfg.Logger, obs: cfg.Observer, waitReplicas: cfg.WaitReplicas, waitTimeout: cfg.WaitTimeout, crossSlot: single,
		eventsReady: make(chan struct{}, 1), callbacksReady: make(chan struct{}, 1),
	}
	for _, tag := range partitionTags(cfg.Prefix, cfg.Partitions) {
		s.parts = append(s.parts, newKeys(tag))
	}
	for i := range s.pickers {
		s.pickers[i] = newPicker(cfg.Partitions)
	}
	return s, nil
}

// part returns the keys of the partition of event id.
func (s *Redis) part(id string) keys { return s.parts[partitionOf(id, len(s.parts))] }

// Partitions returns the number of partitions of the store.
func (s *Redis) Partitions() int { return len(s.parts) }

// destKey returns the key of destination d's flow state (see keys).
func (s *Redis) destKey(d string) string { return destKey(s.prefix, d) }

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
