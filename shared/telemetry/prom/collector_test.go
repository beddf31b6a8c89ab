package prom

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry"
)

// fakeWorker is a worker that always has the same snapshot.
type fakeWorker struct{ snap coordinator.Snapshot }

func (f fakeWorker) Snapshot() coordinator.Snapshot { return f.snap }

func hist(ds ...time.Duration) metrics.HistSnapshot {
	var h metrics.Hist
	for _, d := range ds {
		h.Observe(d)
	}
	return h.Snapshot()
}

func snapshot(level metrics.Level) coordinator.Snapshot {
	return coordinator.Snapshot{
		WorkerID: "w1", StreamName: "orders", Level: level, Ready: true,
		CurrentLeases: 2, TakenLeases: 3, LostLeases: 1, CheckpointWrites: 9,
		RenewAllLeases: hist(3 * time.Millisecond),
		Shards: []coordinator.ShardStats{
			{
				ShardID: "shardId-000000000000", MillisBehindLatest: 10, UserRecords: 5,
				Dispatch: dispatch.Stats{Handled: 5, HandledBytes: 50, Records: 6,
					HandlerTime: hist(500*time.Microsecond, time.Millisecond, 7*time.Millisecond, 2*time.Minute)},
				Fetch: fetch.Stats{GetRecords: hist(20 * time.Millisecond)},
			},
			{ShardID: "shardId-000000000001", MillisBehindLatest: 40, UserRecords: 7, Dispatch: dispatch.Stats{Handled: 7},
				Mode: fetch.ModeFanOut, Fetch: fetch.Stats{SubscriptionStarts: 1, SubscriptionRenewals: 2}},
		},
	}
}

