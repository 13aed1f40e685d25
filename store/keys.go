package store

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// keys names the keys of one partition of a store (see partition.go). All
// of them share the partition's hash tag {t}, so the multi-key commands and
// scripts on one partition work on Redis Cluster.
//
//	{t}:ev:<id>            string  the event body as accepted (JSON), immutable
//	{t}:st:<id>            string  the event's Record (JSON)
//	{t}:cb:<id>            string  the event's Callback record (JSON)
//	{t}:events             zset    id -> when a worker should look at it next (unix ms):
//	                               queued/retrying: due time; processing: lease deadline
//	{t}:inline             zset    id -> lease deadline of events run in-request by
//	                               handler.NewGinEventHandler (library mode)
//	{t}:events:lease       hash    id -> fencing token of the lease held on the event
//	{t}:events:attempts    hash    id -> attempts started (counted at claim)
//	{t}:callbacks          zset    id -> when its callback is due (or its lease deadline)
//	{t}:callbacks:lease    hash    id -> fencing token of the delivery lease
//	{t}:callbacks:attempts hash    id -> deliveries started
//	{t}:recent             zset    id -> accepted at (unix ms), for listing newest first
//	                               and for retention
//	{t}:dead               zset    id -> when its event or callback failed for good (unix ms)
//	{t}:token              string  counter that issues fencing tokens
//	{t}:callbacks:dest     hash    id -> destination of its callback (scheme://host:port)
//	{t}:events:dest        hash    id -> destination of the forward route of an event in flight
//	{t}:events:waiting     hash    id -> why the due event waits for its destination: "reason|until"
//	{t}:callbacks:waiting  hash    id -> why its due delivery waits: "reason|until (unix ms)"
//	{t}:events:held        hash    id -> when it is to run (unix ms): an event of an ordering
//	                               key held back, out of the queue, until the one before it ends
//
// Keys of the whole store, outside the partitions:
//
//	{prefix}:meta              hash  partitions: the number the store was created with
//	{prefix}:dests             zset  destination -> last time a delivery to it was claimed or deferred
//	{prefix:dest:<d>}          hash  flow state of destination d: open_until, failures,
//	                                 win_start, win_total, win_failed, tokens, tokens_at, paused_until
//	{prefix:dest:<d>}:inflight zset  id -> lease deadline of each delivery to d in flight
//
// A destination's flow state has a hash tag of its own: it is shared by
// the deliveries of every partition, and on a cluster the destinations
// spread over the nodes too.
type keys struct {
	tag string // "{...}"

	events, inline, eventLease, eventAttempts  string
	callbacks, callbackLease, callbackAttempts string
	recent, dead, token                        string
	callbackDest, callbackWaiting              string
	eventDest, eventWaiting                    string
	held                                       string
}

// Infixes of the per-event keys; the scripts build those keys as tag+infix+id.
const (
	infixBody     = ":ev:"
	infixRecord   = ":st:"
	infixCallback = ":cb:"
)

func newKeys(tag string) keys {
	return keys{
		tag:              tag,
		events:           tag + ":events",
		inline:           tag + ":inline",
		eventLease:       tag + ":events:lease",
		eventAttempts:    tag + ":events:attempts",
		callbacks:        tag + ":callbacks",
		callbackLease:    tag + ":callbacks:lease",
		callbackAttempts: tag + ":callbacks:attempts",
		recent:           tag + ":recent",
		dead:             tag + ":dead",
		token:            tag + ":token",
		callbackDest:     tag + ":callbacks:dest",
		callbackWaiting:  tag + ":callbacks:waiting",
		eventDest:        tag + ":events:dest",
		eventWaiting:     tag + ":events:waiting",
		held:             tag + ":events:held",
	}
}

func (k keys) body(id string) string     { return k.tag + infixBody + id }
func (k keys) record(id string) string   { return k.tag + infixRecord + id }
func (k keys) callback(id string) string { return k.tag + infixCallback + id }

// destKey returns the key of destination d's flow state in the store of
// prefix; its in-flight set adds ":inflight". A destination with a brace in
// it (not one of DestinationOf's scheme://host:port) is named by its
// SHA-256.
func destKey(prefix, d string) string {
	if strings.ContainsAny(d, "{}") {
		sum := sha256.Sum256([]byte(d))
		d = "sha256:" + hex.EncodeToString(sum[:])
	}
	return "{" + prefix + ":dest:" + d + "}"
}

// Kinds of queue; queue(kind) names a partition's.
type queueKind int

const (
	kindEvents queueKind = iota
	kindInline
	kindCallbacks
)

// queue describes one leased work queue of a partition: a zset of due
// times, the hash of leases held on its members and the hash of attempts
// started. Its name (QueueEvents, ...) is what an Observer is told.
type queue struct {
	name                 string
	due, lease, attempts string
}

func (k keys) queue(kind queueKind) queue {
	switch kind {
	case kindInline:
		return queue{name: QueueInline, due: k.inline, lease: k.eventLease, attempts: k.eventAttempts}
	case kindCallbacks:
		return queue{name: QueueCallbacks, due: k.callbacks, lease: k.callbackLease, attempts: k.callbackAttempts}
	default:
		return queue{name: QueueEvents, due: k.events, lease: k.eventLease, attempts: k.eventAttempts}
	}
}
