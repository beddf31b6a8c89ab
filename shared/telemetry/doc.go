// Package telemetry names the metrics every backend publishes, from the
// core's cumulative coordinator.Snapshot: the names people already alarm
// on — the KCL's (RecordsProcessed, MillisBehindLatest, CurrentLeases, …)
// and those of Lambda's event source mapping (IteratorAge,
// PolledEventCount, DroppedEventCount, …) — plus Shardline's own. Points
// is the one table the backends share (Prometheus in prom, CloudWatch
// Embedded Metric Format in emf, PutMetricData in cloudwatch), so a metric
// has the same name, unit and dimensions everywhere. The level and the
// enabled dimensions apply here, as in KCL: at SUMMARY the shard metrics
// are summed over the worker's shards without the ShardId dimension.
package telemetry
