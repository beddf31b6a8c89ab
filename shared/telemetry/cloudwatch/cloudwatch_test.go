package cloudwatch

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/testwait"
)

func hist(ds ...time.Duration) metrics.HistSnapshot {
	var h metrics.Hist
	for _, d := range ds {
		h.Observe(d)
	}
	return h.Snapshot()
}

// worker is a worker that read n shards, handling handled records each.
func worker(n int, handled int64, calls ...time.Duration) coordinator.Snapshot {
	s := coordinator.Snapshot{Time: time.Now(), WorkerID: "worker-1", StreamName: "words", AppName: "words-app", CurrentLeases: int64(n)}
	for i := range n {
		s.Shards = append(s.Shards, coordinator.ShardStats{ShardID: fmt.Sprintf("shardId-%012d", i), MillisBehindLatest: 100,
			Dispatch: dispatch.Stats{Handled: handled, HandlerTime: hist(calls...)}})
	}
	return s
}

// snapshots returns the given snapshots one per call, then the last again.
func snapshots(all ...coordinator.Snapshot) func() coordinator.Snapshot {
	var mu sync.Mutex
	return func() coordinator.Snapshot {
		mu.Lock()
		defer mu.Unlock()
		s := all[0]
		if len(all) > 1 {
			all = all[1:]
		}
		return s
	}
}

func datum(data []types.MetricDatum, name, shard string) *types.MetricDatum {
	for i, d := range data {
		if aws.ToString(d.MetricName) != name {
			continue
		}
		for _, dim := range d.Dimensions {
			if aws.ToString(dim.Name) == metrics.ShardID && aws.ToString(dim.Value) == shard {
				return &data[i]
			}
		}
	}
	return nil
}

// TestData: counters as increases, gauges as they are, histograms as
// StatisticSets in milliseconds, each with the enabled dimensions.
func TestData(t *testing.T) {
	prev := worker(2, 10, 3*time.Millisecond)
	cur := worker(2, 25, 3*time.Millisecond, 7*time.Millisecond, 40*time.Millisecond)
	data := Data(prev, cur, metrics.DefaultDimensions)
	rp := datum(data, "RecordsProcessed", "shardId-000000000001")
	if rp == nil || aws.ToFloat64(rp.Value) != 15 || rp.Unit != types.StandardUnitCount || !rp.Timestamp.Equal(cur.Time) {
		t.Fatalf("RecordsProcessed = %+v, want 15 Count at the snapshot's time", rp)
	}
	var names []string
	for _, d := range rp.Dimensions {
		names = append(names, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
	}
	if got, want := strings.Join(names, ","), "Operation=ProcessTask,ShardId=shardId-000000000001,WorkerIdentifier=worker-1"; got != want {
		t.Errorf("dimensions %s, want %s", got, want)
	}
	pt := datum(data, "RecordProcessor.processRecords.Time", "shardId-000000000000")
	if pt == nil || pt.StatisticValues == nil || pt.Value != nil || pt.Unit != types.StandardUnitMilliseconds {
		t.Fatalf("processRecords.Time = %+v, want a StatisticSet in Milliseconds", pt)
	}
	if st := pt.StatisticValues; *st.SampleCount != 2 || *st.Sum != 47 || *st.Minimum != 5 || *st.Maximum != 40 {
		t.Errorf("processRecords.Time = count %v sum %v min %v max %v; want 2, 47, 5 (the 5–10ms bucket's lower bound), 40",
			*st.SampleCount, *st.Sum, *st.Minimum, *st.Maximum)
	}
	if d := datum(Data(cur, cur, metrics.DefaultDimensions), "RecordProcessor.processRecords.Time", "shardId-000000000000"); d != nil {
		t.Errorf("a histogram without observations in the interval was sent: %+v", d)
	}
	none := cur
	none.Level = metrics.None
	if d := Data(prev, none, metrics.DefaultDimensions); len(d) != 0 {
		t.Errorf("NONE gave %d data", len(d))
	}
}

func TestStatistics(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		h                     metrics.HistSnapshot
		count, sum, min, maxi float64
	}{
		{"one bucket", hist(3*time.Millisecond, 4*time.Millisecond), 2, 7, 2, 4},
		{"first bucket", hist(500 * time.Microsecond), 1, 0.5, 0, 0.5},
		{"above the bounds", hist(2 * time.Minute), 1, 120000, 60000, 120000},
		// Max seen in an earlier interval (70ms): the interval's highest
		// bucket bounds it (5–10ms).
		{"earlier max", hist(70*time.Millisecond, 8*time.Millisecond).Sub(hist(70 * time.Millisecond)), 1, 8, 5, 10},
	} {
		st := Statistics(tt.h)
		if st == nil || *st.SampleCount != tt.count || *st.Sum != tt.sum || *st.Minimum != tt.min || *st.Maximum != tt.maxi {
			t.Errorf("%s: %+v, want count %v sum %v min %v max %v", tt.name, st, tt.count, tt.sum, tt.min, tt.maxi)
		}
	}
	if st := Statistics(metrics.HistSnapshot{}); st != nil {
		t.Errorf("empty histogram: %+v", st)
	}
}

