package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// info is one parsed INFO reply: its "key:value" fields and, from the
// commandstats section, the counters of each command.
type info struct {
	fields map[string]string
	cmds   map[string]cmdStat // by command name, "config|resetstat" for subcommands
}

// cmdStat is one cmdstat_ line.
type cmdStat struct {
	Calls, Usec, Rejected, Failed int64
}

// parseInfo parses an INFO reply. Lines of commandstats look like
//
//	cmdstat_set:calls=2,usec=15,usec_per_call=7.50,rejected_calls=0,failed_calls=0
//
// and every other line is "key:value", a "# Section" heading or empty.
func parseInfo(s string) (info, error) {
	in := info{fields: map[string]string{}, cmds: map[string]cmdStat{}}
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return info{}, fmt.Errorf("info: line without ':': %q", line)
		}
		name, isCmd := strings.CutPrefix(key, "cmdstat_")
		if !isCmd {
			in.fields[key] = val
			continue
		}
		var st cmdStat
		for kv := range strings.SplitSeq(val, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return info{}, fmt.Errorf("info: %s: bad counter %q", key, kv)
			}
			var dst *int64
			switch k {
			case "calls":
				dst = &st.Calls
			case "usec":
				dst = &st.Usec
			case "rejected_calls":
				dst = &st.Rejected
			case "failed_calls":
				dst = &st.Failed
			default:
				continue // usec_per_call, and whatever a later Redis adds
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return info{}, fmt.Errorf("info: %s: %s: %w", key, k, err)
			}
			*dst = n
		}
		in.cmds[name] = st
	}
	return in, nil
}

// int returns the integer field key, or 0 when it is absent or not an
// integer.
func (in info) int(key string) int64 {
	n, _ := strconv.ParseInt(in.fields[key], 10, 64)
	return n
}

// commandDelta is the change of the command counters between two INFO
// replies, minus the commands the benchmark sent itself.
type commandDelta struct {
	calls map[string]int64 // by command name; only commands that ran
	reads int64            // total_reads_processed: read events on client sockets
}

// deltaOf returns after - before - own. own holds the commands the
// benchmark itself sent between the two (INFO, ZCARD, ...) and ownReads the
// read events they caused.
func deltaOf(before, after info, own map[string]int64, ownReads int64) commandDelta {
	d := commandDelta{calls: map[string]int64{}}
	for name, a := range after.cmds {
		n := a.Calls - before.cmds[name].Calls - own[name]
		if n > 0 {
			d.calls[name] = n
		}
	}
	d.reads = after.int("total_reads_processed") - before.int("total_reads_processed") - ownReads
	return d
}

// total is the number of commands Redis executed, those run inside scripts
// and transactions included.
func (d commandDelta) total() int64 {
	var n int64
	for _, c := range d.calls {
		n += c
	}
	return n
}

// requestCommands are the commands a client sends itself that stand for a
// whole unit of work: a script call, or the EXEC that runs a MULTI block
// (MULTI, the queued commands and EXEC travel in one pipeline).
var requestCommands = []string{"evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro", "exec"}

// requests is the number of script calls and transactions.
func (d commandDelta) requests() int64 {
	var n int64
	for _, c := range requestCommands {
		n += d.calls[c]
	}
	return n
}

// sorted returns the command names, the most called first.
func (d commandDelta) sorted() []string {
	names := slices.Collect(maps.Keys(d.calls))
	slices.SortFunc(names, func(a, b string) int {
		if d.calls[a] != d.calls[b] {
			return int(d.calls[b] - d.calls[a])
		}
		return strings.Compare(a, b)
	})
	return names
}
