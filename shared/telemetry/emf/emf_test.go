package emf

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry/emf/emftest"
)

var at = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func hist(ds ...time.Duration) metrics.HistSnapshot {
	var h metrics.Hist
	for _, d := range ds {
		h.Observe(d)
	}
	return h.Snapshot()
}

// snapshot is a worker that read two shards.
func snapshot(level metrics.Level) coordinator.Snapshot {
	return coordinator.Snapshot{
		Time: at, WorkerID: "worker-1", StreamName: "words", AppName: "words-app", Level: level,
		CurrentLeases: 2, TakenLeases: 2, RenewAllLeases: hist(4*time.Millisecond, 6*time.Millisecond),
		Shards: []coordinator.ShardStats{
			{ShardID: "shardId-000000000000", MillisBehindLatest: 0, UserRecords: 120,
				Dispatch: dispatch.Stats{Handled: 120, HandledBytes: 1200, Records: 120, Batches: 2, HandlerTime: hist(2*time.Millisecond, 30*time.Millisecond)},
				Fetch:    fetch.Stats{GetRecords: hist(8*time.Millisecond, 9*time.Millisecond, 12*time.Millisecond)}},
			{ShardID: "shardId-000000000001", MillisBehindLatest: 2500, UserRecords: 80,
				Dispatch: dispatch.Stats{Handled: 80, HandledBytes: 800, Records: 90, Batches: 2, Failures: 1, HandlerTime: hist(3*time.Millisecond, 700*time.Millisecond)}},
		},
	}
}

func parse(t *testing.T, lines [][]byte) []emftest.Document {
	t.Helper()
	var docs []emftest.Document
	for _, l := range lines {
		d, err := emftest.Validate(l)
		if err != nil {
			t.Fatalf("line %s: %v", l, err)
		}
		docs = append(docs, d)
	}
	return docs
}

// value returns the values of metric name on the lines whose dimensions
// include want.
func values(docs []emftest.Document, name string, want map[string]string) []float64 {
	var out []float64
	for _, d := range docs {
		match := true
		for k, v := range want {
			match = match && d.DimValues[k] == v
		}
		if match {
			out = append(out, d.Values[name]...)
		}
	}
	return out
}

// TestLinesFollowTheSpecification: every line passes the schema of the
// EMF specification and its rules on target members; the namespace is the
// app name, the timestamp the snapshot's, each shard's metrics are on
// lines of their own with the enabled dimensions, counters are deltas and
// histograms arrays of values.
func TestLinesFollowTheSpecification(t *testing.T) {
	prev := snapshot(metrics.Detailed)
	prev.Shards = prev.Shards[:1]
	prev.Shards[0].Dispatch.Handled = 100
	prev.Shards[0].Dispatch.HandlerTime = hist(2 * time.Millisecond)
	cur := snapshot(metrics.Detailed)
	lines, err := Lines(prev, cur, Options{Dimensions: metrics.DefaultDimensions})
	if err != nil {
		t.Fatal(err)
	}
	docs := parse(t, lines)
	for _, d := range docs {
		if d.Namespace != "words-app" || d.Timestamp != at.UnixMilli() {
			t.Errorf("namespace %q timestamp %d, want words-app and %d", d.Namespace, d.Timestamp, at.UnixMilli())
		}
		if d.DimValues[metrics.WorkerIdentifier] != "worker-1" {
			t.Errorf("line without WorkerIdentifier worker-1: %v", d.DimValues)
		}
		if _, ok := d.DimValues[metrics.StreamName]; ok {
			t.Errorf("StreamName is not enabled but on a line: %v", d.Dimensions)
		}
	}
	shard0 := map[string]string{metrics.ShardID: "shardId-000000000000", metrics.Operation: "ProcessTask"}
	shard1 := map[string]string{metrics.ShardID: "shardId-000000000001", metrics.Operation: "ProcessTask"}
	for _, tt := range []struct {
		name string
		dims map[string]string
		want []float64
	}{
		{"RecordsProcessed", shard0, []float64{20}}, // 120 - 100
		{"RecordsProcessed", shard1, []float64{80}}, // new shard: all of it
		{"DataBytesProcessed", shard0, []float64{0}},
		{"MillisBehindLatest", shard1, []float64{2500}},
		{"RecordProcessor.processRecords.Time", shard0, []float64{30}}, // the one call since prev
		{"RecordProcessor.processRecords.Time", shard1, []float64{3, 700}},
		{"CurrentLeases", map[string]string{metrics.Operation: "Worker"}, []float64{2}},
		{"Errors", map[string]string{metrics.ShardID: "shardId-000000000001", metrics.Operation: "EventSourceMapping"}, []float64{1}},
	} {
		if got := values(docs, tt.name, tt.dims); !slices.Equal(got, tt.want) {
			t.Errorf("%s %v = %v, want %v", tt.name, tt.dims, got, tt.want)
		}
	}
	for _, d := range docs {
		if u, ok := d.Units["RecordProcessor.processRecords.Time"]; ok && u != "Milliseconds" {
			t.Errorf("processRecords.Time unit %q", u)
		}
		if u, ok := d.Units["DataBytesProcessed"]; ok && u != "Bytes" {
			t.Errorf("DataBytesProcessed unit %q", u)
		}
	}
}

