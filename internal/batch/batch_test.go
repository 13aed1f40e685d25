package batch_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/boomerang-events/boomerang/internal/batch"
)

// outcome is what one Submit returned.
type outcome struct {
	val int
	err error
}

// flushLog records the size of every batch flushed.
type flushLog struct {
	mu    sync.Mutex // guards sizes
	sizes []int
}

func (l *flushLog) add(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sizes = append(l.sizes, n)
}

func (l *flushLog) get() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.sizes...)
}

// double is a flush that commits every item as twice its value.
func double(_ context.Context, items []int) ([]int, error) {
	out := make([]int, len(items))
	for i, v := range items {
		out[i] = v * 2
	}
	return out, nil
}

// queueBehindFirst must run inside a synctest bubble. It starts a Committer
// with a single flusher, holds that flusher in the flush of item 0, queues
// items 1 to n behind it, then releases it. It returns every item's outcome,
// keyed by item, and the sizes of the batches flushed, item 0's first.
func queueBehindFirst(t *testing.T, cfg batch.Config, n int, flush batch.FlushFunc[int, int]) (map[int]outcome, []int) {
	t.Helper()
	release := make(chan struct{})
	var log flushLog
	var held sync.Once
	c := batch.New(func(ctx context.Context, items []int) ([]int, error) {
		log.add(len(items))
		held.Do(func() { <-release })
		return flush(ctx, items)
	}, batch.Config{MaxBatch: cfg.MaxBatch, Flushers: 1, Timeout: cfg.Timeout})
	defer c.Close()

	type done struct {
		item int
		outcome
	}
	results := make(chan done, n+1)
	submit := func(item int) {
		v, err := c.Submit(context.Background(), item)
		results <- done{item, outcome{v, err}}
	}
	go submit(0)
	synctest.Wait() // the only flusher is held in item 0's flush
	for i := 1; i <= n; i++ {
		go submit(i)
	}
	synctest.Wait() // items 1..n all wait to be taken
	if got := log.get(); len(got) != 1 {
		t.Fatalf("flushes before release: got %v, want one", got)
	}
	close(release)

	got := make(map[int]outcome, n+1)
	for range n + 1 {
		d := <-results
		if _, dup := got[d.item]; dup {
			t.Fatalf("item %d: got two results, want one", d.item)
		}
		got[d.item] = d.outcome
	}
	return got, log.get()
}

func TestCommitterGroupsWaitingItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 50
		got, sizes := queueBehindFirst(t, batch.Config{}, n, double)
		if want := []int{1, n}; !reflect.DeepEqual(sizes, want) {
			t.Errorf("batch sizes: got %v, want %v", sizes, want)
		}
		for i := 0; i <= n; i++ {
			if o := got[i]; o.err != nil || o.val != 2*i {
				t.Errorf("Submit(%d): got (%d, %v), want (%d, nil)", i, o.val, o.err, 2*i)
			}
		}
	})
}

func TestCommitterMaxBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got, sizes := queueBehindFirst(t, batch.Config{MaxBatch: 8}, 50, double)
		if want := []int{1, 8, 8, 8, 8, 8, 8, 2}; !reflect.DeepEqual(sizes, want) {
			t.Errorf("batch sizes: got %v, want %v", sizes, want)
		}
		for i := 0; i <= 50; i++ {
			if o := got[i]; o.err != nil || o.val != 2*i {
				t.Errorf("Submit(%d): got (%d, %v), want (%d, nil)", i, o.val, o.err, 2*i)
			}
		}
	})
}

func TestCommitterFlushErrorFailsItsBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errFlush := errors.New("flush failed")
		// Item 0 is flushed alone and succeeds; the batch of 1..10 fails.
		flush := func(ctx context.Context, items []int) ([]int, error) {
			if items[0] != 0 {
				return nil, errFlush
			}
			return double(ctx, items)
		}
		got, sizes := queueBehindFirst(t, batch.Config{}, 10, flush)
		if want := []int{1, 10}; !reflect.DeepEqual(sizes, want) {
			t.Fatalf("batch sizes: got %v, want %v", sizes, want)
		}
		if o := got[0]; o.err != nil || o.val != 0 {
			t.Errorf("Submit(0): got (%d, %v), want (0, nil)", o.val, o.err)
		}
		for i := 1; i <= 10; i++ {
			if o := got[i]; !errors.Is(o.err, errFlush) {
				t.Errorf("Submit(%d): got error %v, want %v", i, o.err, errFlush)
			}
		}
	})
}

func TestCommitterWrongResultCount(t *testing.T) {
	tests := []struct {
		name    string
		results func(items []int) []int
	}{
		{"one short", func(items []int) []int { return make([]int, len(items)-1) }},
		{"one extra", func(items []int) []int { return make([]int, len(items)+1) }},
		{"none", func([]int) []int { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				flush := func(_ context.Context, items []int) ([]int, error) { return tt.results(items), nil }
				got, _ := queueBehindFirst(t, batch.Config{}, 5, flush)
				for i := 0; i <= 5; i++ {
					o := got[i]
					if o.err == nil {
						t.Errorf("Submit(%d): got (%d, nil), want an error", i, o.val)
						continue
					}
					if !strings.Contains(o.err.Error(), "results for") {
						t.Errorf("Submit(%d): got error %q, want one about the result count", i, o.err)
					}
				}
			})
		})
	}
}

func TestSubmitEndedContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline passed", expired, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The flush holds what it takes until the test ends, so a
			// result can never race the context's end.
			release := make(chan struct{})
			c := batch.New(func(ctx context.Context, items []int) ([]int, error) {
				<-release
				return double(ctx, items)
			}, batch.Config{})
			t.Cleanup(func() { close(release); c.Close() })
			for i := range 20 { // Submit picks among ready cases at random
				if _, err := c.Submit(tt.ctx, i); !errors.Is(err, tt.want) {
					t.Fatalf("Submit #%d: got error %v, want %v", i, err, tt.want)
				}
			}
		})
	}
}

func TestSubmitContextEndsWhileFlushing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		c := batch.New(func(ctx context.Context, items []int) ([]int, error) {
			<-release
			return double(ctx, items)
		}, batch.Config{})
		defer c.Close()
		defer close(release)

		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Submit(ctx, 1)
			errc <- err
		}()
		synctest.Wait() // the item is in a flush
		select {
		case err := <-errc:
			t.Fatalf("Submit returned %v before its context ended, want it to wait", err)
		default:
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Submit: got error %v, want %v", err, context.Canceled)
		}
	})
}

func TestSubmitAfterClose(t *testing.T) {
	var log flushLog
	c := batch.New(func(ctx context.Context, items []int) ([]int, error) {
		log.add(len(items))
		return double(ctx, items)
	}, batch.Config{})
	if v, err := c.Submit(context.Background(), 21); err != nil || v != 42 {
		t.Fatalf("Submit before Close: got (%d, %v), want (42, nil)", v, err)
	}
	c.Close()
	c.Close() // a second Close is harmless
	// The timeout bounds a Submit that would hang instead of failing.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 20 {
		if _, err := c.Submit(ctx, i); !errors.Is(err, batch.ErrClosed) {
			t.Fatalf("Submit #%d after Close: got error %v, want %v", i, err, batch.ErrClosed)
		}
	}
	if got := log.get(); !reflect.DeepEqual(got, []int{1}) {
		t.Errorf("batch sizes: got %v, want [1] (nothing flushed after Close)", got)
	}
}

func TestCloseLetsFlushInFlightEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		c := batch.New(func(ctx context.Context, items []int) ([]int, error) {
			<-release
			return double(ctx, items)
		}, batch.Config{Flushers: 1})

		inFlight := make(chan outcome, 1)
		go func() {
			v, err := c.Submit(context.Background(), 1)
			inFlight <- outcome{v, err}
		}()
		synctest.Wait() // item 1 holds the only flusher
		waiting := make(chan outcome, 1)
		go func() {
			v, err := c.Submit(context.Background(), 2)
			waiting <- outcome{v, err}
		}()
		synctest.Wait() // item 2 waits to be taken

		closed := make(chan struct{})
		go func() {
			c.Close()
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a flush was in flight, want it to wait")
		default:
		}
		select {
		case o := <-waiting:
			if !errors.Is(o.err, batch.ErrClosed) {
				t.Errorf("waiting Submit: got (%d, %v), want error %v", o.val, o.err, batch.ErrClosed)
			}
		default:
			t.Error("waiting Submit still blocked after Close, want ErrClosed")
		}

		close(release)
		<-closed
		if o := <-inFlight; o.err != nil || o.val != 2 {
			t.Errorf("in-flight Submit: got (%d, %v), want (2, nil)", o.val, o.err)
		}
	})
}

// TestCommitterConcurrent runs on the real scheduler, for the race detector.
func TestCommitterConcurrent(t *testing.T) {
	const n, maxBatch = 500, 16
	var log flushLog
	c := batch.New(func(ctx context.Context, items []int) ([]int, error) {
		log.add(len(items))
		return double(ctx, items)
	}, batch.Config{MaxBatch: maxBatch, Flushers: 3})
	defer c.Close()

	// The timeout bounds a Submit that would hang instead of failing.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if v, err := c.Submit(ctx, i); err != nil || v != 2*i {
				t.Errorf("Submit(%d): got (%d, %v), want (%d, nil)", i, v, err, 2*i)
			}
		})
	}
	wg.Wait()
	total := 0
	for _, s := range log.get() {
		if s < 1 || s > maxBatch {
			t.Errorf("batch size: got %d, want 1 to %d", s, maxBatch)
		}
		total += s
	}
	if total != n {
		t.Errorf("items flushed: got %d, want %d", total, n)
	}
}

// With Linger, items that arrive one by one within the linger share a
// batch instead of each taking its own flush.
func TestCommitterLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var sizes []int
		c := batch.New(func(_ context.Context, items []int) ([]int, error) {
			mu.Lock()
			sizes = append(sizes, len(items))
			mu.Unlock()
			return items, nil
		}, batch.Config{Linger: 10 * time.Millisecond, MaxBatch: 100})
		defer c.Close()
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * time.Millisecond) // spread within the linger
				if _, err := c.Submit(context.Background(), i); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(sizes) != 1 || sizes[0] != 5 {
			t.Errorf("batch sizes: got %v, want [5]", sizes)
		}
	})
}
