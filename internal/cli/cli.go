// Package cli is the Boomerang binary: configuration (flags, the
// environment rule, YAML), the engine with its routes, the HTTP server, and
// a graceful shutdown on SIGINT or SIGTERM. cmd/boomerang (what go install
// builds) and cmd/server (its earlier name) both run Main.
//
//	boomerang [--addr ADDR] [--redis-url URL] [--config FILE]
//	boomerang --version
//
// and the operator commands, which talk to a running server's API
// (operator.go):
//
//	boomerang stats | events ls|show | dead-letters ls|retry|redeliver | callbacks redeliver
//
// docs/configuration.md describes the configuration.
package cli

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
	"syscall"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/gin-gonic/gin"
)

// Main runs Boomerang with the command line and environment of the
// process until SIGINT or SIGTERM, and exits 1 on an error.
func Main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if isCommand(os.Args[1:]) {
		if code := command(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); code != 0 {
			os.Exit(code)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			usage(os.Stdout)
			return
		case errors.Is(err, errVersion):
			fmt.Fprintln(os.Stdout, version())
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
	log := newLogger(logw, cfg.LogLevel, cfg.LogFormat)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, cfg, log, ln)
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level)) // validated by loadConfig
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serve runs Boomerang on ln until ctx ends. Then the engine stops claiming
// work and drains it within the shutdown timeout while the API still
// accepts events; then the API stops accepting and finishes the requests in
// flight.
func serve(ctx context.Context, cfg Config, log *slog.Logger, ln net.Listener) error {
	cfg.Engine.Logger = log
	eng, err := newEngine(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer eng.Close()

	if cfg.MetricsAddr != "" {
		msrv, err := serveMetrics(cfg.MetricsAddr, eng.MetricsHandler(), log)
		if err != nil {
			ln.Close()
			return err
		}
		defer msrv.close()
	}

	gin.SetMode(gin.ReleaseMode)
	srv := &http.Server{
		Handler:           eng.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.DebugAddr != "" {
		dbg := debugServer(cfg.DebugAddr, log)
		defer dbg.Close()
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(ln)
		stop() // a server that fails stops the engine too
	}()
	log.Info("boomerang started", "addr", ln.Addr().String(), "routes", len(cfg.Routes))
	runErr := eng.Run(runCtx)

	timeout := eng.Config().ShutdownTimeout
	log.Info("shutting down http", "timeout", timeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown did not finish", "err", err)
	}
	serveErr := <-served
	log.Info("stopped")
	if runErr != nil {
		return runErr
	}
	if !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// newEngine makes the engine of cfg, with its routes: forward and accept
// routes as configured, or every event type accepted when none is.
func newEngine(cfg Config) (*boomerang.Engine, error) {
	eng, err := boomerang.New(cfg.Engine)
	if err != nil {
		return nil, err
	}
	routes := cfg.Routes
	if len(routes) == 0 {
		routes = []Route{{EventType: boomerang.Wildcard, Accept: true}}
	}
	for i, r := range routes {
		opts := []boomerang.HandleOption{boomerang.WithRetry(r.Retry), boomerang.WithCallback(r.Callback)}
		if r.Timeout != 0 {
			opts = append(opts, boomerang.WithTimeout(r.Timeout))
		}
		if r.Accept {
			err = eng.Accept(r.EventType, opts...)
		} else {
			err = eng.Forward(r.EventType, r.Forward, opts...)
		}
		if err != nil {
			eng.Close()
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
	}
	return eng, nil
}

// metricsServer serves GET /metrics on a listener of its own: without API
// keys, so keep it where only the scraper reaches it.
type metricsServer struct {
	srv  *http.Server
	done chan error // Serve's error
	log  *slog.Logger
}

// serveMetrics listens on addr and serves h there at /metrics until close.
func serveMetrics(addr string, h http.Handler, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_addr: listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	m := &metricsServer{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		done: make(chan error, 1),
		log:  log,
	}
	go func() { m.done <- m.srv.Serve(ln) }()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return m, nil
}

// close stops the metrics server and waits for it: a scrape in flight is
// cut, which Prometheus retries at its next interval.
func (m *metricsServer) close() {
	m.srv.Close()
	if err := <-m.done; !errors.Is(err, http.ErrServerClosed) {
		m.log.Error("metrics server failed", "err", err)
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
