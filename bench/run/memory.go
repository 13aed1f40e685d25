package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// memoryResult is phase e.
type memoryResult struct {
	target      int64 // events wanted in the backlog
	queued      int64 // events accepted when the fill stopped
	fillSeconds float64
	rss, peak   int64 // server VmRSS after the fill, and VmHWM
	redisBytes  int64 // used_memory growth
}

// phaseMemory fills a backlog of queued events that Boomerang cannot work
// off (its route forwards to a target that never answers, so only the
// workers' events are in flight), then reads the server's RSS and Redis's
// memory per event.
func (b *bench) phaseMemory(ctx context.Context) (*memoryResult, error) {
	res := &memoryResult{target: int64(b.opts.memoryEvents)}
	hang, err := newHangTarget()
	if err != nil {
		return nil, err
	}
	defer hang.close()
	// Generous: the fill stops as soon as the backlog is there.
	bound := min(time.Duration(res.target/500)*time.Second+time.Minute, 30*time.Minute)
	b.logf("[e] memory: filling a backlog of %d events (at most %v)", res.target, bound)
	// Pacing off: it would slow the fill to a crawl once the backlog is past
	// its target, which here is at once.
	err = b.withServer(ctx, boomerangName, route{forward: hang.url, timeout: 10 * time.Minute, backlogTarget: -1}, func(srv *server) error {
		mem0, err := b.redis.info(ctx, "memory")
		if err != nil {
			return err
		}
		watch := func(wctx context.Context, lg *child, start time.Time) {
			lastLog := time.Now()
			for wctx.Err() == nil {
				sleep(wctx, 250*time.Millisecond)
				n, err := b.redis.zcard(wctx, keyEvents)
				if err != nil {
					return
				}
				if n[0] >= res.target {
					lg.signal(syscall.SIGINT)
					return
				}
				if time.Since(lastLog) >= 5*time.Second {
					b.logf("[e] %d/%d queued", n[0], res.target)
					lastLog = time.Now()
				}
			}
		}
		spec := loadSpec{conns: b.opts.conns, duration: bound}
		run, err := b.loadgen(ctx, srv, spec, watch)
		if err != nil {
			return err
		}
		res.fillSeconds = run.use.wall.Seconds()
		sleep(ctx, time.Second) // let the last writes and a GC cycle settle
		n, err := b.redis.zcard(ctx, keyRecent)
		if err != nil {
			return err
		}
		res.queued = n[0]
		mem1, err := b.redis.info(ctx, "memory")
		if err != nil {
			return err
		}
		res.redisBytes = mem1.int("used_memory") - mem0.int("used_memory")
		if res.rss, res.peak, err = memory(srv.proc.pid()); err != nil {
			return err
		}
		b.logf("[e] %d queued: server RSS %.1f MiB (peak %.1f MiB), Redis %.0f bytes/event",
			res.queued, mib(res.rss), mib(res.peak), float64(res.redisBytes)/float64(max(res.queued, 1)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, b.redis.reset(ctx)
}

// hangTarget is a forward target that reads requests and never answers.
type hangTarget struct {
	ln  net.Listener
	url string
	wg  sync.WaitGroup

	mu     sync.Mutex // guards conns and closed
	conns  []net.Conn
	closed bool
}

func newHangTarget() (*hangTarget, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("hang target: %w", err)
	}
	h := &hangTarget{ln: ln, url: "http://" + ln.Addr().String() + "/hang"}
	h.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			h.mu.Lock()
			if h.closed {
				h.mu.Unlock()
				c.Close()
				return
			}
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			h.wg.Go(func() { io.Copy(io.Discard, c) }) // until close
		}
	})
	return h, nil
}

// close closes the listener and every connection, and waits for them.
func (h *hangTarget) close() {
	h.ln.Close()
	h.mu.Lock()
	h.closed = true
	for _, c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}
