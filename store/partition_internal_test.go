package store

import (
	"testing"
	"time"
)

// The slot function is Redis Cluster's: the example of the cluster
// specification, and the slots redis-cli reports for two keys.
func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint16
	}{
		{"123456789", 0x31C3 % clusterSlots}, // CRC16/XMODEM check value
		{"foo", 12182},
		{"bar", 5061},
	} {
		if got := slot(tc.key); got != tc.want {
			t.Errorf("slot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

// Each partition's tag lands in its own share of the slot space, the same
// for a prefix every time, and the tags differ.
func TestPartitionTagsSpreadOverSlots(t *testing.T) {
	for _, n := range []int{1, 3, 16, 64, MaxPartitions} {
		tags := partitionTags("boomerang", n)
		if len(tags) != n {
			t.Fatalf("n=%d: got %d tags", n, len(tags))
		}
		seen := map[string]bool{}
		for i, tag := range tags {
			inner := tag[1 : len(tag)-1]
			lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n
			if sl := int(slot(inner)); sl < lo || sl >= hi {
				t.Errorf("n=%d: %s has slot %d, want in [%d, %d)", n, tag, sl, lo, hi)
			}
			if seen[tag] {
				t.Errorf("n=%d: %s twice", n, tag)
			}
			seen[tag] = true
		}
		if again := partitionTags("boomerang", n); again[n-1] != tags[n-1] {
			t.Errorf("n=%d: tags differ between calls: %s, %s", n, again[n-1], tags[n-1])
		}
	}
	if got := partitionTags("boomerang", 16)[0]; got != "{boomerang:0}" && got[:13] != "{boomerang:0:" {
		t.Errorf("first tag: got %s, want {boomerang:0} or {boomerang:0:<n>}", got)
	}
}

// Ids spread evenly over the partitions.
func TestPartitionOfSpreadsIDs(t *testing.T) {
	const n, ids = 16, 16000
	counts := make([]int, n)
	for i := range ids {
		counts[partitionOf("evt-"+time.Duration(i).String(), n)]++
	}
	for p, c := range counts {
		if c < ids/n*8/10 || c > ids/n*12/10 {
			t.Errorf("partition %d holds %d of %d ids, want within 20%% of %d", p, c, ids, ids/n)
		}
	}
}

// The picker skips a partition found empty until idleRecheck has passed,
// claims directly from one that had work, and looks again when the clock
// goes back.
func TestPicker(t *testing.T) {
	p := newPicker(4)
	now := time.UnixMilli(1_000_000)
	if got := p.due(now); len(got) != 4 || got[0].peek {
		t.Fatalf("fresh: got %+v, want every partition, claimed directly", got)
	}
	for i := range 4 {
		p.found(i, now, false, time.Time{})
	}
	p.found(2, now, true, time.Time{})
	if got := p.due(now.Add(time.Millisecond)); len(got) != 1 || got[0].part != 2 || got[0].peek {
		t.Errorf("after looking: got %+v, want only partition 2, which had work", got)
	}
	if got := p.due(now.Add(idleRecheck)); len(got) != 4 {
		t.Errorf("after idleRecheck: got %+v, want all 4", got)
	}
	if got := p.due(now.Add(-time.Hour)); len(got) != 4 {
		t.Errorf("clock gone back: got %+v, want all 4", got)
	}
	p.found(2, now, false, now.Add(time.Hour))
	if got := p.earliest(now); !got.IsZero() && !got.Equal(now.Add(time.Hour)) {
		t.Errorf("earliest: got %v, want the one item known, in an hour", got)
	}
	p.wake(1)
	if got := p.earliest(now); !got.Equal(now) {
		t.Errorf("earliest after a wake: got %v, want now", got)
	}
}
