package telemetry

import (
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
