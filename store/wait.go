package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrTooManyWaiters is Waiters.Wait's answer when the process has as many
// waiters as it allows, or its waiters are closed.
var ErrTooManyWaiters = errors.New("store: too many requests waiting for events")

// Waiters lets requests wait for events to end. An event's end (the finish
// script's terminal outcome, a cancel) is published on a channel of its own
// (doneChannel); a process subscribes one Redis connection to the channels
// of the events its requests wait for, so a request on one instance learns
// of an outcome recorded by another. Nothing is published to a channel
// nobody listens to but the PUBLISH itself.
//
// The connection and the goroutine that reads it start with the first
// waiter and stop with Close.
type Waiters struct {
	s           *Redis
	max         int
	readTimeout time.Duration

	subMu   sync.Mutex // orders the SUBSCRIBE and UNSUBSCRIBE commands (resubscribe)
	mu      sync.Mutex // guards what follows; never held across I/O
	ps      *redis.PubSub
	waiting map[string]*channelWaiters // by channel
	n       int
	closed  bool
	done    chan struct{} // closed when the reader returns
}

// channelWaiters are the requests waiting on one channel.
type channelWaiters struct {
	subscribed chan struct{} // closed when Redis confirmed the subscription
	ended      chan struct{} // closed when the event's end was published
	n          int
}

// NewWaiters returns the waiters of s: at most max requests wait at once,
// and each read of an event's record takes at most readTimeout.
func (s *Redis) NewWaiters(max int, readTimeout time.Duration) *Waiters {
	return &Waiters{s: s, max: max, readTimeout: readTimeout, waiting: map[string]*channelWaiters{}}
}

// get reads id's snapshot within readTimeout, even after ctx ended.
func (w *Waiters) get(ctx context.Context, id string) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.readTimeout)
	defer cancel()
	return w.s.Get(ctx, id)
}

// Wait returns event id's snapshot once it is terminal, or when ctx ends
// (not an error then: the snapshot is the latest, whatever its status).
// Only an unknown id (ErrNotFound), a store error, or ErrTooManyWaiters
// when max requests already wait, are errors.
func (w *Waiters) Wait(ctx context.Context, id string) (Snapshot, error) {
	cw, err := w.add(ctx, id)
	if err != nil {
		return Snapshot{}, err
	}
	defer w.remove(id)
	// Subscribed before reading: an end published after the read is seen.
	// A confirmation that does not come within readTimeout (Redis is not
	// answering) does not hold the request: the read then says whether
	// Redis answers at all.
	confirm := time.NewTimer(w.readTimeout)
	select {
	case <-cw.subscribed:
	case <-confirm.C:
	case <-ctx.Done():
	}
	confirm.Stop()
	snap, err := w.get(ctx, id)
	if err != nil || snap.Record.Status.Terminal() || ctx.Err() != nil {
		return snap, err
	}
	select {
	case <-cw.ended:
	case <-ctx.Done():
	}
	return w.get(ctx, id)
}

func (w *Waiters) add(ctx context.Context, id string) (*channelWaiters, error) {
	ch := w.s.doneChannel(id)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, fmt.Errorf("%w: shutting down", ErrTooManyWaiters)
	}
	if w.n >= w.max {
		w.mu.Unlock()
		return nil, ErrTooManyWaiters
	}
	if w.ps == nil {
		w.ps = w.s.rdb.Subscribe(context.WithoutCancel(ctx)) // no channel yet: no I/O
		w.done = make(chan struct{})
		go w.read(w.ps.ChannelWithSubscriptions())
	}
	cw := w.waiting[ch]
	first := cw == nil
	if first {
		cw = &channelWaiters{subscribed: make(chan struct{}), ended: make(chan struct{})}
		w.waiting[ch] = cw
	}
	cw.n++
	w.n++
	w.mu.Unlock()
	if first {
		if err := w.resubscribe(ctx, ch); err != nil {
			w.remove(id)
			return nil, err
		}
	}
	return cw, nil
}

func (w *Waiters) remove(id string) {
	ch := w.s.doneChannel(id)
	w.mu.Lock()
	w.n--
	cw := w.waiting[ch]
	last := cw != nil && cw.n == 1
	if cw != nil {
		cw.n--
	}
	if last {
		delete(w.waiting, ch)
	}
	w.mu.Unlock()
	if last {
		w.resubscribe(context.Background(), ch)
	}
}

// resubscribe makes the subscription to ch what the waiters are now:
// subscribed while someone waits on it, else not. It runs outside mu, so
// a dial to a Redis that does not answer holds up no other waiter nor the
// reader; subMu keeps the commands in the order of the states they
// follow, so a late unsubscribe never cancels a newer waiter's subscribe.
func (w *Waiters) resubscribe(ctx context.Context, ch string) error {
	w.subMu.Lock()
	defer w.subMu.Unlock()
	w.mu.Lock()
	wanted, closed, ps := w.waiting[ch] != nil, w.closed, w.ps
	w.mu.Unlock()
	switch {
	case closed:
		return nil
	case wanted:
		return ps.Subscribe(ctx, ch)
	default:
		return ps.Unsubscribe(ctx, ch)
	}
}

// read hands the subscription's confirmations and messages to the waiters
// until the subscription is closed.
func (w *Waiters) read(msgs <-chan any) {
	defer close(w.done)
	for m := range msgs {
		var ch string
		var sub bool
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			ch, sub = m.Channel, true
		case *redis.Message:
			ch = m.Channel
		default:
			continue
		}
		w.mu.Lock()
		if cw := w.waiting[ch]; cw != nil {
			if sub {
				closeOnce(cw.subscribed)
			} else {
				closeOnce(cw.ended)
			}
		}
		w.mu.Unlock()
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// Close ends the subscription and its reader, and the waits: each waiting
// request returns at once with the record as it is. Later waits are
// ErrTooManyWaiters.
func (w *Waiters) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	for _, cw := range w.waiting {
		closeOnce(cw.subscribed)
		closeOnce(cw.ended)
	}
	ps, done := w.ps, w.done
	w.mu.Unlock()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	return err
}
