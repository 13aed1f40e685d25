// Command baseline is the "physical limit" server for Boomerang's
// benchmarks: a Gin POST /event that parses the event as Boomerang does and
// then makes exactly one pipelined Redis round trip (SET the body, ZADD the
// id to a queue) before it answers 202. Nothing runs the queued events and
// no callbacks are sent; it measures what one round trip per request costs.
//
//	baseline [--addr 127.0.0.1:8090] [--redis-url redis://127.0.0.1:6379/0] [--prefix bench] [--pool-size N]
//
// Keys are {PREFIX}:ev:ID (the body) and {PREFIX}:q (a sorted set of ids
// scored by the accept time in Unix milliseconds). Nothing expires them:
// delete them after a run with
//
//	redis-cli --scan --pattern '{PREFIX}:*' | xargs -r redis-cli del
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	addr     string
	redisURL string
	prefix   string
	poolSize int
}

func parseFlags(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "listen address")
	fs.StringVar(&c.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL (redis://, rediss:// or unix://)")
	fs.StringVar(&c.prefix, "prefix", "bench", "key prefix: keys are {PREFIX}:ev:ID and {PREFIX}:q")
	fs.IntVar(&c.poolSize, "pool-size", 0, "go-redis PoolSize; 0 keeps its default (10 x GOMAXPROCS)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.prefix == "" {
		return config{}, errors.New("--prefix must not be empty")
	}
	if c.poolSize < 0 {
		return config{}, errors.New("--pool-size must be >= 0")
	}
	return c, nil
}

// run serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, logw io.Writer) error {
	cfg, err := parseFlags(args, logw)
	if err != nil {
		return err
	}
	rdb, err := openRedis(cfg.redisURL, cfg.poolSize)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log := slog.New(slog.NewTextHandler(logw, nil))
	log.Info("baseline listening", "addr", ln.Addr().String(), "prefix", cfg.prefix)
	return serve(ctx, ln, newHandler(rdb, cfg.prefix))
}

// openRedis makes a client with the timeouts Boomerang's store.Open uses, so
// that the two servers are compared on the same footing.
func openRedis(url string, poolSize int) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, errors.New("redis url: cannot parse it") // the URL may hold a password
	}
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 3 * time.Second
	opts.WriteTimeout = 3 * time.Second
	opts.DisableIdentity = true
	if poolSize > 0 {
		opts.PoolSize = poolSize
	}
	return redis.NewClient(opts), nil
}

// shutdownTimeout bounds the wait for in-flight requests at shutdown.
const shutdownTimeout = 10 * time.Second

// serve runs h on ln until ctx ends, then stops accepting and lets in-flight
// requests finish within shutdownTimeout.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
