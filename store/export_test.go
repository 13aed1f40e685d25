package store

// Keys for tests that read or write a store's keys directly.

// RecordKey returns the key of event id's record.
func RecordKey(s *Redis, id string) string { return s.part(id).record(id) }

// EventQueueKey returns the key of the event queue of id's partition.
func EventQueueKey(s *Redis, id string) string { return s.part(id).events }

// PartitionOf returns the partition of event id.
func PartitionOf(s *Redis, id string) int { return partitionOf(id, len(s.parts)) }
