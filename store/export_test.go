package store

import (
	"context"
	"time"
)

// Keys for tests that read or write a store's keys directly.

// RecordKey returns the key of event id's record.
func RecordKey(s *Redis, id string) string { return s.part(id).record(id) }

// EventQueueKey returns the key of the event queue of id's partition.
func EventQueueKey(s *Redis, id string) string { return s.part(id).events }

// PartitionOf returns the partition of event id.
func PartitionOf(s *Redis, id string) int { return partitionOf(id, len(s.parts)) }

// JoinOnly runs the first step of recording an ordered event alone, as a
// process that died before the enqueue script would leave it.
func JoinOnly(s *Redis, now time.Time, ev NewEvent) error {
	return s.join(context.Background(), now, []NewEvent{ev})
}

// SkipAdvance makes Finish and Cancel leave the ordering keys' sequences
// as they are, as a process that died after recording an outcome would.
func SkipAdvance(s *Redis) { s.skipAdvance = true }
