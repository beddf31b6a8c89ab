// Package prom publishes a worker's metrics to Prometheus. Collector is a
// prometheus.Collector that, at each scrape, reads the worker's
// coordinator.Snapshot and turns telemetry.Points — the one table of
// metric names every backend shares — into constant metrics. Nothing runs
// on the worker's hot path for it: the core only fills its counters and
// histograms, as it does for every backend. Handler serves them with the Go
// runtime's and the process's metrics (go_*, process_*); at metrics level
// NONE, /metrics has only those. Serve is the poller's -metrics-addr
// endpoint: Handler at /metrics plus /healthz and /readyz (see
// shared/telemetry/httpserve).
//
// # Names
//
// A point's Prometheus name is "shardline_", then its name in snake case
// ("." and each change from lower to upper case become "_"), then:
//
//   - counters: "_total" (they are cumulative since the worker started);
//   - histograms: "_seconds", with the bucket bounds of shared/metrics
//     (1ms … 60s) in seconds, cumulative, plus +Inf;
//   - gauges: the unit when the name does not say it ("_milliseconds" for
//     IteratorAge; MillisBehindLatest keeps its name and its milliseconds,
//     so that it reads as KCL's).
//
// The help text is the point's, which names the KCL or Lambda metric it
// stands for. Every name:
//
//	point name                               Prometheus name                                                type
//	CurrentLeases                            shardline_current_leases                                       gauge
//	TakenLeases                              shardline_taken_leases_total                                   counter
//	LostLeases                               shardline_lost_leases_total                                    counter
//	RenewAllLeases.Time                      shardline_renew_all_leases_time_seconds                        histogram
//	CheckpointWrites                         shardline_checkpoint_writes_total                              counter
//	CheckpointFailures                       shardline_checkpoint_failures_total                            counter
//	ParkedShards                             shardline_parked_shards                                        gauge
//	UnownedShards                            shardline_unowned_shards                                       gauge
//	RecordsProcessed                         shardline_records_processed_total                              counter
//	DataBytesProcessed                       shardline_data_bytes_processed_total                           counter
//	MillisBehindLatest                       shardline_millis_behind_latest                                 gauge
//	ExpiredIterator                          shardline_expired_iterator_total                               counter
//	RecordProcessor.processRecords.Time      shardline_record_processor_process_records_time_seconds        histogram
//	KinesisDataFetcher.getRecords.Success    shardline_kinesis_data_fetcher_get_records_success_total       counter
//	KinesisDataFetcher.getRecords.Time       shardline_kinesis_data_fetcher_get_records_time_seconds        histogram
//	IteratorAge                              shardline_iterator_age_milliseconds                            gauge
//	PolledEventCount                         shardline_polled_event_count_total                             counter
//	FilteredOutEventCount                    shardline_filtered_out_event_count_total                       counter
//	InvokedEventCount                        shardline_invoked_event_count_total                            counter
//	FailedInvokeEventCount                   shardline_failed_invoke_event_count_total                      counter
//	DroppedEventCount                        shardline_dropped_event_count_total                            counter
//	OnFailureDestinationDeliveredEventCount  shardline_on_failure_destination_delivered_event_count_total   counter
//	Errors                                   shardline_errors_total                                         counter
//	Throttles                                shardline_throttles_total                                      counter
//	DestinationDeliveryFailures              shardline_destination_delivery_failures_total                  counter
//	DeaggregatedRecords                      shardline_deaggregated_records_total                           counter
//	MalformedAggregates                      shardline_malformed_aggregates_total                           counter
//	DroppedOutOfRange                        shardline_dropped_out_of_range_total                           counter
//	SubscriptionStarts                       shardline_subscription_starts_total                            counter
//	SubscriptionRenewals                     shardline_subscription_renewals_total                          counter
//	SubscriptionErrors                       shardline_subscription_errors_total                            counter
//
// # Labels
//
// A point's dimensions, enabled by -metrics-dimensions, are its labels, in
// snake case: Operation → operation, ShardId → shard_id, WorkerIdentifier →
// worker_identifier, StreamName → stream_name. The worker's metrics carry
// no shard_id; at SUMMARY no metric does (the shards' are summed, and
// MillisBehindLatest and IteratorAge are the largest of them).
package prom
