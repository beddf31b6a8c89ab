package telemetry

import (
	"slices"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/metrics"
)

func snapshot(level metrics.Level) coordinator.Snapshot {
	var h metrics.Hist
	h.Observe(3 * time.Millisecond)
	return coordinator.Snapshot{
		WorkerID: "w1", StreamName: "s", Level: level, CurrentLeases: 2,
		Shards: []coordinator.ShardStats{
			{ShardID: "shardId-0", MillisBehindLatest: 10, UserRecords: 5, Dispatch: dispatch.Stats{Handled: 5, HandlerTime: h.Snapshot()}},
			{ShardID: "shardId-1", MillisBehindLatest: 40, UserRecords: 7, Dispatch: dispatch.Stats{Handled: 7}},
		},
	}
}

func find(ps []Point, name string) []Point {
	var out []Point
	for _, p := range ps {
		if p.Name == name {
			out = append(out, p)
		}
	}
	return out
}

func TestPointsLevels(t *testing.T) {
	if ps := Points(snapshot(metrics.None), metrics.DefaultDimensions); len(ps) != 0 {
		t.Errorf("NONE gave %d points", len(ps))
	}
	ps := Points(snapshot(metrics.Detailed), metrics.DefaultDimensions)
	rp := find(ps, "RecordsProcessed")
	if len(rp) != 2 || rp[0].Dims[metrics.ShardID] != "shardId-0" || rp[0].Dims[metrics.Operation] != OpProcessTask || rp[0].Dims[metrics.WorkerIdentifier] != "w1" {
		t.Errorf("DETAILED RecordsProcessed = %+v", rp)
	}
	if _, ok := rp[0].Dims[metrics.StreamName]; ok {
		t.Error("StreamName dimension not enabled but present")
	}
	ps = Points(snapshot(metrics.Summary), metrics.DefaultDimensions)
	rp = find(ps, "RecordsProcessed")
	if len(rp) != 1 || rp[0].Value != 12 || rp[0].Dims[metrics.ShardID] != "" {
		t.Errorf("SUMMARY RecordsProcessed = %+v, want one point of 12 without ShardId", rp)
	}
	if ia := find(ps, "IteratorAge"); len(ia) != 1 || ia[0].Value != 40 {
		t.Errorf("SUMMARY IteratorAge = %+v, want the largest, 40", ia)
	}
	for _, name := range []string{"CurrentLeases", "TakenLeases", "LostLeases", "RenewAllLeases.Time", "CheckpointWrites", "CheckpointFailures", "ParkedShards",
		"DataBytesProcessed", "MillisBehindLatest", "ExpiredIterator", "RecordProcessor.processRecords.Time", "KinesisDataFetcher.getRecords.Success",
		"KinesisDataFetcher.getRecords.Time", "PolledEventCount", "FilteredOutEventCount", "InvokedEventCount", "FailedInvokeEventCount",
		"DroppedEventCount", "OnFailureDestinationDeliveredEventCount", "Errors", "Throttles", "DestinationDeliveryFailures",
		"DeaggregatedRecords", "MalformedAggregates", "DroppedOutOfRange"} {
		if len(find(ps, name)) == 0 {
			t.Errorf("no %s point", name)
		}
	}
}

// TestPointsSeveralStreams (issue 19): with several streams, each shard's
// points carry its own stream as StreamName (even when the dimension is
// not enabled: shard ids repeat across streams) and its shard id alone.
func TestPointsSeveralStreams(t *testing.T) {
	s := coordinator.Snapshot{WorkerID: "w1", StreamName: "orders,clicks", Level: metrics.Detailed, Shards: []coordinator.ShardStats{
		{ShardID: "123456789012:orders:1767366245:shardId-000000000000", StreamName: "orders", Dispatch: dispatch.Stats{Handled: 5}},
		{ShardID: "123456789012:clicks:1767366246:shardId-000000000000", StreamName: "clicks", Dispatch: dispatch.Stats{Handled: 7}},
	}}
	for _, dims := range []metrics.Dimensions{metrics.DefaultDimensions, append(slices.Clone(metrics.DefaultDimensions), metrics.StreamName)} {
		got := map[string]float64{}
		for _, p := range find(Points(s, dims), "RecordsProcessed") {
			if p.Dims[metrics.ShardID] != "shardId-000000000000" {
				t.Errorf("ShardId %q, want the shard id alone", p.Dims[metrics.ShardID])
			}
			got[p.Dims[metrics.StreamName]] = p.Value
		}
		if got["orders"] != 5 || got["clicks"] != 7 || len(got) != 2 {
			t.Errorf("dims %v: RecordsProcessed by StreamName %v, want orders 5, clicks 7", dims, got)
		}
	}
}
