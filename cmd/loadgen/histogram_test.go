package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank percentile of sorted.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name    string
		samples func() []time.Duration
	}{
		{"uniform 1us..100ms", func() []time.Duration {
			s := make([]time.Duration, 100_000)
			for i := range s {
				s[i] = time.Duration(i+1) * time.Microsecond
			}
			return s
		}},
		{"exponential mean 2ms", func() []time.Duration {
			s := make([]time.Duration, 200_000)
			for i := range s {
				s[i] = time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
			}
			return s
		}},
		{"bimodal 500us and 50ms", func() []time.Duration {
			s := make([]time.Duration, 10_000)
			for i := range s {
				s[i] = 500 * time.Microsecond
				if i%100 == 0 {
					s[i] = 50 * time.Millisecond
				}
			}
			return s
		}},
		{"log-normal around 1ms, long tail", func() []time.Duration {
			s := make([]time.Duration, 100_000)
			for i := range s {
				s[i] = time.Duration(math.Exp(rng.NormFloat64()*1.5) * float64(time.Millisecond))
			}
			return s
		}},
		{"small exact values", func() []time.Duration {
			s := make([]time.Duration, 256)
			for i := range s {
				s[i] = time.Duration(i)
			}
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			samples := tt.samples()
			var h histogram
			for _, d := range samples {
				h.Record(d)
			}
			slices.Sort(samples)
			if got, want := h.Count(), uint64(len(samples)); got != want {
				t.Errorf("got count %d, want %d", got, want)
			}
			if got, want := h.Max(), samples[len(samples)-1]; got != want {
				t.Errorf("got max %v, want %v", got, want)
			}
			for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
				got, want := h.Quantile(q), exactQuantile(samples, q)
				if diff := math.Abs(float64(got - want)); diff > float64(want)/256+1e-9 {
					t.Errorf("q=%v: got %v, want %v (±0.4%%)", q, got, want)
				}
			}
		})
	}
}

func TestHistogramKnownValues(t *testing.T) {
	var h histogram
	for _, ms := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10} {
		h.Record(time.Duration(ms) * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.1, 1 * time.Millisecond},
		{0.5, 5 * time.Millisecond},
		{0.51, 6 * time.Millisecond},
		{0.9, 9 * time.Millisecond},
		{0.99, 10 * time.Millisecond},
		{1, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if diff := math.Abs(float64(got - tt.want)); diff > float64(tt.want)/100 {
			t.Errorf("q=%v: got %v, want %v within 1%%", tt.q, got, tt.want)
		}
	}
	if got, want := h.Mean(), 5500*time.Microsecond; got != want {
		t.Errorf("got mean %v, want %v", got, want)
	}
}

func TestHistogramEdges(t *testing.T) {
	var empty histogram
	if got := empty.Quantile(0.5); got != 0 {
		t.Errorf("empty: got p50 %v, want 0", got)
	}
	if got := empty.Mean(); got != 0 {
		t.Errorf("empty: got mean %v, want 0", got)
	}

	var h histogram
	h.Record(-time.Second) // counts as zero
	if got := h.Quantile(1); got != 0 {
		t.Errorf("negative: got %v, want 0", got)
	}

	var huge histogram
	huge.Record(3 * time.Hour) // beyond the last bucket: clamped, max stays exact
	huge.Record(time.Millisecond)
	if got, want := huge.Max(), 3*time.Hour; got != want {
		t.Errorf("huge: got max %v, want %v", got, want)
	}
	if got := huge.Quantile(0.5); got != time.Millisecond && math.Abs(float64(got-time.Millisecond)) > float64(time.Millisecond)/256 {
		t.Errorf("huge: got p50 %v, want 1ms", got)
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	// Every bucket starts where the previous one ended, and bucketOf maps
	// both ends of each bucket back to it.
	next := uint64(0)
	for b := range numBuckets {
		low, width := bucketRange(b)
		if low != next {
			t.Fatalf("bucket %d: got low %d, want %d", b, low, next)
		}
		if got := bucketOf(low); got != b {
			t.Fatalf("bucketOf(%d): got %d, want %d", low, got, b)
		}
		if got := bucketOf(low + width - 1); got != b {
			t.Fatalf("bucketOf(%d): got %d, want %d", low+width-1, got, b)
		}
		if width > 1 && float64(width)/float64(low) > 1.0/subCount {
			t.Fatalf("bucket %d: width %d is over 1/%d of %d", b, width, subCount, low)
		}
		next = low + width
	}
	if got := bucketOf(math.MaxUint64); got != numBuckets-1 {
		t.Errorf("bucketOf(max): got %d, want %d", got, numBuckets-1)
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if got := h.Count(); got != 8000 {
		t.Errorf("got count %d, want 8000", got)
	}
	if got, want := h.Max(), 7999*time.Microsecond; got != want {
		t.Errorf("got max %v, want %v", got, want)
	}
}
