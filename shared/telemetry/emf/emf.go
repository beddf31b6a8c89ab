package emf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry"
)

// The specification's limits.
const (
	MaxMetrics    = 100 // MetricDefinitions in one MetricDirective
	MaxValues     = 100 // members of one metric's array of values
	MaxDimensions = 30  // dimension names in one DimensionSet
)

// maxNamespace is CloudWatch's limit on a namespace's length.
const maxNamespace = 255

// Options configure Lines and Write.
type Options struct {
	// Namespace is the CloudWatch namespace; default the snapshot's
	// AppName (the KCL's: the application name).
	Namespace string
	// Dimensions are the enabled dimensions (config.Run.Dimensions); none
	// when empty.
	Dimensions metrics.Dimensions
	// Fields are more members on every line, neither dimensions nor
	// metrics: for instance the request id, to find an invocation's other
	// log lines. A field named like a dimension or a metric of its line is
	// left out of that line.
	Fields map[string]string
}

// Lines returns the EMF documents, one JSON object per element (no newline),
// for what the worker did between prev and cur (prev may be the zero
// Snapshot: everything since the start). Nothing at metrics level NONE.
func Lines(prev, cur coordinator.Snapshot, o Options) ([][]byte, error) {
	if cur.Level == metrics.None {
		return nil, nil
	}
	ns := o.Namespace
	if ns == "" {
		ns = cur.AppName
	}
	if ns == "" || len(ns) > maxNamespace {
		return nil, fmt.Errorf("emf: namespace %q: allowed 1–%d characters", ns, maxNamespace)
	}
	at := cur.Time
	if at.IsZero() {
		at = time.Now()
	}
	var out [][]byte
	for _, g := range groups(telemetry.Interval(prev, cur, o.Dimensions)) {
		if len(g.dims) > MaxDimensions {
			return nil, fmt.Errorf("emf: %d dimensions %v: allowed at most %d", len(g.dims), g.dims, MaxDimensions)
		}
		for _, ms := range split(g.metrics) {
			line, err := encode(ns, at, g, ms, o.Fields)
			if err != nil {
				return nil, err
			}
			out = append(out, line)
		}
	}
	return out, nil
}

// Write writes Lines to w, each line with its newline in one Write call
// (one log event each on Lambda).
func Write(w io.Writer, prev, cur coordinator.Snapshot, o Options) error {
	lines, err := Lines(prev, cur, o)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if _, err := w.Write(append(l, '\n')); err != nil {
			return fmt.Errorf("emf: write: %w", err)
		}
	}
	return nil
}

// split lays a group's metrics out on lines: at most MaxValues values of
// a metric and MaxMetrics metrics per line. The first lines carry the
// first MaxValues values of every metric; the next ones the next values
// of the metrics that have more (histograms, gauges of many shards).
func split(all []metric) [][]metric {
	var lines [][]metric
	for part := 0; ; part++ {
		var ms []metric
		for _, m := range all {
			if lo := part * MaxValues; lo < len(m.values) {
				ms = append(ms, metric{name: m.name, unit: m.unit, values: m.values[lo:min(lo+MaxValues, len(m.values))]})
			}
		}
		if len(ms) == 0 {
			return lines
		}
		for len(ms) > 0 {
			n := min(len(ms), MaxMetrics)
			lines = append(lines, ms[:n:n])
			ms = ms[n:]
		}
	}
}

// metric is one metric of a line: a counter's or a gauge's value, several
// gauges' values, or a histogram's observations.
type metric struct {
	name, unit string
	values     []float64
}

// group is the metrics that share their dimensions and values: one line
// (or more).
type group struct {
	dims    []string          // names, in telemetry.DimensionNames' order
	values  map[string]string // by name
	metrics []metric
}

