// Package emf writes a worker's metrics as CloudWatch Embedded Metric
// Format (EMF) documents: JSON log lines from which CloudWatch Logs
// extracts metrics, with no API call. It is what the scheduled poller
// function writes at the end of each invocation: on Lambda, a JSON line on
// stdout is enough (the function needs no CloudWatch permission).
//
// The documents follow the EMF specification
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
// each line is one JSON object with an "_aws" member holding Timestamp
// (milliseconds since the epoch, the snapshot's time) and one
// MetricDirective {Namespace, Dimensions: [[names]], Metrics: [{Name, Unit}]};
// the dimension values and the metric values are members of the root
// object. The names, units and dimensions are those of telemetry.Points;
// the namespace is the application name (as the KCL's). The values are
// those of telemetry.Interval: counters as the increase between the two
// snapshots, gauges as the current value.
//
// Histograms (the .Time metrics) are written as arrays of values, the one
// form of many values the specification defines: "A metric target MUST be
// a numeric value or an array of numeric values. Numeric array metric
// targets MUST NOT have more than 100 members." (The Values/Counts and
// Min/Max/Sum/Count objects that the CloudWatch agent's EMF output uses are
// not in the specification, and PutMetricData's StatisticValues have no EMF
// form.) The histogram keeps bucket counts, not the durations, so each
// observation is written as a value inside its bucket: the count is exact,
// the values sit at the same fraction of every bucket's width, chosen so
// that they add up to the exact sum (so Average and Sum are exact), and the
// largest one is the histogram's Max when Max lies in the top bucket
// (always on the function, whose snapshots start at zero): percentiles are
// as good as the buckets. Values are in milliseconds to the microsecond.
//
// Limits of the specification, kept here: at most 100 metrics per
// directive (MaxMetrics), at most 100 values per array (MaxValues), at
// most 30 dimensions per dimension set (MaxDimensions). Metrics with
// different dimension values go on different lines (a root member holds one
// value); a histogram with more than 100 observations continues on further
// lines with the same dimensions, each carrying the next 100 values of
// each such histogram (and nothing else, so nothing is counted twice).
// Gauges that share an identity (several shards without the ShardId
// dimension) are written as one array, one value per shard.
package emf
