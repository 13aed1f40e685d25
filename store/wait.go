package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrTooManyWaiters is Waiters.Wait's answer when the process has as many
// waiters as it allows.
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

	mu      sync.Mutex
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
	select {
	case <-cw.subscribed:
	case <-ctx.Done():
	}
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
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("store: waiters closed")
	}
	if w.n >= w.max {
		return nil, ErrTooManyWaiters
	}
	if w.ps == nil {
		w.ps = w.s.rdb.Subscribe(context.WithoutCancel(ctx))
		w.done = make(chan struct{})
		go w.read(w.ps.ChannelWithSubscriptions())
	}
	cw := w.waiting[ch]
	if cw == nil {
		cw = &channelWaiters{subscribed: make(chan struct{}), ended: make(chan struct{})}
		w.waiting[ch] = cw
		if err := w.ps.Subscribe(ctx, ch); err != nil {
			delete(w.waiting, ch)
			return nil, err
		}
	}
	cw.n++
	w.n++
	return cw, nil
}

func (w *Waiters) remove(id string) {
	ch := w.s.doneChannel(id)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n--
	cw := w.waiting[ch]
	if cw == nil {
		return
	}
	if cw.n--; cw.n == 0 {
		delete(w.waiting, ch)
		if !w.closed {
			w.ps.Unsubscribe(context.Background(), ch)
		}
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

// Waiting returns how many requests wait now.
func (w *Waiters) Waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Close ends the subscription and its reader; waiting requests return
// when their contexts end.
func (w *Waiters) Close() error {
	w.mu.Lock()
	w.closed = true
	ps, done := w.ps, w.done
	w.mu.Unlock()
	if ps == nil {
		return nil
	}
	err := ps.Close()
	<-done
	return err
}
