package telemetry

import (
	"maps"
	"slices"
	"strings"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
)

// Interval is what a worker did between two of its snapshots, as the
// points the backends that send deltas publish (CloudWatch Embedded Metric
// Format, PutMetricData): a Counter's Value is its increase since prev, a
// Histogram's Hist the observations since prev (its Max stays cur's: the
// largest since the start), a Gauge is cur's value. prev may be the zero
// Snapshot: then everything since the start.
//
// Points that share a name and dimensions (at DETAILED without the ShardId
// dimension, every shard's RecordsProcessed has the same dimensions) are
// merged first, as CloudWatch would add them up: counters summed,
// histograms added. Gauges stay one point each: several values of one
// metric. A counter smaller than prev's (not the same worker) counts
// whole. The order is that of Points(cur).
func Interval(prev, cur coordinator.Snapshot, dims metrics.Dimensions) []Point {
	before := map[string]Point{}
	for _, p := range merge(Points(prev, dims)) {
		if p.Kind != Gauge {
			before[identity(p)] = p
		}
	}
	out := merge(Points(cur, dims))
	for i := range out {
		p := &out[i]
		b, ok := before[identity(*p)]
		if !ok {
			continue
		}
		switch p.Kind {
		case Counter:
			if p.Value >= b.Value {
				p.Value -= b.Value
			}
		case Histogram:
			if p.Hist.Count >= b.Hist.Count {
				p.Hist = p.Hist.Sub(b.Hist)
			}
		}
	}
	return out
}

// merge adds up the counters and histograms that share a name and
// dimensions; gauges are kept as they are.
func merge(ps []Point) []Point {
	at := map[string]int{}
	out := make([]Point, 0, len(ps))
	for _, p := range ps {
		if p.Kind == Gauge {
			out = append(out, p)
			continue
		}
		id := identity(p)
		i, ok := at[id]
		if !ok {
			at[id] = len(out)
			out = append(out, p)
			continue
		}
		switch p.Kind {
		case Counter:
			out[i].Value += p.Value
		case Histogram:
			out[i].Hist = out[i].Hist.Add(p.Hist)
		}
	}
	return out
}

// identity is a point's metric identity, as CloudWatch sees it: the name
// and the dimensions with their values.
func identity(p Point) string {
	var b strings.Builder
	b.WriteString(p.Name)
	for _, k := range slices.Sorted(maps.Keys(p.Dims)) {
		b.WriteString("\x00" + k + "=" + p.Dims[k])
	}
	return b.String()
}

// DimensionNames are a point's dimension names in the order of
// metrics.AllDimensions (Operation, ShardId, WorkerIdentifier,
// StreamName), so that every backend lists them alike.
func DimensionNames(p Point) []string {
	out := make([]string, 0, len(p.Dims))
	for _, d := range metrics.AllDimensions {
		if _, ok := p.Dims[d]; ok {
			out = append(out, d)
		}
	}
	return out
}
