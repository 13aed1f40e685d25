package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets, like HDR Histogram with
// two significant binary digits of precision: one bucket per nanosecond below
// 256ns, then 128 equal buckets per power of two. A bucket is at most 1/128
// of its lower bound wide and a percentile is reported as its bucket's
// midpoint, so it is within 1/256 (0.4%) of the exact sample.
//
// It was chosen over a sorted slice of samples because memory is fixed
// (4480 counters, 35 KiB) however long the run, and recording is one atomic
// add, so thousands of sender goroutines share it without a lock.
//
//	value (ns)          bucket width   buckets
//	0 .. 255            1              256
//	256 .. 511          2              128
//	512 .. 1023         4              128
//	2^k .. 2^(k+1)-1    2^(k-7)        128
//	up to 2^41 (~37min) larger values go to the last bucket
//
// The zero value is empty and ready to use; it is safe for concurrent use.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
	max    atomic.Int64  // nanoseconds
}

const (
	subBits    = 7
	subCount   = 1 << subBits // buckets per power of two
	maxShift   = 33
	numBuckets = 2*subCount + maxShift*subCount
)

// bucketOf returns the bucket index of v nanoseconds.
func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // v>>shift is in [128, 256)
	if shift > maxShift {
		return numBuckets - 1
	}
	return 2*subCount + (shift-1)*subCount + int(v>>shift) - subCount
}

// bucketRange returns the lowest value of bucket b and its width.
func bucketRange(b int) (low, width uint64) {
	if b < 2*subCount {
		return uint64(b), 1
	}
	shift := (b-2*subCount)/subCount + 1
	top := uint64((b-2*subCount)%subCount + subCount)
	return top << shift, 1 << shift
}

// Record adds one sample; negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	storeMax(&h.max, v)
}

// Count returns the number of samples.
func (h *histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest sample, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the mean of the samples, exactly; 0 when there are none.
func (h *histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the sample of rank ceil(q*n) (the nearest-rank
// percentile: q=0.5 is the median, q=1 the maximum), to within 0.4%. It
// returns 0 when there are no samples. Call it once recording has stopped.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	if rank == n {
		return h.Max()
	}
	var cum uint64
	for b := range h.counts {
		cum += h.counts[b].Load()
		if cum >= rank {
			low, width := bucketRange(b)
			return min(time.Duration(low+width/2), h.Max())
		}
	}
	return h.Max()
}