// TestSummary: at SUMMARY the shards' metrics are summed on one line
// without ShardId.
func TestSummary(t *testing.T) {
	lines, err := Lines(coordinator.Snapshot{}, snapshot(metrics.Summary), Options{Dimensions: metrics.DefaultDimensions})
	if err != nil {
		t.Fatal(err)
	}
	docs := parse(t, lines)
	for _, d := range docs {
		if _, ok := d.DimValues[metrics.ShardID]; ok {
			t.Errorf("SUMMARY line with ShardId: %v", d.DimValues)
		}
	}
	if got := values(docs, "RecordsProcessed", nil); !slices.Equal(got, []float64{200}) {
		t.Errorf("RecordsProcessed = %v, want [200]", got)
	}
}

func TestNoneWritesNothing(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, coordinator.Snapshot{}, snapshot(metrics.None), Options{Dimensions: metrics.DefaultDimensions}); err != nil || b.Len() != 0 {
		t.Errorf("Write at NONE = %v, wrote %q; want nothing", err, b.String())
	}
}

// TestWriteLinesAndFields: Write puts each document on a line of its own;
// the fields are on every line, except one named like a dimension.
func TestWriteLinesAndFields(t *testing.T) {
	var b bytes.Buffer
	o := Options{Namespace: "other-ns", Dimensions: metrics.DefaultDimensions, Fields: map[string]string{"requestId": "r-1", metrics.ShardID: "not a dimension"}}
	if err := Write(&b, coordinator.Snapshot{}, snapshot(metrics.Detailed), o); err != nil {
		t.Fatal(err)
	}
	docs, err := emftest.Find(b.String())
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "\n"); n != len(docs) || n < 3 {
		t.Fatalf("%d lines, %d documents", n, len(docs))
	}
	for _, d := range docs {
		if d.Namespace != "other-ns" || d.Members["requestId"] != "r-1" {
			t.Errorf("line: namespace %q requestId %v", d.Namespace, d.Members["requestId"])
		}
		if v, ok := d.DimValues[metrics.ShardID]; ok && !strings.HasPrefix(v, "shardId-") {
			t.Errorf("the field replaced the ShardId dimension: %q", v)
		}
		if _, isDim := d.DimValues[metrics.ShardID]; !isDim && d.Members[metrics.ShardID] != "not a dimension" {
			t.Errorf("the ShardId field is missing from a line without that dimension: %v", d.Members)
		}
	}
}

