// Package batch groups concurrent calls into batches (group commit), so that
// many requests share one Redis round trip.
//
// A Committer has a few flushers. One at a time collects a batch: it takes
// the first waiting item, then every item that arrives within Linger (or
// only those already waiting, without Linger), up to MaxBatch, and flushes
// them in one call while the next flusher collects. Under load batches grow
// both with Linger and while flushes are in flight.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("batch: committer closed")

// FlushFunc commits items in one call. It returns one result per item, or an
// error that fails them all. items is reused after it returns: do not keep it.
type FlushFunc[T, R any] func(ctx context.Context, items []T) ([]R, error)

// Config tunes a Committer. The zero value works.
type Config struct {
	// MaxBatch is the most items one flush takes. Default 128.
	MaxBatch int
	// Flushers is the number of flushes that may be in flight at once.
	// Default 4.
	Flushers int
	// Timeout bounds one flush. Default 5s.
	Timeout time.Duration
	// Linger is how long a batch waits for more items after its first,
	// unless it fills up first. Default 0: take only the items already
	// waiting.
	Linger time.Duration
}

// Committer batches Submit calls into calls of a FlushFunc.
type Committer[T, R any] struct {
	flush   FlushFunc[T, R]
	cfg     Config
	reqs    chan request[T, R]
	collect chan struct{} // held by the flusher collecting a batch
	stop    chan struct{}
	once    sync.Once // closes stop
	started sync.Once // starts the flushers
	wg      sync.WaitGroup
}

type request[T, R any] struct {
	item T
	done chan result[R] // buffered: the flusher never waits for the submitter
}

type result[R any] struct {
	val R
	err error
}

// New returns a Committer that flushes with flush. Its flushers start with
// the first Submit; Close stops them.
func New[T, R any](flush FlushFunc[T, R], cfg Config) *Committer[T, R] {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 128
	}
	if cfg.Flushers <= 0 {
		cfg.Flushers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Committer[T, R]{flush: flush, cfg: cfg, reqs: make(chan request[T, R]), collect: make(chan struct{}, 1), stop: make(chan struct{})}
}

// start starts the flushers, once, unless the Committer is closed.
func (c *Committer[T, R]) start() {
	c.started.Do(func() {
		select {
		case <-c.stop:
			return
		default:
		}
		c.wg.Add(c.cfg.Flushers)
		for range c.cfg.Flushers {
			go c.run()
		}
	})
}

// Submit adds item to the next batch and waits for its result. If ctx ends
// first, Submit returns ctx's error; the item may still be committed.
func (c *Committer[T, R]) Submit(ctx context.Context, item T) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	c.start()
	req := request[T, R]{item: item, done: make(chan result[R], 1)}
	select {
	case c.reqs <- req:
	case <-c.stop:
		return zero, ErrClosed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.val, res.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Close stops taking items, lets the flushes in flight end, and returns.
func (c *Committer[T, R]) Close() {
	c.once.Do(func() { close(c.stop) })
	c.started.Do(func() {}) // never start after this; wait for a start under way
	c.wg.Wait()
}

func (c *Committer[T, R]) run() {
	defer c.wg.Done()
	reqs := make([]request[T, R], 0, c.cfg.MaxBatch)
	items := make([]T, 0, c.cfg.MaxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		reqs, items = reqs[:0], items[:0]
		select {
		case c.collect <- struct{}{}:
		case <-c.stop:
			return
		}
		select {
		case r := <-c.reqs:
			reqs = append(reqs, r)
		case <-c.stop:
			<-c.collect
			return
		}
		reqs = c.gather(reqs, linger)
		<-c.collect // the next flusher collects while this one flushes
		for _, r := range reqs {
			items = append(items, r.item)
		}
		c.commit(reqs, items)
	}
}

// gather adds to reqs the items that arrive within Linger, or those
// already waiting, up to MaxBatch.
func (c *Committer[T, R]) gather(reqs []request[T, R], linger *time.Timer) []request[T, R] {
	if c.cfg.Linger <= 0 {
		for len(reqs) < c.cfg.MaxBatch {
			select {
			case r := <-c.reqs:
				reqs = append(reqs, r)
			default:
				return reqs
			}
		}
		return reqs
	}
	linger.Reset(c.cfg.Linger)
	defer linger.Stop()
	for len(reqs) < c.cfg.MaxBatch {
		select {
		case r := <-c.reqs:
			reqs = append(reqs, r)
		case <-linger.C:
			return reqs
		case <-c.stop:
			return reqs
		}
	}
	return reqs
}

func (c *Committer[T, R]) commit(reqs []request[T, R], items []T) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	vals, err := c.safeFlush(ctx, items)
	if err == nil && len(vals) != len(items) {
		err = fmt.Errorf("batch: flush returned %d results for %d items", len(vals), len(items))
	}
	for i, r := range reqs {
		if err != nil {
			r.done <- result[R]{err: err}
			continue
		}
		r.done <- result[R]{val: vals[i]}
	}
}

// safeFlush calls the flush func, turning a panic into an error of the batch.
func (c *Committer[T, R]) safeFlush(ctx context.Context, items []T) (vals []R, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("batch: flush panicked: %v", r)
		}
	}()
	return c.flush(ctx, items)
}
