package main

import (
	"slices"
	"testing"
)

const infoBefore = `# Commandstats
cmdstat_evalsha:calls=10,usec=500,usec_per_call=50.00,rejected_calls=0,failed_calls=1
cmdstat_zadd:calls=20,usec=100,usec_per_call=5.00,rejected_calls=0,failed_calls=0
cmdstat_info:calls=3,usec=90,usec_per_call=30.00,rejected_calls=0,failed_calls=0
cmdstat_config|resetstat:calls=1,usec=80,usec_per_call=80.00,rejected_calls=0,failed_calls=0

# Stats
total_commands_processed:34
total_reads_processed:40
`

const infoAfter = `# Commandstats
cmdstat_evalsha:calls=30,usec=1500,usec_per_call=50.00,rejected_calls=0,failed_calls=1
cmdstat_zadd:calls=60,usec=300,usec_per_call=5.00,rejected_calls=0,failed_calls=0
cmdstat_exec:calls=5,usec=50,usec_per_call=10.00,rejected_calls=0,failed_calls=0
cmdstat_multi:calls=5,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0
cmdstat_info:calls=4,usec=120,usec_per_call=30.00,rejected_calls=0,failed_calls=0
cmdstat_zcard:calls=2,usec=2,usec_per_call=1.00,rejected_calls=0,failed_calls=0
cmdstat_config|resetstat:calls=1,usec=80,usec_per_call=80.00,rejected_calls=0,failed_calls=0

# Stats
total_commands_processed:111
total_reads_processed:70
`

func TestParseInfo(t *testing.T) {
	in, err := parseInfo(infoBefore)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := in.cmds["evalsha"], (cmdStat{Calls: 10, Usec: 500, Failed: 1}); got != want {
		t.Errorf("evalsha: got %+v, want %+v", got, want)
	}
	if got := in.cmds["config|resetstat"].Calls; got != 1 {
		t.Errorf("config|resetstat calls: got %d, want 1", got)
	}
	if got := in.int("total_reads_processed"); got != 40 {
		t.Errorf("total_reads_processed: got %d, want 40", got)
	}
	if got := in.int("absent"); got != 0 {
		t.Errorf("absent field: got %d, want 0", got)
	}
}

func TestParseInfoRejectsGarbage(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"no colon", "garbage\n"},
		{"bad counter", "cmdstat_get:calls\n"},
		{"bad number", "cmdstat_get:calls=x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseInfo(tc.text); err == nil {
				t.Errorf("got no error for %q", tc.text)
			}
		})
	}
}

func TestDeltaTakesOutOwnCommands(t *testing.T) {
	before, err := parseInfo(infoBefore)
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseInfo(infoAfter)
	if err != nil {
		t.Fatal(err)
	}
	// The benchmark sent one INFO and two ZCARD between the snapshots: three
	// round trips.
	d := deltaOf(before, after, map[string]int64{"info": 1, "zcard": 2}, 3)
	want := map[string]int64{"evalsha": 20, "zadd": 40, "exec": 5, "multi": 5}
	if len(d.calls) != len(want) {
		t.Errorf("calls: got %v, want %v", d.calls, want)
	}
	for k, v := range want {
		if d.calls[k] != v {
			t.Errorf("calls[%s]: got %d, want %d", k, d.calls[k], v)
		}
	}
	if got := d.total(); got != 70 {
		t.Errorf("total: got %d, want 70", got)
	}
	if got := d.requests(); got != 25 { // 20 evalsha + 5 exec; multi travels with its exec
		t.Errorf("requests: got %d, want 25", got)
	}
	if got := d.reads; got != 27 {
		t.Errorf("reads: got %d, want 27", got)
	}
	if got, want := d.sorted(), []string{"zadd", "evalsha", "exec", "multi"}; !slices.Equal(got, want) {
		t.Errorf("sorted: got %v, want %v", got, want)
	}
}

func TestSnapshotSinceCountsOwnCommandsBetween(t *testing.T) {
	before, _ := parseInfo(infoBefore)
	after, _ := parseInfo(infoAfter)
	a := snapshot{info: before, own: map[string]int64{"info": 5, "zcard": 10}, ownReads: 15}
	b := snapshot{info: after, own: map[string]int64{"info": 6, "zcard": 12}, ownReads: 18}
	d := b.since(a)
	if d.calls["info"] != 0 || d.calls["zcard"] != 0 {
		t.Errorf("own commands left in the delta: %v", d.calls)
	}
	if d.reads != 27 {
		t.Errorf("reads: got %d, want 27", d.reads)
	}
}
