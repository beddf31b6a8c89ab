package prom

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry"
)

// Namespace prefixes every metric name.
const Namespace = "shardline"

// Snapshotter is what the collector reads at each scrape:
// *coordinator.Worker.
type Snapshotter interface {
	Snapshot() coordinator.Snapshot
}

var _ Snapshotter = (*coordinator.Worker)(nil)

// Collector is a prometheus.Collector of a worker's metrics. Each scrape
// reads one Snapshot and turns telemetry.Points into constant metrics; the
// worker's hot path does nothing for it. It is unchecked (Describe sends
// nothing): which series exist depends on the level, the dimensions and the
// shards read. Safe for concurrent scrapes.
type Collector struct {
	src  Snapshotter
	dims metrics.Dimensions

	mu    sync.Mutex
	descs map[string]*prometheus.Desc // by Prometheus name and label names
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector of src's metrics with the enabled
// dimensions dims (the -metrics-dimensions setting).
func NewCollector(src Snapshotter, dims metrics.Dimensions) *Collector {
	return &Collector{src: src, dims: dims, descs: map[string]*prometheus.Desc{}}
}

// Describe sends nothing: the collector is unchecked.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends the metrics of one snapshot; at level NONE, none.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range telemetry.Points(c.src.Snapshot(), c.dims) {
		ch <- c.metric(p)
	}
}

// metric turns one point into a constant metric.
func (c *Collector) metric(p telemetry.Point) prometheus.Metric {
	dims := slices.Sorted(maps.Keys(p.Dims))
	values := make([]string, len(dims))
	for i, d := range dims {
		values[i] = p.Dims[d]
	}
	desc := c.desc(Name(p), p.Help, dims)
	var (
		m   prometheus.Metric
		err error
	)
	switch p.Kind {
	case telemetry.Counter:
		m, err = prometheus.NewConstMetric(desc, prometheus.CounterValue, p.Value, values...)
	case telemetry.Gauge:
		m, err = prometheus.NewConstMetric(desc, prometheus.GaugeValue, p.Value, values...)
	default:
		count, sum, buckets := Buckets(p.Hist)
		m, err = prometheus.NewConstHistogram(desc, count, sum, buckets, values...)
	}
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	return m
}

// desc returns the description of a metric with these label dimensions,
// made once.
func (c *Collector) desc(name, help string, dims []string) *prometheus.Desc {
	key := name + "\x00" + strings.Join(dims, "\x00")
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.descs[key]; ok {
		return d
	}
	labels := make([]string, len(dims))
	for i, d := range dims {
		labels[i] = SnakeCase(d)
	}
	d := prometheus.NewDesc(name, help, labels, nil)
	c.descs[key] = d
	return d
}

// Buckets turns a histogram snapshot into Prometheus' form: the count, the
// sum in seconds, and cumulative counts by upper bound in seconds (the
// bounds of metrics.Bounds; the last bucket of the snapshot, above every
// bound, is +Inf, which Prometheus takes from the count).
func Buckets(h metrics.HistSnapshot) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = make(map[float64]uint64, len(metrics.Bounds))
	var cum int64
	for i, b := range metrics.Bounds {
		cum += h.Buckets[i]
		buckets[b.Seconds()] = uint64(cum)
	}
	return uint64(h.Count), h.Sum.Seconds(), buckets
}

// Name is a point's Prometheus name: Namespace, "_", the point's name in
// snake case ("." and case changes become "_"), then "_seconds" for a
// histogram, the unit for a gauge whose name does not say it, and
// "_total" for a counter.
func Name(p telemetry.Point) string {
	name := Namespace + "_" + SnakeCase(p.Name)
	switch p.Kind {
	case telemetry.Counter:
		return name + "_total"
	case telemetry.Histogram:
		return name + "_seconds"
	}
	switch {
	case p.Unit == telemetry.Milliseconds && !strings.Contains(name, "millis"):
		name += "_milliseconds"
	case p.Unit == telemetry.Bytes && !strings.Contains(name, "bytes"):
		name += "_bytes"
	}
	return name
}

// SnakeCase writes a KCL-style name in snake case: RecordsProcessed →
// records_processed, KinesisDataFetcher.getRecords.Time →
// kinesis_data_fetcher_get_records_time, ShardId → shard_id.
func SnakeCase(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		switch {
		case c == '.' || c == '-' || c == ' ':
			b.WriteByte('_')
			continue
		case unicode.IsUpper(c) && i > 0:
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}

// NewRegistry is a registry with the Go runtime's and the process's
// metrics and src's through a Collector.
func NewRegistry(src Snapshotter, dims metrics.Dimensions) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewCollector(src, dims),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// Handler serves src's metrics in Prometheus' exposition formats, with the
// Go runtime's and the process's.
func Handler(src Snapshotter, dims metrics.Dimensions) (http.Handler, error) {
	reg, err := NewRegistry(src, dims)
	if err != nil {
		return nil, err
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
