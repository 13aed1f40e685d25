package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/boomerang-events/boomerang/internal/loopback"
)

// Modes of load.
const (
	modeClosed = "closed" // Conns connections, each sending as soon as the last answer came
	modeRate   = "rate"   // Rate requests per second on a fixed schedule
)

// Config is one load run. The zero value is not usable: parseFlags fills in
// the defaults and validate checks it.
type Config struct {
	// URL is the server's base URL; requests go to URL + "/event". Its host
	// must be a loopback address or "localhost". Default http://127.0.0.1:8080.
	URL string
	// Mode is "closed" or "rate". Default closed.
	Mode string
	// Conns is the number of concurrent senders in closed mode. Default 128.
	Conns int
	// Rate is the arrival rate in rate mode, in requests per second.
	Rate float64
	// MaxInFlight caps the requests in flight in rate mode; a request due
	// while the cap is reached is dropped and counted. Default 4096.
	MaxInFlight int
	// Duration is the measured part of the run. Default 10s.
	Duration time.Duration
	// Warmup is sent before Duration and not measured. Default 1s.
	Warmup time.Duration
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration
	// PayloadBytes is the approximate size of each event's payload object.
	// Default 200.
	PayloadBytes int
	// EventType is every event's event_type. Default bench_event.
	EventType string
	// Callbacks makes every event carry callback URLs on a receiver the
	// run starts, and measures the delay from 202 to callback.
	Callbacks bool
	// ReceiverAddr is where the callback receiver listens; a loopback
	// address. Default 127.0.0.1 on a free port.
	ReceiverAddr string
	// Drain is how long to wait for outstanding callbacks after the load
	// ends. Default 30s.
	Drain time.Duration
	// Progress, when not nil, gets a progress line every second.
	Progress io.Writer
}

// Bounds that keep every loop finite whatever the flags say.
const (
	maxConns    = 100_000
	maxRate     = 1_000_000
	maxDuration = 24 * time.Hour
	maxPayload  = 1 << 20
)

// parseFlags reads the command line into a Config with defaults, and
// validates it. jsonOut reports --json.
func parseFlags(args []string, out io.Writer) (cfg Config, jsonOut bool, err error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: loadgen [flags]  (sends POST <url>/event to a loopback server)")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "base URL of the server (loopback only); requests go to <url>/event")
	fs.StringVar(&cfg.Mode, "mode", modeClosed, "closed (--conns senders back to back) or rate (--rate requests/s on a fixed schedule)")
	fs.IntVar(&cfg.Conns, "conns", 128, "concurrent connections in closed mode")
	fs.Float64Var(&cfg.Rate, "rate", 0, "requests per second in rate mode")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 4096, "rate mode: most requests in flight; a request due beyond it is dropped and counted")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured load before --duration")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.IntVar(&cfg.PayloadBytes, "payload-bytes", 200, "approximate size of each event's payload object")
	fs.StringVar(&cfg.EventType, "event-type", "bench_event", "event_type of every event")
	fs.BoolVar(&cfg.Callbacks, "callbacks", false, "receive the callbacks and measure accept-to-callback delay")
	fs.StringVar(&cfg.ReceiverAddr, "receiver-addr", "127.0.0.1:0", "listen address of the callback receiver (loopback only)")
	fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "how long to wait for outstanding callbacks after the load")
	fs.BoolVar(&jsonOut, "json", false, "print the result as one JSON object on stdout")
	if err := fs.Parse(args); err != nil {
		return Config{}, false, err
	}
	if fs.NArg() > 0 {
		return Config{}, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := cfg.validate(); err != nil {
		return Config{}, false, err
	}
	return cfg, jsonOut, nil
}

// validate checks the ranges and that all traffic stays on loopback.
func (c *Config) validate() error {
	if err := checkLoopbackURL(c.URL); err != nil {
		return err
	}
	switch c.Mode {
	case modeClosed:
		if c.Conns < 1 || c.Conns > maxConns {
			return fmt.Errorf("--conns must be 1..%d, got %d", maxConns, c.Conns)
		}
	case modeRate:
		if !(c.Rate > 0 && c.Rate <= maxRate) {
			return fmt.Errorf("--rate must be > 0 and <= %d in rate mode, got %v", maxRate, c.Rate)
		}
		if c.MaxInFlight < 1 || c.MaxInFlight > maxConns {
			return fmt.Errorf("--max-inflight must be 1..%d, got %d", maxConns, c.MaxInFlight)
		}
	default:
		return fmt.Errorf("--mode must be %s or %s, got %q", modeClosed, modeRate, c.Mode)
	}
	if c.Duration <= 0 || c.Duration > maxDuration {
		return fmt.Errorf("--duration must be > 0 and <= %v, got %v", maxDuration, c.Duration)
	}
	if c.Warmup < 0 || c.Warmup > maxDuration {
		return fmt.Errorf("--warmup must be 0..%v, got %v", maxDuration, c.Warmup)
	}
	if c.Timeout <= 0 || c.Timeout > time.Hour {
		return fmt.Errorf("--timeout must be > 0 and <= 1h, got %v", c.Timeout)
	}
	if c.PayloadBytes < 0 || c.PayloadBytes > maxPayload {
		return fmt.Errorf("--payload-bytes must be 0..%d, got %d", maxPayload, c.PayloadBytes)
	}
	if c.EventType == "" {
		return errors.New("--event-type must not be empty")
	}
	if c.Callbacks {
		if err := checkLoopbackAddr(c.ReceiverAddr); err != nil {
			return fmt.Errorf("--receiver-addr: %w", err)
		}
		if c.Drain < 0 || c.Drain > maxDuration {
			return fmt.Errorf("--drain must be 0..%v, got %v", maxDuration, c.Drain)
		}
	}
	return nil
}

// checkLoopbackURL accepts only http(s) URLs whose host is "localhost" or a
// loopback IP address.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("--url must be http:// or https://, got %q", raw)
	}
	if !loopback.IsHost(u.Hostname()) {
		return fmt.Errorf("--url: host %q is not a loopback address or localhost; loadgen only sends to this machine", u.Hostname())
	}
	return nil
}

// checkLoopbackAddr accepts host:port listen addresses on loopback.
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if !loopback.IsHost(host) {
		return fmt.Errorf("host %q is not a loopback address or localhost", host)
	}
	return nil
}