// gather collects the fake worker's metrics through a registry, as a
// scrape does, by name.
func gather(t *testing.T, snap coordinator.Snapshot, dims metrics.Dimensions) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewCollector(fakeWorker{snap}, dims)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"RecordsProcessed":                        "records_processed",
		"KinesisDataFetcher.getRecords.Time":      "kinesis_data_fetcher_get_records_time",
		"RecordProcessor.processRecords.Time":     "record_processor_process_records_time",
		"OnFailureDestinationDeliveredEventCount": "on_failure_destination_delivered_event_count",
		"ShardId":          "shard_id",
		"WorkerIdentifier": "worker_identifier",
		"KCLVersion":       "kcl_version",
		"Get2Records":      "get2_records",
	} {
		if got := SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCollectorNamesTypesLabels(t *testing.T) {
	mfs := gather(t, snapshot(metrics.Detailed), metrics.DefaultDimensions)
	cases := []struct {
		name   string
		typ    dto.MetricType
		series int
		help   string
	}{
		{"shardline_records_processed_total", dto.MetricType_COUNTER, 2, "KCL RecordsProcessed"},
		{"shardline_data_bytes_processed_total", dto.MetricType_COUNTER, 2, "KCL DataBytesProcessed"},
		{"shardline_current_leases", dto.MetricType_GAUGE, 1, "KCL CurrentLeases"},
		{"shardline_millis_behind_latest", dto.MetricType_GAUGE, 2, "KCL MillisBehindLatest"},
		{"shardline_iterator_age_milliseconds", dto.MetricType_GAUGE, 2, "Lambda IteratorAge"},
		{"shardline_kinesis_data_fetcher_get_records_time_seconds", dto.MetricType_HISTOGRAM, 2, "KCL KinesisDataFetcher.getRecords.Time"},
		{"shardline_kinesis_data_fetcher_get_records_success_total", dto.MetricType_COUNTER, 2, "KCL KinesisDataFetcher.getRecords.Success"},
		{"shardline_record_processor_process_records_time_seconds", dto.MetricType_HISTOGRAM, 2, "KCL RecordProcessor.processRecords.Time"},
		{"shardline_renew_all_leases_time_seconds", dto.MetricType_HISTOGRAM, 1, "KCL RenewAllLeases.Time"},
		{"shardline_on_failure_destination_delivered_event_count_total", dto.MetricType_COUNTER, 2, "Lambda OnFailureDestinationDeliveredEventCount"},
	}
	for _, c := range cases {
		mf, ok := mfs[c.name]
		if !ok {
			t.Errorf("no %s", c.name)
			continue
		}
		if mf.GetType() != c.typ || len(mf.GetMetric()) != c.series || !strings.Contains(mf.GetHelp(), c.help) {
			t.Errorf("%s: type %v, %d series, help %q; want %v, %d, help naming %q", c.name, mf.GetType(), len(mf.GetMetric()), mf.GetHelp(), c.typ, c.series, c.help)
		}
	}
	// Every point has its family, and every family a point.
	want := map[string]bool{}
	for _, p := range telemetry.Points(snapshot(metrics.Detailed), metrics.DefaultDimensions) {
		want[Name(p)] = true
	}
	if len(mfs) != len(want) {
		t.Errorf("%d families, want %d (one per point name)", len(mfs), len(want))
	}

	rp := mfs["shardline_records_processed_total"].GetMetric()
	got := map[string]float64{}
	for _, m := range rp {
		l := labels(m)
		if l["operation"] != telemetry.OpProcessTask || l["worker_identifier"] != "w1" || len(l) != 3 {
			t.Errorf("records processed labels %v, want operation, shard_id and worker_identifier", l)
		}
		got[l["shard_id"]] = m.GetCounter().GetValue()
	}
	if got["shardId-000000000000"] != 5 || got["shardId-000000000001"] != 7 {
		t.Errorf("records processed by shard = %v, want 5 and 7", got)
	}
	cl := mfs["shardline_current_leases"].GetMetric()[0]
	if l := labels(cl); l["operation"] != telemetry.OpWorker || l["worker_identifier"] != "w1" || len(l) != 2 || cl.GetGauge().GetValue() != 2 {
		t.Errorf("current leases = %v %v, want 2 with operation Worker and worker_identifier w1", l, cl.GetGauge().GetValue())
	}
}

func TestCollectorHistogram(t *testing.T) {
	mfs := gather(t, snapshot(metrics.Detailed), metrics.DefaultDimensions)
	var h *dto.Histogram
	for _, m := range mfs["shardline_record_processor_process_records_time_seconds"].GetMetric() {
		if labels(m)["shard_id"] == "shardId-000000000000" {
			h = m.GetHistogram()
		}
	}
	if h == nil {
		t.Fatal("no handler-time histogram for shardId-000000000000")
	}
	// 0.5 ms, 1 ms, 7 ms and 2 min.
	if h.GetSampleCount() != 4 {
		t.Errorf("count %d, want 4", h.GetSampleCount())
	}
	if want := (500*time.Microsecond + time.Millisecond + 7*time.Millisecond + 2*time.Minute).Seconds(); math.Abs(h.GetSampleSum()-want) > 1e-9 {
		t.Errorf("sum %v s, want %v", h.GetSampleSum(), want)
	}
	bs := h.GetBucket()
	if len(bs) != len(metrics.Bounds) {
		t.Fatalf("%d buckets, want %d (the bounds of shared/metrics; +Inf is the count)", len(bs), len(metrics.Bounds))
	}
	want := map[float64]uint64{0.001: 2, 0.002: 2, 0.005: 2, 0.01: 3, 30: 3, 60: 3}
	for i, b := range bs {
		if b.GetUpperBound() != metrics.Bounds[i].Seconds() {
			t.Errorf("bucket %d bound %v, want %v s", i, b.GetUpperBound(), metrics.Bounds[i].Seconds())
		}
		if i > 0 && b.GetCumulativeCount() < bs[i-1].GetCumulativeCount() {
			t.Errorf("bucket %v: %d, below the one before: not cumulative", b.GetUpperBound(), b.GetCumulativeCount())
		}
		if w, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
}

func TestCollectorLevelsAndDimensions(t *testing.T) {
	if mfs := gather(t, snapshot(metrics.None), metrics.DefaultDimensions); len(mfs) != 0 {
		t.Errorf("NONE: %d families, want none", len(mfs))
	}
	mfs := gather(t, snapshot(metrics.Summary), metrics.Dimensions{metrics.Operation, metrics.ShardID, metrics.StreamName})
	rp := mfs["shardline_records_processed_total"].GetMetric()
	if len(rp) != 1 {
		t.Fatalf("SUMMARY: %d records processed series, want 1", len(rp))
	}
	if l := labels(rp[0]); len(l) != 2 || l["stream_name"] != "orders" || l["operation"] != telemetry.OpProcessTask || rp[0].GetCounter().GetValue() != 12 {
		t.Errorf("SUMMARY records processed %v = %v, want 12 with operation and stream_name only", l, rp[0].GetCounter().GetValue())
	}
	if h := mfs["shardline_record_processor_process_records_time_seconds"].GetMetric(); len(h) != 1 || h[0].GetHistogram().GetSampleCount() != 4 {
		t.Errorf("SUMMARY handler time = %v, want one histogram of 4", h)
	}
}

// TestHandlerNone: at level NONE, /metrics has the Go runtime's and the
// process's metrics and nothing of Shardline's.
func TestHandlerNone(t *testing.T) {
	for _, c := range []struct {
		level metrics.Level
		want  bool
	}{{metrics.None, false}, {metrics.Detailed, true}} {
		h, err := Handler(fakeWorker{snapshot(c.level)}, metrics.DefaultDimensions)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		body := string(b)
		if !strings.Contains(body, "go_goroutines ") || !strings.Contains(body, "process_") {
			t.Errorf("%v: /metrics lacks the Go or process metrics:\n%s", c.level, body)
		}
		if got := strings.Contains(body, "shardline_"); got != c.want {
			t.Errorf("%v: shardline_ metrics present = %v, want %v", c.level, got, c.want)
		}
	}
}

// table is the mapping the package doc shows: every point's name, its
// Prometheus name and type, in the order of telemetry.Points.
func table() string {
	var b strings.Builder
	seen := map[string]bool{}
	kinds := map[telemetry.Kind]string{telemetry.Counter: "counter", telemetry.Gauge: "gauge", telemetry.Histogram: "histogram"}
	for _, p := range telemetry.Points(snapshot(metrics.Detailed), metrics.AllDimensions) {
		if seen[p.Name] {
			continue
		}
		seen[p.Name] = true
		fmt.Fprintf(&b, "//\t%-40s %-62s %s\n", p.Name, Name(p), kinds[p.Kind])
	}
	return b.String()
}

// TestDocTable: the table in doc.go is the one the code makes
// (SHARDLINE_UPDATE_DOC=1 rewrites it).
func TestDocTable(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "//\tpoint name", "//\n// # Labels"
	s := string(doc)
	i := strings.Index(s, begin)
	j := strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("doc.go lacks the table between %q and %q", begin, end)
	}
	i += strings.IndexByte(s[i:], '\n') + 1
	want := table()
	if got := s[i:j]; got != want {
		if os.Getenv("SHARDLINE_UPDATE_DOC") == "1" {
			if err := os.WriteFile("doc.go", []byte(s[:i]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("doc.go's table is out of date (SHARDLINE_UPDATE_DOC=1 go test -run TestDocTable rewrites it); want:\n%s", want)
	}
	for _, d := range metrics.AllDimensions {
		if !strings.Contains(strings.ReplaceAll(s, "\n// ", " "), d+" → "+SnakeCase(d)) {
			t.Errorf("doc.go does not give the label of %s (%s)", d, SnakeCase(d))
		}
	}
}