// TestLimits: a histogram of 250 observations goes on three lines of at
// most 100 values, the other metrics on the first only; 150 shards'
// gauges without ShardId make one array per line of at most 100; no line
// exceeds the limits (Validate checks them).
func TestLimits(t *testing.T) {
	cur := snapshot(metrics.Detailed)
	var ds []time.Duration
	for i := range 250 {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	cur.Shards[0].Dispatch.HandlerTime = hist(ds...)
	lines, err := Lines(coordinator.Snapshot{}, cur, Options{Dimensions: metrics.DefaultDimensions})
	if err != nil {
		t.Fatal(err)
	}
	docs := parse(t, lines)
	var parts []int
	for _, d := range docs {
		if v, ok := d.Values["RecordProcessor.processRecords.Time"]; ok && d.DimValues[metrics.ShardID] == "shardId-000000000000" {
			parts = append(parts, len(v))
			if len(parts) > 1 && len(d.Values) != 1 {
				t.Errorf("continuation line carries %d metrics, want the histogram alone", len(d.Values))
			}
		}
	}
	if !slices.Equal(parts, []int{100, 100, 50}) {
		t.Errorf("histogram split %v, want [100 100 50]", parts)
	}
	if got := values(docs, "RecordsProcessed", map[string]string{metrics.ShardID: "shardId-000000000000"}); !slices.Equal(got, []float64{120}) {
		t.Errorf("RecordsProcessed = %v, want once [120]", got)
	}

	many := snapshot(metrics.Detailed)
	many.Shards = nil
	for i := range 150 {
		many.Shards = append(many.Shards, coordinator.ShardStats{ShardID: fmt.Sprint("shardId-", i), MillisBehindLatest: int64(i)})
	}
	lines, err = Lines(coordinator.Snapshot{}, many, Options{Dimensions: metrics.Dimensions{metrics.Operation}})
	if err != nil {
		t.Fatal(err)
	}
	var behind []float64
	for _, d := range parse(t, lines) {
		behind = append(behind, d.Values["MillisBehindLatest"]...)
	}
	if len(behind) != 150 || behind[149] != 149 {
		t.Errorf("MillisBehindLatest: %d values, want each of the 150 shards'", len(behind))
	}
}

// TestSplit: more than MaxMetrics metrics go on more lines.
func TestSplit(t *testing.T) {
	var ms []metric
	for i := range 250 {
		ms = append(ms, metric{name: fmt.Sprint("m", i), values: []float64{1}})
	}
	ms[3].values = make([]float64, 150)
	var sizes [][2]int
	for _, l := range split(ms) {
		vals := 0
		for _, m := range l {
			vals = max(vals, len(m.values))
		}
		sizes = append(sizes, [2]int{len(l), vals})
	}
	if want := [][2]int{{100, 100}, {100, 1}, {50, 1}, {1, 50}}; !slices.Equal(sizes, want) {
		t.Errorf("lines (metrics, most values) = %v, want %v", sizes, want)
	}
}

// TestObservations: one value per observation, inside its bucket, adding
// up to the sum, the largest at Max.
func TestObservations(t *testing.T) {
	for _, ds := range [][]time.Duration{
		{3 * time.Millisecond},
		{1500 * time.Microsecond, 1700 * time.Microsecond, 4 * time.Millisecond, 90 * time.Millisecond},
		{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
		{200 * time.Microsecond, 2 * time.Minute},
		{0, 0},
	} {
		h := hist(ds...)
		vs := observations(h)
		if len(vs) != len(ds) {
			t.Errorf("%v: %d values, want %d", ds, len(vs), len(ds))
			continue
		}
		sum := 0.0
		for _, v := range vs {
			sum += v
		}
		if math.Abs(sum-ms(h.Sum)) > 0.01 {
			t.Errorf("%v: values %v add up to %v, want %v", ds, vs, sum, ms(h.Sum))
		}
		if !slices.IsSorted(vs) || vs[len(vs)-1] != ms(h.Max) {
			t.Errorf("%v: values %v: want ascending, the last at Max %v", ds, vs, ms(h.Max))
		}
		for i, d := range slices.Sorted(slices.Values(ds)) {
			b, _ := slices.BinarySearch(metrics.Bounds, d)
			lo, hi := 0.0, math.Inf(1)
			if b > 0 {
				lo = ms(metrics.Bounds[b-1])
			}
			if b < len(metrics.Bounds) {
				hi = ms(metrics.Bounds[b])
			}
			if vs[i] < lo || vs[i] > hi {
				t.Errorf("%v: value %v outside the bucket (%v, %v] of %v", ds, vs[i], lo, hi, d)
			}
		}
	}
	if vs := observations(metrics.HistSnapshot{}); vs != nil {
		t.Errorf("empty histogram: %v", vs)
	}
}