// fakeClient records the calls; block makes each call wait for its
// context.
type fakeClient struct {
	mu    sync.Mutex
	calls []int // metric data per call
	block bool
	begun atomic.Int64
}

func (f *fakeClient) PutMetricData(ctx context.Context, in *cw.PutMetricDataInput, _ ...func(*cw.Options)) (*cw.PutMetricDataOutput, error) {
	f.begun.Add(1)
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, len(in.MetricData))
	return &cw.PutMetricDataOutput{}, nil
}

// started starts a publisher with manual ticks; each send's outcome comes
// on the returned channel.
func started(t *testing.T, cfg Config) (*Publisher, chan<- time.Time, <-chan error) {
	t.Helper()
	ticks := make(chan time.Time)
	sent := make(chan error, 10)
	cfg.ticks = ticks
	cfg.flushed = func(_ int, err error) { sent <- err }
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p, ticks, sent
}

// TestBatches: a send of 2,287 values takes three calls of at most 1,000;
// the last send at Stop sends what came since.
func TestBatches(t *testing.T) {
	f := &fakeClient{}
	// 120 shards at DETAILED: 7 worker metrics (RenewAllLeases.Time has
	// no observation) and 19 per shard (nor has getRecords.Time): 2,287
	// data; then 2,167 (no handler call since).
	p, ticks, sent := started(t, Config{Client: f, Snapshot: snapshots(worker(0, 0), worker(120, 5, time.Millisecond), worker(120, 9, time.Millisecond)), Dimensions: metrics.DefaultDimensions})
	ticks <- time.Now()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	p.Stop()
	<-sent
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := fmt.Sprint(f.calls); got != "[1000 1000 287 1000 1000 167]" {
		t.Errorf("calls of %s data; want [1000 1000 287] at the tick and [1000 1000 167] at Stop", got)
	}
}

// TestNeverBlocks: with an endpoint that never answers, Start returns at
// once (before any call ends), and Stop returns after the last send's
// bound; the worker's side (Snapshot) is never held.
func TestNeverBlocks(t *testing.T) {
	f := &fakeClient{block: true}
	var reads atomic.Int64
	snap := func() coordinator.Snapshot { reads.Add(1); return worker(1, 1) }
	p, ticks, sent := started(t, Config{Client: f, Snapshot: snap, Interval: time.Hour, FlushTimeout: 300 * time.Millisecond})
	ticks <- time.Now() // the send is now stuck in a call
	testwait.Until(t, 5*time.Second, "the first call", func() bool { return f.begun.Load() == 1 })
	begin := time.Now()
	p.Stop()
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("Stop took %s with an endpoint that does not answer, want about the flush timeout (300ms)", took)
	}
	if err := <-sent; err == nil {
		t.Error("the stuck call reported no error")
	}
	if n := reads.Load(); n != 3 {
		t.Errorf("%d snapshots read, want 3 (start, tick, stop)", n)
	}
}

// TestFailingEndpointLoggedOnce: an endpoint that fails is logged once per
// failure streak at WARN, and its recovery once at INFO.
func TestFailingEndpointLoggedOnce(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"__type":"InternalServiceFault","message":"down"}`))
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	cfg := standin.Config()
	cfg.BaseEndpoint = aws.String(srv.URL)
	client := NewClient(cfg, func(o *cw.Options) { o.RetryMaxAttempts = 1 })
	var log strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &log, mu: &mu}, nil))
	_, ticks, sent := started(t, Config{Client: client, Snapshot: snapshots(worker(1, 1)), Logger: logger})
	tick := func(wantErr bool) {
		t.Helper()
		ticks <- time.Now()
		if err := <-sent; (err != nil) != wantErr {
			t.Fatalf("send: %v, want an error: %v", err, wantErr)
		}
	}
	for range 3 {
		tick(true)
	}
	failing.Store(false)
	tick(false)
	tick(false)
	failing.Store(true)
	tick(true)
	tick(true)
	mu.Lock()
	out := log.String()
	mu.Unlock()
	if w, i := strings.Count(out, "level=WARN"), strings.Count(out, "level=INFO"); w != 2 || i != 1 {
		t.Fatalf("%d WARN and %d INFO lines, want 2 (one per failure streak) and 1 (the recovery):\n%s", w, i, out)
	}
	if !strings.Contains(out, "InternalServiceFault") || !strings.Contains(out, "namespace=words-app") {
		t.Errorf("the warning does not say what failed:\n%s", out)
	}
}

type lockedWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestStartChecks(t *testing.T) {
	for _, cfg := range []Config{
		{Snapshot: snapshots(worker(1, 1))},
		{Client: &fakeClient{}},
		{Client: &fakeClient{}, Snapshot: snapshots(coordinator.Snapshot{})}, // no namespace
		{Client: &fakeClient{}, Snapshot: snapshots(worker(1, 1)), Interval: -time.Second},
	} {
		if p, err := Start(context.Background(), cfg); err == nil {
			p.Stop()
			t.Errorf("Start(%+v): no error", cfg)
		}
	}
}
