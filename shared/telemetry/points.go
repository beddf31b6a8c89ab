package telemetry

import (
	"strings"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/metrics"
)

// Units, as CloudWatch names them.
const (
	Count        = "Count"
	Milliseconds = "Milliseconds"
	Bytes        = "Bytes"
)

// Kind is how a point's value reads.
type Kind int

const (
	// Counter: a cumulative count; backends that send deltas subtract the
	// previous snapshot's value.
	Counter Kind = iota
	// Gauge: a value now.
	Gauge
	// Histogram: durations, in Hist.
	Histogram
)

// Operations, the KCL's Operation dimension.
const (
	OpProcessTask    = "ProcessTask"    // per shard: reading and handling records
	OpRenewAllLeases = "RenewAllLeases" // the worker's lease renewals
	OpTakeLeases     = "TakeLeases"     // the worker's lease taking
	OpCheckpoint     = "Checkpoint"     // checkpoint writes
	OpWorker         = "Worker"         // the worker's gauges
	OpEventSource    = "EventSourceMapping"
)

// Point is one metric's value in a snapshot.
type Point struct {
	Name  string
	Help  string // what it is, with the KCL or Lambda name it corresponds to
	Unit  string
	Kind  Kind
	Value float64              // Counter or Gauge
	Hist  metrics.HistSnapshot // Histogram
	Dims  map[string]string    // the enabled dimensions only
}

