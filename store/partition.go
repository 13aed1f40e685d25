package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Partitions split the store's keys so that it spreads over the nodes of a
// Redis Cluster. Each partition's keys share one hash tag, so every script
// still works on one slot; an event belongs to the partition its id hashes
// to, so the idempotency check of an id stays in one slot too.
//
// The tags are chosen so that the partitions' slots are spread evenly over
// the 16384 slots of a cluster (partition i lands in the i-th P-th of the
// slot space): whatever even split of the slots a cluster's masters have,
// each holds its share of the partitions, and so of the events. A bare
// {prefix:i} would land where CRC16 happens to put it, and 16 partitions
// could leave one of 3 masters with two.

// DefaultPartitions is a Config's Partitions when it names none: enough
// for the events to spread over a cluster of up to 16 masters (each master
// of a 3-master cluster holds 5 or 6), few enough that an idle store costs
// its workers little (see picker).
const DefaultPartitions = 16

// MaxPartitions bounds Config.Partitions.
const MaxPartitions = 1024

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// partitionTags returns the hash tags of n partitions of prefix, each
// "{prefix:i}" or, when that one's slot falls outside the partition's
// share of the slot space, "{prefix:i:s}" with the first s that lands in
// it. The result depends only on prefix and n.
func partitionTags(prefix string, n int) []string {
	tags := make([]string, n)
	for i := range n {
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n
		base := prefix + ":" + strconv.Itoa(i)
		name := base
		for s := 0; ; s++ {
			if sl := int(slot(name)); sl >= lo && sl < hi {
				break
			}
			name = base + ":" + strconv.Itoa(s)
		}
		tags[i] = "{" + name + "}"
	}
	return tags
}

// slot returns the Redis Cluster hash slot of a hash tag's content:
// CRC16 (XMODEM) mod 16384, as Redis computes it.
func slot(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % clusterSlots
}

