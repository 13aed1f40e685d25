// Command limit is the keep-nothing limit server of Boomerang's benchmark:
// what an event server costs when it does the same HTTP work as Boomerang
// and keeps nothing, so the benchmark can say how close Boomerang's
// durable path comes to that limit.
//
//	limit [--addr 127.0.0.1:8071] [--senders 64]
//
// POST /event reads the event JSON with the same framework as Boomerang
// (Gin, encoding/json), answers 202 {"status":"accepted","event_id":ID} and
// hands the callback to a pool of --senders goroutines, which POST it once
// to success_url over keep-alive connections (one pooled connection per
// sender at most). Nothing is written anywhere: a callback still queued in
// memory when the process dies is lost, and a failed one is not retried.
// That is the point: it is the cost of parsing, answering and calling back,
// the floor under any durable server doing the same.
//
// Only loopback callback URLs are dialled: the benchmark stays on this
// machine.
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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "limit:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then stops accepting, lets requests in flight
// finish and gives the queued callbacks a few seconds to go out.
func run(ctx context.Context, args []string, logw io.Writer) error {
	fs := flag.NewFlagSet("limit", flag.ContinueOnError)
	fs.SetOutput(logw)
	addr := fs.String("addr", "127.0.0.1:8071", "listen address")
	senders := fs.Int("senders", 64, "callback sender goroutines (and keep-alive connections)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *senders < 1 || *senders > 4096 {
		return fmt.Errorf("--senders must be 1..4096, got %d", *senders)
	}
	log := slog.New(slog.NewTextHandler(logw, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s := newServer(newCallbackClient(*senders), *senders)
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Info("limit listening", "addr", ln.Addr().String(), "senders", *senders)

	sendCtx, stopSending := context.WithCancel(context.Background())
	defer stopSending()
	sent := make(chan struct{})
	go func() { s.send(sendCtx); close(sent) }()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc // ErrServerClosed
	s.close()
	select {
	case <-sent:
	case <-time.After(5 * time.Second):
		stopSending()
		<-sent
	}
	log.Info("limit stopped", "callbacks_sent", s.sent.Load(), "callbacks_failed", s.failed.Load(), "refused_full", s.full.Load())
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
