// Command loadgen sends POST /event load to a Boomerang server (or the
// bench/baseline server) on this machine and reports throughput, latency
// and, with --callbacks, the delay from 202 to callback.
//
//	loadgen --url http://127.0.0.1:8080 --mode closed --conns 128 --duration 10s
//	loadgen --url http://127.0.0.1:8080 --mode rate --rate 5000 --duration 10s --callbacks --json
//
// In closed mode --conns senders each send the next event as soon as the
// last was answered; latency runs from the send. In rate mode event i is
// due at start + i/rate and latency runs from that scheduled time, not from
// when a sender got to it, so a slow server is charged for the queue it
// builds (no coordinated omission). Only loopback URLs are accepted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, jsonOut, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	cfg.Progress = os.Stderr
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	warn(os.Stderr, res)
	if jsonOut {
		enc := json.NewEncoder(os.Stdout)
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	report(os.Stdout, res)
}

// warn prints what makes a run's numbers suspect, loudly.
func warn(w io.Writer, res Result) {
	if res.Interrupted {
		fmt.Fprintln(w, "WARNING: interrupted; the result covers only the time measured")
	}
	if res.Dropped > 0 {
		fmt.Fprintf(w, "WARNING: %d requests DROPPED: %d were in flight when they were due; the server (or loadgen) cannot sustain %.0f req/s, and latencies understate it\n",
			res.Dropped, res.MaxInFlight, res.Rate)
	}
	if res.SendLag != nil && res.SendLag.P99 > 10 {
		fmt.Fprintf(w, "WARNING: loadgen sent requests late (send lag p99 %.1fms): it may be CPU-bound itself\n", res.SendLag.P99)
	}
	if cb := res.Callbacks; cb != nil {
		if cb.Lost > 0 {
			fmt.Fprintf(w, "WARNING: %d of %d accepted events got no callback within the drain\n", cb.Lost, cb.Accepted)
		}
		if cb.Duplicates > 0 {
			fmt.Fprintf(w, "WARNING: %d duplicate callbacks\n", cb.Duplicates)
		}
	}
}

// report prints the result for a person.
func report(w io.Writer, res Result) {
	load := fmt.Sprintf("closed, %d conns", res.Conns)
	if res.Mode == modeRate {
		load = fmt.Sprintf("rate %.0f/s, max %d in flight", res.Rate, res.MaxInFlight)
	}
	fmt.Fprintf(w, "loadgen  %s/event  %s  %.1fs measured after %.1fs warmup, payload ~%d B\n",
		res.URL, load, res.DurationSeconds, res.WarmupSeconds, res.PayloadBytes)
	fmt.Fprintf(w, "requests   sent %d  2xx %d  non-2xx %v  transport errors %d  dropped %d\n",
		res.Sent, res.OK, res.Non2xx, res.TransportErrors, res.Dropped)
	for msg, n := range res.ErrorSamples {
		fmt.Fprintf(w, "           %6d x %s\n", n, msg)
	}
	fmt.Fprintf(w, "throughput %.1f req/s  (peak in flight %d)\n", res.AchievedRPS, res.PeakInFlight)
	fmt.Fprintf(w, "latency    %s\n", formatSummary(res.Latency))
	if res.SendLag != nil {
		fmt.Fprintf(w, "send lag   %s\n", formatSummary(*res.SendLag))
	}
	if cb := res.Callbacks; cb != nil {
		fmt.Fprintf(w, "callbacks  accepted %d  received %d  lost %d  duplicates %d  unmatched %d  malformed %d  statuses %v\n",
			cb.Accepted, cb.Received, cb.Lost, cb.Duplicates, cb.Unmatched, cb.Malformed, cb.Statuses)
		fmt.Fprintf(w, "end to end %.1f events/s sustained (last callback %.2fs after the load)\n", cb.SustainedEPS, cb.TailSeconds)
		fmt.Fprintf(w, "delay      %s\n", formatSummary(cb.Delay))
	}
}

func formatSummary(s Summary) string {
	return fmt.Sprintf("p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms  mean %.3fms  (n=%d)",
		s.P50, s.P90, s.P99, s.P999, s.Max, s.Mean, s.Count)
}
