// Package cloudwatch publishes a worker's metrics with CloudWatch
// PutMetricData, for `poller run -metrics-cloudwatch`, as the KCL does:
// every 10 s (Config.Interval) it reads the worker's snapshot, takes the
// difference from the previous one (telemetry.Interval: counters as their
// increase, gauges as they are now) and sends it in calls of at most 1000
// metric data (MaxPerCall): one call per 1000 values per interval. The
// namespace is the application name; names, units and dimensions are
// those of telemetry.Points, at the worker's metrics level. Histograms (the
// .Time metrics) are sent as StatisticSets in milliseconds: SampleCount
// and Sum exact; Minimum the lower bound of the lowest bucket with
// observations in the interval; Maximum the snapshot's Max (the largest
// since the start), or the upper bound of the interval's highest bucket
// with observations when that is lower (Max was then seen in an earlier
// interval).
//
// The publisher runs in a goroutine of its own with a context of its own:
// the worker never waits for it, and a slow or failing CloudWatch never
// holds records back. A call that fails drops its metrics (they are not
// sent twice); the first failure of a streak is logged at WARN, the
// recovery at INFO with the count dropped. Stop, when the worker has
// stopped, sends what is left within Config.FlushTimeout (default 5 s).
//
// The client (NewClient) comes from awsconf.CloudWatchConfig, so
// -cloudwatch-role-arn applies; the endpoint is the SDK's own setting,
// AWS_ENDPOINT_URL_CLOUDWATCH. The caller needs cloudwatch:PutMetricData
// (it accepts no resource; the condition key cloudwatch:namespace can
// limit it to the app's namespace).
package cloudwatch