// groups sorts the points by their dimensions, in the order they come.
func groups(ps []telemetry.Point) []*group {
	var out []*group
	byKey := map[string]*group{}
	for _, p := range ps {
		names := telemetry.DimensionNames(p)
		var key bytes.Buffer
		for _, n := range names {
			key.WriteString(n + "=" + p.Dims[n] + "\x00")
		}
		g := byKey[key.String()]
		if g == nil {
			g = &group{dims: names, values: p.Dims}
			byKey[key.String()] = g
			out = append(out, g)
		}
		var vs []float64
		switch p.Kind {
		case telemetry.Histogram:
			vs = observations(p.Hist)
			if len(vs) == 0 {
				continue // nothing observed: no value to write
			}
		default:
			vs = []float64{p.Value}
		}
		if i := slices.IndexFunc(g.metrics, func(m metric) bool { return m.name == p.Name }); i >= 0 {
			// Gauges of one identity (Interval merged the rest).
			g.metrics[i].values = append(g.metrics[i].values, vs...)
			continue
		}
		g.metrics = append(g.metrics, metric{name: p.Name, unit: p.Unit, values: vs})
	}
	return out
}

// observations spreads h's observations over its buckets, in
// milliseconds, ascending: one value per observation, each inside its
// bucket at the same fraction of the bucket's width, the fraction chosen
// so that the values add up to h.Sum; the largest is h.Max when Max lies
// in the top non-empty bucket.
func observations(h metrics.HistSnapshot) []float64 {
	if h.Count <= 0 {
		return nil
	}
	type bucket struct {
		lo, hi float64
		n      int64
	}
	maxMs := ms(h.Max)
	var bs []bucket
	for i, n := range h.Buckets {
		if n <= 0 {
			continue
		}
		b := bucket{hi: maxMs, n: n}
		if i > 0 {
			b.lo = ms(metrics.Bounds[i-1])
		}
		if i < len(metrics.Bounds) {
			b.hi = min(ms(metrics.Bounds[i]), maxMs)
		}
		b.hi = max(b.hi, b.lo)
		bs = append(bs, b)
	}
	if len(bs) == 0 {
		return nil
	}
	sum := ms(h.Sum)
	top := &bs[len(bs)-1]
	pinned := maxMs > top.lo && maxMs == top.hi
	if pinned {
		top.n--
		sum -= maxMs
	}
	var low, high float64
	for _, b := range bs {
		low += float64(b.n) * b.lo
		high += float64(b.n) * b.hi
	}
	f := 0.0
	if high > low {
		f = min(max((sum-low)/(high-low), 0), 1)
	}
	out := make([]float64, 0, h.Count)
	for _, b := range bs {
		v := round(b.lo + f*(b.hi-b.lo))
		for range b.n {
			out = append(out, v)
		}
	}
	if pinned {
		out = append(out, round(maxMs))
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// round keeps three decimals: microseconds, in milliseconds.
func round(v float64) float64 { return math.Round(v*1000) / 1000 }

// directive is the specification's MetricDirective.
type directive struct {
	Namespace  string       `json:"Namespace"`
	Dimensions [][]string   `json:"Dimensions"`
	Metrics    []definition `json:"Metrics"`
}

// definition is the specification's MetricDefinition.
type definition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit,omitempty"`
}

// encode writes one document: "_aws" first, then the dimension values,
// the fields and the metrics, in that order.
func encode(ns string, at time.Time, g *group, ms []metric, fields map[string]string) ([]byte, error) {
	d := directive{Namespace: ns, Dimensions: [][]string{append([]string{}, g.dims...)}}
	taken := map[string]bool{"_aws": true}
	for _, n := range g.dims {
		taken[n] = true
	}
	for _, m := range ms {
		d.Metrics = append(d.Metrics, definition{Name: m.name, Unit: m.unit})
		taken[m.name] = true
	}
	meta, err := json.Marshal(struct {
		Timestamp         int64       `json:"Timestamp"`
		CloudWatchMetrics []directive `json:"CloudWatchMetrics"`
	}{at.UnixMilli(), []directive{d}})
	if err != nil {
		return nil, fmt.Errorf("emf: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(`{"_aws":`)
	b.Write(meta)
	member := func(k string, v any) {
		kb, _ := json.Marshal(k)
		vb, e := json.Marshal(v)
		err = errors.Join(err, e)
		b.WriteByte(',')
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	for _, n := range g.dims {
		member(n, g.values[n])
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !taken[k] {
			member(k, fields[k])
		}
	}
	for _, m := range ms {
		if len(m.values) == 1 {
			member(m.name, m.values[0])
		} else {
			member(m.name, m.values)
		}
	}
	b.WriteByte('}')
	if err != nil {
		return nil, fmt.Errorf("emf: %w", err)
	}
	return b.Bytes(), nil
}
