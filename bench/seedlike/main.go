// Command seedlike is the comparison server of Boomerang's end-to-end
// benchmark. It is seed-like: a re-implementation of the original handler's
// documented callback behaviour, because the original module is not
// reachable from this machine (the module proxy answers 403).
//
//	seedlike [--addr 127.0.0.1:8070]
//
// POST /event decodes the original event JSON, runs a no-op business
// function, answers at once and sends the callback from a fire-and-forget
// goroutine: one POST to success_url with an http.Client whose Timeout is 2s
// and whose Transport disables keep-alives (a new TCP connection per
// callback), never retried. There is no Redis and no state: a callback that
// times out or fails is lost.
//
// Two deviations from the original, both so that cmd/loadgen can count the
// callbacks, neither of which makes the server slower:
//   - the original sent the callback as a GET without a body; this sends a
//     POST whose JSON body is {"event_id": <the event's id field>}, which is
//     what loadgen's receiver matches callbacks by;
//   - the original answered 200 {"status":"success"}; this answers
//     202 {"status":"success","event_id":ID}, because loadgen counts an event
//     as accepted only from a 202 naming its event_id.
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
		fmt.Fprintln(os.Stderr, "seedlike:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down: it stops accepting, lets
// requests in flight finish, and gives the callbacks in flight up to their
// own 2s timeout.
func run(ctx context.Context, args []string, logw io.Writer) error {
	fs := flag.NewFlagSet("seedlike", flag.ContinueOnError)
	fs.SetOutput(logw)
	addr := fs.String("addr", "127.0.0.1:8070", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	log := slog.New(slog.NewTextHandler(logw, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s := newServer(newCallbackClient())
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Info("seedlike listening", "addr", ln.Addr().String())

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
	s.wait(callbackTimeout + time.Second)
	sent, failed := s.sent.Load(), s.failed.Load()
	log.Info("seedlike stopped", "callbacks_sent", sent, "callbacks_failed", failed)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
