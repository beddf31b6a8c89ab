package telemetry

import (
	"slices"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/metrics"
)

// TestInterval: counters as increases, histograms as the observations
// since the previous snapshot, gauges as they are now; a zero previous
// snapshot gives everything.
func TestInterval(t *testing.T) {
	prev := snapshot(metrics.Detailed)
	cur := snapshot(metrics.Detailed)
	cur.CurrentLeases = 3
	cur.TakenLeases = 4
	var h metrics.Hist
	h.Observe(3 * time.Millisecond)
	h.Observe(40 * time.Millisecond)
	cur.Shards[0].Dispatch.Handled = 9
	cur.Shards[0].Dispatch.HandlerTime = h.Snapshot()

	ps := Interval(prev, cur, metrics.DefaultDimensions)
	if rp := find(ps, "RecordsProcessed"); len(rp) != 2 || rp[0].Value != 4 || rp[1].Value != 0 {
		t.Errorf("RecordsProcessed = %+v, want 4 (9-5) for shard 0 and 0 for shard 1", rp)
	}
	if cl := find(ps, "CurrentLeases"); len(cl) != 1 || cl[0].Value != 3 {
		t.Errorf("CurrentLeases = %+v, want the gauge's value now, 3", cl)
	}
	if tl := find(ps, "TakenLeases"); len(tl) != 1 || tl[0].Value != 4 {
		t.Errorf("TakenLeases = %+v, want 4 (from 0)", tl)
	}
	pt := find(ps, "RecordProcessor.processRecords.Time")
	if len(pt) != 2 || pt[0].Hist.Count != 1 || pt[0].Hist.Sum != 40*time.Millisecond || pt[0].Hist.Max != 40*time.Millisecond {
		t.Errorf("processRecords.Time shard 0 = %+v, want the one 40ms call since prev", pt[0].Hist)
	}

	all := Interval(coordinator.Snapshot{}, cur, metrics.DefaultDimensions)
	if rp := find(all, "RecordsProcessed"); len(rp) != 2 || rp[0].Value != 9 || rp[1].Value != 7 {
		t.Errorf("from a zero snapshot RecordsProcessed = %+v, want 9 and 7", rp)
	}
}

// TestIntervalMergesSameIdentity: at DETAILED without the ShardId
// dimension the shards' points share their identity: counters and
// histograms are added up (before the difference), gauges stay apart.
func TestIntervalMergesSameIdentity(t *testing.T) {
	dims := metrics.Dimensions{metrics.Operation}
	prev := snapshot(metrics.Detailed)
	cur := snapshot(metrics.Detailed)
	cur.Shards[1].Dispatch.Handled = 10 // was 7
	var h metrics.Hist
	h.Observe(time.Millisecond)
	cur.Shards[1].Dispatch.HandlerTime = h.Snapshot()
	cur.Shards = append(cur.Shards, coordinator.ShardStats{ShardID: "shardId-2", MillisBehindLatest: 5, Dispatch: dispatch.Stats{Handled: 2}})

	ps := Interval(prev, cur, dims)
	if rp := find(ps, "RecordsProcessed"); len(rp) != 1 || rp[0].Value != 5 {
		t.Errorf("RecordsProcessed = %+v, want one point of 5 (3 more on shard 1, 2 on the new shard 2)", rp)
	}
	if pt := find(ps, "RecordProcessor.processRecords.Time"); len(pt) != 1 || pt[0].Hist.Count != 1 {
		t.Errorf("processRecords.Time = %+v, want one point with the one new call", pt)
	}
	var behind []float64
	for _, p := range find(ps, "MillisBehindLatest") {
		behind = append(behind, p.Value)
	}
	if !slices.Equal(behind, []float64{10, 40, 5}) {
		t.Errorf("MillisBehindLatest values %v, want each shard's: [10 40 5]", behind)
	}
}

func TestDimensionNames(t *testing.T) {
	p := Point{Dims: map[string]string{metrics.WorkerIdentifier: "w", metrics.Operation: "op", metrics.StreamName: "s", metrics.ShardID: "x"}}
	if got, want := DimensionNames(p), metrics.AllDimensions; !slices.Equal(got, want) {
		t.Errorf("DimensionNames = %v, want %v", got, want)
	}
}
