// Command server runs Boomerang: the HTTP API, the event workers and the
// callback dispatcher, on one Redis shared by any number of instances.
//
//	server [--addr ADDR] [--redis-url URL] [--config FILE]
//
// docs/configuration.md describes the configuration.
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
	"net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(os.Stdout)
			return
		}
		fmt.Fprintln(os.Stderr, "boomerang:", err)
		os.Exit(1)
	}
}

// run loads the configuration, listens, and serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, logw io.Writer) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(logw, cfg.LogLevel)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, cfg, log, ln)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level)) // validated by loadConfig
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// serve runs Boomerang on ln until ctx ends, then shuts down gracefully:
// stop accepting, let in-flight requests and events finish within
// cfg.ShutdownTimeout, and give what is left back to the queue in Redis.
func serve(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener) error {
	conn, err := store.Open(cfg.RedisURL)
	if err != nil {
		ln.Close()
		return err
	}
	defer conn.Close()
	if conn.Embedded {
		log.Warn("no redis_url configured: using an embedded in-memory Redis; everything is lost at exit")
	}
	st, err := store.New(conn, store.Config{Prefix: cfg.KeyPrefix, Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	if err := st.Ping(ctx); err != nil {
		log.Warn("redis does not answer yet; events get 503 until it does", "err", err)
	}

	dispatcher, err := callback.NewDispatcher(st, callback.Config{
		Workers: cfg.Callback.Workers, Timeout: cfg.Callback.Timeout, Retry: cfg.Callback.Retry,
		AllowPrivateNetworks: cfg.Callback.AllowPrivateNetworks, SigningSecrets: cfg.Callback.SigningSecrets,
		Lease: cfg.Lease, DrainTimeout: cfg.ShutdownTimeout, Logger: log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	routes := buildRoutes(cfg)
	proc, err := handler.NewProcessor(st, routes, handler.ProcessorConfig{
		Workers: cfg.Workers, Retry: cfg.Retry, Lease: cfg.Lease, DrainTimeout: cfg.ShutdownTimeout,
		OnCallback: dispatcher.Notify, Logger: log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	api := handler.NewServer(st, handler.ServerConfig{
		MaxBodyBytes: cfg.MaxBodyBytes, AllowPrivateCallbacks: cfg.Callback.AllowPrivateNetworks,
		OnEnqueue: proc.Notify, OnRedeliver: dispatcher.Notify, Logger: log,
		APIKeys: cfg.Auth.APIKeys, AdminKeys: cfg.Auth.AdminKeys, BacklogTarget: cfg.BacklogTarget,
	})
	defer api.Close()

	gin.SetMode(gin.ReleaseMode)
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	// The workers outlive ctx: they stop after the HTTP server, and drain.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var workers sync.WaitGroup
	workers.Go(func() { proc.Run(work) })
	workers.Go(func() { dispatcher.Run(work) })
	workers.Go(func() { sweep(work, st, cfg.Retention, log) })

	if cfg.DebugAddr != "" {
		dbg := debugServer(cfg.DebugAddr, log)
		defer dbg.Close()
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	redisName := "external"
	if conn.Embedded {
		redisName = "embedded"
	}
	log.Info("boomerang started", "addr", ln.Addr().String(), "redis", redisName, "key_prefix", cfg.KeyPrefix,
		"workers", cfg.Workers, "routes", len(routes), "auth", len(cfg.Auth.APIKeys) > 0,
		"signed_callbacks", len(cfg.Callback.SigningSecrets) > 0, "retention", cfg.Retention)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	// Requests in flight and running events drain side by side, each
	// within the timeout; events left are given back to the queue.
	stopWork()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown did not finish", "err", err)
	}
	api.Close()
	workers.Wait()
	log.Info("stopped")
	if errors.Is(serveErr, http.ErrServerClosed) {
		return nil
	}
	return serveErr
}

// buildRoutes turns the configured routes into the processor's. With none
// configured, every event type is accepted.
func buildRoutes(cfg Config) []handler.Route {
	if len(cfg.Routes) == 0 {
		return []handler.Route{{EventType: "*", Logic: handler.Accept(), Retry: cfg.Retry}}
	}
	client := forwardPolicy.Client(0)
	routes := make([]handler.Route, len(cfg.Routes))
	for i, r := range cfg.Routes {
		rt := handler.Route{EventType: r.EventType, Retry: r.Retry}
		switch {
		case r.Accept:
			rt.Logic = handler.Accept()
		default:
			rt.Logic, rt.Timeout = handler.Forward(r.Forward, client), r.Timeout
		}
		routes[i] = rt
	}
	return routes
}

// sweep deletes settled events older than retention, every minute (or
// sooner for short retentions), until ctx ends.
func sweep(ctx context.Context, st *store.Redis, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(min(time.Minute, retention/10))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for range 100 { // bounded: at most 100 batches a tick
			n, err := st.Sweep(ctx, time.Now(), retention)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("retention sweep failed", "err", err)
				}
				break
			}
			if n > 0 {
				log.Info("retention: deleted settled events", "deleted", n)
			}
			if n == 0 {
				break
			}
		}
	}
}

// debugServer serves the runtime profiles (net/http/pprof) on addr, apart
// from the API so they are never exposed with it.
func debugServer(addr string, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug server failed", "addr", addr, "err", err)
		}
	}()
	log.Info("serving profiles", "addr", addr)
	return srv
}