// partitionOf returns the partition of event id among n: FNV-1a of the id.
func partitionOf(id string, n int) int {
	if n == 1 {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// ErrPartitions reports a store opened with another number of partitions
// than it was created with: its events would be looked for in the wrong
// partitions.
var ErrPartitions = errors.New("store: partitions do not match the store's")

// Check verifies that the store in Redis was created with this store's
// number of partitions, and records that number when the store is new. A
// store created with another number is ErrPartitions; so is one created
// before stores had partitions (its keys under "{prefix}:" only).
func (s *Redis) Check(ctx context.Context) error {
	p := len(s.parts)
	set, err := s.rdb.HSetNX(ctx, s.meta, "partitions", p).Result()
	if err != nil {
		return fmt.Errorf("store: check partitions: %w", err)
	}
	if set {
		// A store of the layout before partitions has no meta key but
		// has its index of recent events under the bare tag.
		old, err := s.rdb.Exists(ctx, "{"+s.prefix+"}:recent", "{"+s.prefix+"}:events").Result()
		if err != nil {
			return fmt.Errorf("store: check partitions: %w", err)
		}
		if old > 0 {
			s.rdb.HDel(ctx, s.meta, "partitions")
			return fmt.Errorf("%w: prefix %q holds a store of the layout before partitions; use another key_prefix (or database) and let the old one drain with the earlier version",
				ErrPartitions, s.prefix)
		}
		return nil
	}
	got, err := s.rdb.HGet(ctx, s.meta, "partitions").Int()
	if err != nil {
		return fmt.Errorf("store: check partitions: %w", err)
	}
	if got != p {
		return fmt.Errorf("%w: prefix %q was created with %d partitions, and this server is configured with %d; set partitions: %d (the number cannot change while the store holds events)",
			ErrPartitions, s.prefix, got, p, got)
	}
	return nil
}

// picker chooses which partitions a claim on one queue looks at, so that
// claims go round the partitions (none starves while another has work)
// and an idle partition costs no round trip of its own.
//
// It remembers, per partition, what the last look at it found: work (the
// claim leased some: claim again directly), or when its first item is due,
// at most idleRecheck ahead (then a peek, one pipelined read for all such
// partitions, says whether to claim). Events this process queues wake
// their partition at once (wake); those of other processes are found by
// the next peek, within idleRecheck.
type picker struct {
	next  []atomic.Int64 // unix ms of partition i's next look; 0: it has work
	first []atomic.Int64 // unix ms when its first item is due, as last seen; 0: empty
	turn  atomic.Uint32  // where the next claim starts
}

// idleRecheck bounds how long a partition is not looked at: work another
// process queues there waits at most that long (plus a worker's poll).
const idleRecheck = 250 * time.Millisecond

func newPicker(n int) *picker {
	return &picker{next: make([]atomic.Int64, n), first: make([]atomic.Int64, n)}
}

// wake marks partition i as having work due now.
func (p *picker) wake(i int) {
	p.next[i].Store(0)
}

// cand is a partition a claim may take from; peek when it must be looked
// at first.
type cand struct {
	part int
	peek bool
}

// due returns the partitions to look at at now, starting at the next
// turn. A partition whose next look lies more than idleRecheck ahead is
// looked at too: the clock went back.
func (p *picker) due(now time.Time) []cand {
	ms := now.UnixMilli()
	n := len(p.next)
	start := int(p.turn.Add(1)) % n
	out := make([]cand, 0, n)
	for j := range n {
		i := (start + j) % n
		switch v := p.next[i].Load(); {
		case v == 0:
			out = append(out, cand{part: i})
		case v <= ms || v > ms+idleRecheck.Milliseconds():
			out = append(out, cand{part: i, peek: true})
		}
	}
	return out
}

// found records what a look at partition i at now found: work (leased),
// or when its first item is due (zero: it is empty).
func (p *picker) found(i int, now time.Time, leased bool, next time.Time) {
	recheck := now.Add(idleRecheck).UnixMilli()
	switch {
	case leased:
		p.next[i].Store(0)
		p.first[i].Store(now.UnixMilli())
	case next.IsZero():
		p.next[i].Store(recheck)
		p.first[i].Store(0)
	default:
		p.next[i].Store(max(min(next.UnixMilli(), recheck), 1))
		p.first[i].Store(next.UnixMilli())
	}
}

// earliest returns when the first item known is due, not before now; zero
// when every partition was empty when last looked at.
func (p *picker) earliest(now time.Time) time.Time {
	first := int64(0)
	for i := range p.next {
		if p.next[i].Load() == 0 {
			return now
		}
		if v := p.first[i].Load(); v > 0 && (first == 0 || v < first) {
			first = v
		}
	}
	if first == 0 {
		return time.Time{}
	}
	return time.UnixMilli(max(first, now.UnixMilli()))
}

// byPartition groups the indexes 0..n-1 of items by the partition of
// their id, in order within each group.
func (s *Redis) byPartition(n int, id func(i int) string) map[int][]int {
	groups := make(map[int][]int)
	for i := range n {
		p := partitionOf(id(i), len(s.parts))
		groups[p] = append(groups[p], i)
	}
	return groups
}

// groupCalls builds the calls of a script that takes its items in groups,
// one per partition (enqueueScript, finishCallbackScript): one call per
// partition on a cluster, where a script stays in one slot, and one call
// for all of them on a single node. A call's arguments are head, the
// number of groups g, g pairs (the partition's key tag, its number of
// items), then the items' own arguments (args appends item i's), group
// after group; its keys are keysOf of each group's partition, in turn.
// order[c] lists the items of call c in that order, parts[c] their
// partitions.
func (s *Redis) groupCalls(script *redis.Script, groups map[int][]int, head []any, keysOf func(k keys) []string, args func(to []any, i int) []any) (calls []scriptCall, order, parts [][]int) {
	type call struct {
		keys  []string
		pairs []any
		idx   []int
		parts []int
	}
	var cs []*call
	for p, idx := range groups {
		if len(cs) == 0 || !s.crossSlot {
			cs = append(cs, &call{})
		}
		c := cs[len(cs)-1]
		k := s.parts[p]
		c.keys = append(c.keys, keysOf(k)...)
		c.pairs = append(c.pairs, k.tag, len(idx))
		c.idx = append(c.idx, idx...)
		for range idx {
			c.parts = append(c.parts, p)
		}
	}
	for _, c := range cs {
		a := make([]any, 0, len(head)+1+len(c.pairs)+6*len(c.idx))
		a = append(a, head...)
		a = append(a, len(c.pairs)/2)
		a = append(a, c.pairs...)
		for _, i := range c.idx {
			a = args(a, i)
		}
		calls = append(calls, scriptCall{script, c.keys, a})
		order = append(order, c.idx)
		parts = append(parts, c.parts)
	}
	return calls, order, parts
}

// scriptCall is one script to run with its keys and arguments.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// runScripts runs calls in one pipeline (one round trip per node), with
// extra commands queued after them, and returns each call's reply in
// order. Scripts go as EVALSHA; one that a node does not have cached
// (NOSCRIPT: a restarted node, a replica promoted since) is sent again,
// alone, as EVAL: only those, so no script runs twice.
func (s *Redis) runScripts(ctx context.Context, calls []scriptCall, extra ...func(redis.Pipeliner)) ([]*redis.Cmd, error) {
	if len(calls) == 1 && len(extra) == 0 {
		c := calls[0]
		cmd := c.script.Run(ctx, s.rdb, c.keys, c.args...)
		return []*redis.Cmd{cmd}, cmd.Err()
	}
	cmds := make([]*redis.Cmd, len(calls))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		for _, f := range extra {
			f(p)
		}
		return nil
	})
	if err == nil || !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return cmds, err
	}
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			c := calls[i]
			cmds[i] = c.script.Eval(ctx, s.rdb, c.keys, c.args...)
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && err != redis.Nil {
			return cmds, err
		}
	}
	return cmds, nil
}

// PartitionKeys returns the names of one per-partition key in every
// partition of a store of prefix with n partitions, such as "events" (the
// event queue), "callbacks", "recent" or "dead" (see keys): for tools that
// read a store's size from outside, such as the benchmark.
func PartitionKeys(prefix string, n int, name string) []string {
	tags := partitionTags(prefix, n)
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t + ":" + name
	}
	return out
}
