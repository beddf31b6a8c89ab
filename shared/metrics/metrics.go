package metrics

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Level is how much is measured, as KCL's metricsLevel.
type Level int

const (
	// Detailed is every metric, per shard (the default).
	Detailed Level = iota
	// Summary is the worker's totals only, without the ShardId dimension.
	Summary
	// None measures nothing: the hot path does not even read the clock.
	None
)

func (l Level) String() string {
	switch l {
	case Summary:
		return "SUMMARY"
	case None:
		return "NONE"
	}
	return "DETAILED"
}

// ParseLevel reads NONE, SUMMARY or DETAILED.
func ParseLevel(s string) (Level, error) {
	switch strings.ToUpper(s) {
	case "DETAILED", "":
		return Detailed, nil
	case "SUMMARY":
		return Summary, nil
	case "NONE":
		return None, nil
	}
	return 0, fmt.Errorf("%q: allowed NONE, SUMMARY, DETAILED", s)
}

// The dimensions a metric may carry, as KCL names them.
const (
	Operation        = "Operation"
	ShardID          = "ShardId"
	WorkerIdentifier = "WorkerIdentifier"
	StreamName       = "StreamName"
)

// AllDimensions are the dimensions that can be enabled.
var AllDimensions = []string{Operation, ShardID, WorkerIdentifier, StreamName}

// Dimensions is the set of enabled dimensions.
type Dimensions []string

// DefaultDimensions is KCL's default: Operation, ShardId, WorkerIdentifier.
var DefaultDimensions = Dimensions{Operation, ShardID, WorkerIdentifier}

// ParseDimensions reads a comma-separated list of dimensions.
func ParseDimensions(s string) (Dimensions, error) {
	var out Dimensions
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		i := slices.IndexFunc(AllDimensions, func(a string) bool { return strings.EqualFold(a, d) })
		if i < 0 {
			return nil, fmt.Errorf("%q: allowed a comma-separated list of %s", d, strings.Join(AllDimensions, ", "))
		}
		if !slices.Contains(out, AllDimensions[i]) {
			out = append(out, AllDimensions[i])
		}
	}
	return out, nil
}

// Has reports whether d is enabled.
func (ds Dimensions) Has(d string) bool { return slices.Contains(ds, d) }

// Bounds are the histogram's bucket upper bounds (NumBuckets-1 of them); a
// last bucket counts what lies above them.
var Bounds = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 30 * time.Second, time.Minute,
}

// NumBuckets is len(Bounds)+1.
const NumBuckets = 16

// Hist is a cumulative duration histogram, safe for concurrent use. Its
// zero value is ready.
type Hist struct {
	counts [NumBuckets]atomic.Int64
	sum    atomic.Int64 // nanoseconds
	max    atomic.Int64 // nanoseconds, the largest seen
}

// Observe adds one duration.
func (h *Hist) Observe(d time.Duration) {
	i, _ := slices.BinarySearch(Bounds, d)
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// HistSnapshot is a histogram's cumulative state.
type HistSnapshot struct {
	Count   int64
	Sum     time.Duration
	Max     time.Duration     // the largest seen since the start
	Buckets [NumBuckets]int64 // per bound of Bounds, then the rest; not cumulative
}

// Snapshot reads the histogram.
func (h *Hist) Snapshot() HistSnapshot {
	var s HistSnapshot
	for i := range h.counts {
		s.Buckets[i] = h.counts[i].Load()
		s.Count += s.Buckets[i]
	}
	s.Sum = time.Duration(h.sum.Load())
	s.Max = time.Duration(h.max.Load())
	return s
}

// Sub is the observations of s since prev (Max stays s's).
func (s HistSnapshot) Sub(prev HistSnapshot) HistSnapshot {
	d := HistSnapshot{Count: s.Count - prev.Count, Sum: s.Sum - prev.Sum, Max: s.Max}
	for i := range s.Buckets {
		d.Buckets[i] = s.Buckets[i] - prev.Buckets[i]
	}
	return d
}

// Add returns the sum of two snapshots (for totals over shards).
func (s HistSnapshot) Add(o HistSnapshot) HistSnapshot {
	out := HistSnapshot{Count: s.Count + o.Count, Sum: s.Sum + o.Sum, Max: max(s.Max, o.Max)}
	for i := range out.Buckets {
		out.Buckets[i] = s.Buckets[i] + o.Buckets[i]
	}
	return out
}
