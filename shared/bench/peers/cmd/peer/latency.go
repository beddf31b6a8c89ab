package main

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Every user record of a latency run carries two producer stamps
// (big-endian UnixNano): bytes 0..8 when it was made, bytes 8..16 when it
// was handed to PutRecords. They differ by the producer's own buffering
// (KPL: up to the 50 ms between flushes); from the put stamp on, the
// latency is the consumer's.
const (
	createdStamp = 0
	putStamp     = 8
	// maxPutWait bounds put − created for a put stamp to be taken: bytes
	// 8..16 of a record made without one (text) fall far outside.
	maxPutWait = 10 * time.Minute
)

// latency holds histograms of producer-to-handler latencies, from each
// record's creation and from its put, safe for concurrent handlers.
type latency struct {
	warmup  int64      // user records to receive before samples count
	shards  int        // shards to receive records from before samples count
	mu      sync.Mutex // guards from, during the warm-up
	from    map[string]bool
	after   atomic.Int64 // UnixNano: records produced before are not counted; MaxInt64 until the warm-up is over
	bad     atomic.Int64 // records too short to hold a creation stamp
	putBad  atomic.Int64 // counted records without a usable put stamp
	created hist         // from the creation stamp; its samples are the run's
	put     hist         // from the put stamp
}

// hist is a histogram of latencies in 1 ms buckets up to 10 s (and one
// bucket above).
type hist struct {
	samples atomic.Int64
	buckets [10002]atomic.Int64
}

// LatencyReport is the -latency part of the report: from creation
// (P50MS…) and from the put (PutP50MS…), over the same records.
type LatencyReport struct {
	Samples    int64   `json:"samples"`
	Bad        int64   `json:"bad,omitempty"`
	P50MS      float64 `json:"p50_ms"`
	P90MS      float64 `json:"p90_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	PutSamples int64   `json:"put_samples"`
	PutBad     int64   `json:"put_bad,omitempty"`
	PutP50MS   float64 `json:"put_p50_ms"`
	PutP90MS   float64 `json:"put_p90_ms"`
	PutP99MS   float64 `json:"put_p99_ms"`
	PutMaxMS   float64 `json:"put_max_ms"`
}

// newLatency makes the histograms of a run whose samples count once
// warmup user records have come, from at least shards shards.
func newLatency(warmup int64, shards int) *latency {
	l := &latency{warmup: warmup, shards: shards, from: map[string]bool{}}
	l.after.Store(math.MaxInt64)
	if warmup <= 0 && shards <= 0 {
		l.after.Store(0)
	}
	return l
}

// warm notes k records from shard (seen received before them) and ends
// the warm-up when it is over: a library that takes its shards one by
// one (vmware-go-kcl-v2 takes one lease per shard sync) would otherwise
// count the backlog of a shard it took late as latency.
func (l *latency) warm(shard string, k int, seen int64, now int64) {
	if l.after.Load() != math.MaxInt64 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.from[shard] = true
	if seen+int64(k) >= l.warmup && len(l.from) >= l.shards {
		l.after.CompareAndSwap(math.MaxInt64, now)
	}
}

// samples is how many records have counted (from creation).
func (l *latency) samples() int64 { return l.created.samples.Load() }

// observe takes k user records of shard whose data are data(0..k-1);
// seen is how many user records had been received before these.
func (l *latency) observe(shard string, data func(i int) []byte, k int, seen int64) {
	now := time.Now().UnixNano()
	l.warm(shard, k, seen, now)
	after := l.after.Load()
	for i := range k {
		d := data(i)
		if len(d) < createdStamp+8 {
			l.bad.Add(1)
			continue
		}
		ts := int64(binary.BigEndian.Uint64(d[createdStamp:]))
		if ts < after {
			continue
		}
		l.created.add(now - ts)
		if len(d) < putStamp+8 {
			l.putBad.Add(1)
			continue
		}
		pt := int64(binary.BigEndian.Uint64(d[putStamp:]))
		if pt < ts || pt-ts > int64(maxPutWait) {
			l.putBad.Add(1)
			continue
		}
		l.put.add(now - pt)
	}
}

// add counts one latency of ns nanoseconds.
func (h *hist) add(ns int64) {
	ms := ns / int64(time.Millisecond)
	h.buckets[min(max(ms, 0), int64(len(h.buckets)-1))].Add(1)
	h.samples.Add(1)
}

// quantile is the upper bound (ms) of the bucket holding quantile q.
func (h *hist) quantile(q float64) float64 {
	n := h.samples.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var c int64
	for i := range h.buckets {
		c += h.buckets[i].Load()
		if c >= rank {
			return float64(i + 1)
		}
	}
	return float64(len(h.buckets))
}

// max is the upper bound (ms) of the highest bucket used.
func (h *hist) max() float64 {
	for i := len(h.buckets) - 1; i >= 0; i-- {
		if h.buckets[i].Load() > 0 {
			return float64(i + 1)
		}
	}
	return 0
}

func (l *latency) report() *LatencyReport {
	c, p := &l.created, &l.put
	return &LatencyReport{
		Samples: c.samples.Load(), Bad: l.bad.Load(),
		P50MS: c.quantile(0.5), P90MS: c.quantile(0.9), P99MS: c.quantile(0.99), MaxMS: c.max(),
		PutSamples: p.samples.Load(), PutBad: l.putBad.Load(),
		PutP50MS: p.quantile(0.5), PutP90MS: p.quantile(0.9), PutP99MS: p.quantile(0.99), PutMaxMS: p.max(),
	}
}
