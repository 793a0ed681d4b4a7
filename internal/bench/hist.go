package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram layout: values below 256 ns have one bucket each; above, each
// power of two is split into 128 buckets, so a bucket is never wider than
// 1/128 of its lower bound (< 0.8% relative error), whatever the value.
const (
	histLinear  = 256 // values [0, 256) are exact
	histSubBits = 7   // 128 sub-buckets per power of two above
	histSub     = 1 << histSubBits
	histBuckets = histLinear + (64-histSubBits-1)*histSub
)

// Histogram records durations in a fixed amount of memory (about 58 KiB),
// log-linear like an HDR histogram: quantiles are exact to within 0.8%, the
// minimum, maximum and mean are exact. Record may be called from any number
// of goroutines at once; the zero value is ready to use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds; overflows only after 584 years in total
	min    atomic.Int64  // stored as value+1 so that zero means "none yet"
	max    atomic.Int64
}

// histIndex returns the bucket of v >= 0.
func histIndex(v uint64) int {
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1 // >= 1 since v >= 256
	m := v >> shift                          // in [128, 256)
	return histLinear + (shift-1)*histSub + int(m-histSub)
}

// histUpper returns the largest value that falls in bucket i.
func histUpper(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	shift := (i-histLinear)/histSub + 1
	m := uint64((i-histLinear)%histSub + histSub)
	return (m+1)<<shift - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[histIndex(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		cur := h.max.Load()
		if v <= cur || h.max.CompareAndSwap(cur, v) {
			break
		}
	}
	for {
		cur := h.min.Load()
		if (cur != 0 && v+1 >= cur) || h.min.CompareAndSwap(cur, v+1) {
			break
		}
	}
}

// Count returns the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Quantile returns the duration below or at which the fraction q (0..1) of
// the recorded durations fall (the upper bound of the bucket, never more
// than the maximum), or 0 when nothing was recorded. Call it when no Record
// is running for an exact answer.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(histUpper(i), uint64(h.max.Load())))
		}
	}
	return time.Duration(h.max.Load())
}

// Stats summarizes the histogram in milliseconds.
func (h *Histogram) Stats() LatencyStats {
	n := h.n.Load()
	if n == 0 {
		return LatencyStats{}
	}
	return LatencyStats{
		Count: n,
		Min:   ms(time.Duration(h.min.Load() - 1)),
		Mean:  ms(time.Duration(h.sum.Load() / n)),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(time.Duration(h.max.Load())),
	}
}

// LatencyStats is a latency distribution in milliseconds.
type LatencyStats struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_ms"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// ms converts d to milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