// Points lists the metrics of s at its level, with the enabled dimensions:
// nothing at NONE; the worker's metrics and the shards' summed (without
// ShardId) at SUMMARY; per shard at DETAILED.
func Points(s coordinator.Snapshot, dims metrics.Dimensions) []Point {
	if s.Level == metrics.None {
		return nil
	}
	var out []Point
	// With several streams, a shard's points carry its own stream (always:
	// shard ids repeat across streams) and its shard id alone.
	streamOf := map[string]string{}
	for _, sh := range s.Shards {
		if sh.StreamName != "" {
			streamOf[sh.ShardID] = sh.StreamName
		}
	}
	dim := func(op, shard string) map[string]string {
		d := map[string]string{}
		if dims.Has(metrics.Operation) && op != "" {
			d[metrics.Operation] = op
		}
		streamName := s.StreamName
		if sn, ok := streamOf[shard]; ok {
			streamName = sn
			shard = shard[strings.LastIndex(shard, ":")+1:]
			d[metrics.StreamName] = sn
		}
		if dims.Has(metrics.ShardID) && shard != "" {
			d[metrics.ShardID] = shard
		}
		if dims.Has(metrics.WorkerIdentifier) {
			d[metrics.WorkerIdentifier] = s.WorkerID
		}
		if dims.Has(metrics.StreamName) {
			d[metrics.StreamName] = streamName
		}
		return d
	}
	add := func(name, help, unit string, kind Kind, v float64, op, shard string) {
		out = append(out, Point{Name: name, Help: help, Unit: unit, Kind: kind, Value: v, Dims: dim(op, shard)})
	}
	hist := func(name, help string, h metrics.HistSnapshot, op, shard string) {
		out = append(out, Point{Name: name, Help: help, Unit: Milliseconds, Kind: Histogram, Hist: h, Dims: dim(op, shard)})
	}

	// The worker's (KCL).
	add("CurrentLeases", "leases held now (KCL CurrentLeases)", Count, Gauge, float64(s.CurrentLeases), OpWorker, "")
	add("TakenLeases", "leases taken (KCL TakenLeases)", Count, Counter, float64(s.TakenLeases), OpTakeLeases, "")
	add("LostLeases", "leases lost to another worker or expired (KCL LostLeases)", Count, Counter, float64(s.LostLeases), OpRenewAllLeases, "")
	hist("RenewAllLeases.Time", "one round of lease renewals (KCL RenewAllLeases.Time)", s.RenewAllLeases, OpRenewAllLeases, "")
	add("CheckpointWrites", "checkpoints written", Count, Counter, float64(s.CheckpointWrites), OpCheckpoint, "")
	add("CheckpointFailures", "checkpoint writes that failed (and will be retried)", Count, Counter, float64(s.CheckpointFailures), OpCheckpoint, "")
	add("ParkedShards", "shards parked in the lease table: they could not go on", Count, Gauge, float64(s.ParkedShards), OpWorker, "")
	add("UnownedShards", "readable shards with no live owner after the last lease round (none may take them when every worker is at its -max-leases)", Count, Gauge, float64(s.UnownedShards), OpWorker, "")

	shards := s.Shards
	if s.Level == metrics.Summary {
		shards = []coordinator.ShardStats{sum(s.Shards)}
	}
	for _, sh := range shards {
		id := sh.ShardID
		d := sh.Dispatch
		// KCL's, per shard (operation ProcessTask).
		add("RecordsProcessed", "user records the handler finished with (KCL RecordsProcessed)", Count, Counter, float64(d.Handled), OpProcessTask, id)
		add("DataBytesProcessed", "bytes of the records handled (KCL DataBytesProcessed)", Bytes, Counter, float64(d.HandledBytes), OpProcessTask, id)
		// Lag is a gauge: a shard whose lease went (to another worker, or
		// ended) has none (the worker sets it to -1), or an alarm on it
		// would fire forever after a rebalance. Counters stay.
		if sh.MillisBehindLatest >= 0 {
			add("MillisBehindLatest", "how far the last read was behind the tip (KCL MillisBehindLatest)", Milliseconds, Gauge, float64(sh.MillisBehindLatest), OpProcessTask, id)
		}
		add("ExpiredIterator", "shard iterators that expired (KCL ExpiredIterator)", Count, Counter, float64(sh.Fetch.ExpiredIterators), OpProcessTask, id)
		hist("RecordProcessor.processRecords.Time", "handler calls (KCL RecordProcessor.processRecords.Time)", d.HandlerTime, OpProcessTask, id)
		add("KinesisDataFetcher.getRecords.Success", "GetRecords calls that succeeded (KCL KinesisDataFetcher.getRecords.Success)", Count, Counter, float64(sh.Fetch.GetRecords.Count), OpProcessTask, id)
		hist("KinesisDataFetcher.getRecords.Time", "GetRecords calls (KCL KinesisDataFetcher.getRecords.Time)", sh.Fetch.GetRecords, OpProcessTask, id)
		// Lambda's event source mapping's.
		if sh.MillisBehindLatest >= 0 {
			add("IteratorAge", "age of the last record read (Lambda IteratorAge)", Milliseconds, Gauge, float64(sh.MillisBehindLatest), OpEventSource, id)
		}
		add("PolledEventCount", "user records read, after de-aggregation (Lambda PolledEventCount)", Count, Counter, float64(sh.UserRecords), OpEventSource, id)
		add("FilteredOutEventCount", "user records the filter dropped (Lambda FilteredOutEventCount)", Count, Counter, float64(sh.FilteredOut), OpEventSource, id)
		add("InvokedEventCount", "user records handed to the handler, retries again (Lambda InvokedEventCount)", Count, Counter, float64(d.Records), OpEventSource, id)
		add("FailedInvokeEventCount", "user records in failed calls (Lambda FailedInvokeEventCount)", Count, Counter, float64(d.FailedRecords), OpEventSource, id)
		add("DroppedEventCount", "user records given up to the on-failure destination (Lambda DroppedEventCount)", Count, Counter, float64(d.GivenUp), OpEventSource, id)
		add("OnFailureDestinationDeliveredEventCount", "user records the on-failure destination accepted (Lambda OnFailureDestinationDeliveredEventCount)", Count, Counter, float64(d.GivenUp), OpEventSource, id)
		add("Errors", "failed handler calls (Lambda Errors)", Count, Counter, float64(d.Failures), OpEventSource, id)
		add("Throttles", "handler calls refused as throttled (Lambda Throttles)", Count, Counter, float64(d.Throttles), OpEventSource, id)
		add("DestinationDeliveryFailures", "sends the on-failure destination refused (Lambda DestinationDeliveryFailures)", Count, Counter, float64(d.DestinationFailures), OpEventSource, id)
		// Shardline's own.
		add("DeaggregatedRecords", "user records de-aggregated from Kinesis records", Count, Counter, float64(sh.UserRecords), OpProcessTask, id)
		add("MalformedAggregates", "KPL aggregates delivered whole because they were damaged", Count, Counter, float64(sh.Malformed), OpProcessTask, id)
		add("DroppedOutOfRange", "user records outside the shard's hash range, dropped as KCL drops them", Count, Counter, float64(sh.DroppedOutOfRange), OpProcessTask, id)
		if sh.Mode == fetch.ModeFanOut { // enhanced fan-out: the subscriptions
			add("SubscriptionStarts", "SubscribeToShard subscriptions started (the first, and after an error or a quiet one)", Count, Counter, float64(sh.Fetch.SubscriptionStarts), OpProcessTask, id)
			add("SubscriptionRenewals", "SubscribeToShard subscriptions renewed at their 5-minute end", Count, Counter, float64(sh.Fetch.SubscriptionRenewals), OpProcessTask, id)
			add("SubscriptionErrors", "SubscribeToShard calls refused and subscriptions ended by an error or silence", Count, Counter, float64(sh.Fetch.SubscriptionErrors), OpProcessTask, id)
		}
	}
	return out
}

// sum adds up the shards' stats into one, for SUMMARY (MillisBehindLatest
// is the largest).
func sum(all []coordinator.ShardStats) coordinator.ShardStats {
	t := coordinator.ShardStats{MillisBehindLatest: -1}
	for _, s := range all {
		t.MillisBehindLatest = max(t.MillisBehindLatest, s.MillisBehindLatest)
		t.KinesisRecords += s.KinesisRecords
		t.UserRecords += s.UserRecords
		t.Malformed += s.Malformed
		t.DroppedOutOfRange += s.DroppedOutOfRange
		t.FilteredOut += s.FilteredOut
		t.Dispatch = t.Dispatch.Add(s.Dispatch)
		t.Fetch = t.Fetch.Add(s.Fetch)
		if s.Mode == fetch.ModeFanOut {
			t.Mode = s.Mode
		}
	}
	return t
}
