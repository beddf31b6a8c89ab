package main

import (
	"encoding/binary"
	"math"
	"sync/atomic"
	"time"
)

// latency is a histogram of producer-to-handler latencies in 1 ms buckets
// up to 10 s (and one bucket above), safe for concurrent handlers.
type latency struct {
	warmup  int64        // user records to receive before samples count
	after   atomic.Int64 // UnixNano: records produced before are not counted; MaxInt64 until the warm-up is over
	samples atomic.Int64
	bad     atomic.Int64 // records too short to hold a timestamp
	buckets [10002]atomic.Int64
}

// LatencyReport is the -latency part of the report.
type LatencyReport struct {
	Samples int64   `json:"samples"`
	Bad     int64   `json:"bad,omitempty"`
	P50MS   float64 `json:"p50_ms"`
	P90MS   float64 `json:"p90_ms"`
	P99MS   float64 `json:"p99_ms"`
	MaxMS   float64 `json:"max_ms"`
}

func newLatency(warmup int64) *latency {
	l := &latency{warmup: warmup}
	l.after.Store(math.MaxInt64)
	if warmup <= 0 {
		l.after.Store(0)
	}
	return l
}

// observe takes k user records whose data are data(0..k-1); seen is how
// many user records had been received before these.
func (l *latency) observe(data func(i int) []byte, k int, seen int64) {
	now := time.Now().UnixNano()
	if seen+int64(k) >= l.warmup && l.after.Load() == math.MaxInt64 {
		l.after.CompareAndSwap(math.MaxInt64, now)
	}
	after := l.after.Load()
	for i := range k {
		d := data(i)
		if len(d) < 8 {
			l.bad.Add(1)
			continue
		}
		ts := int64(binary.BigEndian.Uint64(d))
		if ts < after {
			continue
		}
		ms := (now - ts) / int64(time.Millisecond)
		l.buckets[min(max(ms, 0), int64(len(l.buckets)-1))].Add(1)
		l.samples.Add(1)
	}
}

// quantile is the upper bound (ms) of the bucket holding quantile q.
func (l *latency) quantile(q float64) float64 {
	n := l.samples.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var c int64
	for i := range l.buckets {
		c += l.buckets[i].Load()
		if c >= rank {
			return float64(i + 1)
		}
	}
	return float64(len(l.buckets))
}

func (l *latency) report() *LatencyReport {
	r := &LatencyReport{Samples: l.samples.Load(), Bad: l.bad.Load(), P50MS: l.quantile(0.5), P90MS: l.quantile(0.9), P99MS: l.quantile(0.99)}
	for i := len(l.buckets) - 1; i >= 0; i-- {
		if l.buckets[i].Load() > 0 {
			r.MaxMS = float64(i + 1)
			break
		}
	}
	return r
}
