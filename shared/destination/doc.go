// Package destination turns an -on-failure value into the on-failure
// destination it names: where a batch the dispatcher gives up is sent
// before its checkpoint may pass it.
//
//	https://sqs.<region>.amazonaws.com/<account>/<queue>   SQS queue URL   (sqsdest)
//	arn:aws:sqs:<region>:<account>:<queue>                 SQS queue ARN   (sqsdest)
//	arn:aws:sns:<region>:<account>:<topic>                 SNS topic ARN   (snsdest)
//	s3://<bucket>/<prefix>                                 S3 location     (s3dest)
//	file:///<path>                                         JSON lines file (filedest)
//
// Every destination writes, per batch given up, the invocation record
// Lambda's Kinesis event source mapping writes to its on-failure
// destinations (requestContext with condition RetryAttemptsExhausted or
// RecordAgeExceeded — or Shardline's RecordTooLarge — and
// approximateInvokeCount; responseContext; version; timestamp;
// KinesisBatchInfo with the shard, the first and last sequence numbers
// and arrival times, batchSize and streamArn), and, beyond Lambda, the
// records themselves in "records": sequenceNumber, subSequenceNumber,
// partitionKey, explicitHashKey when set, approximateArrivalTimestamp and
// data (base64). S3 objects also carry Lambda's "payload", the event the
// function was given. Package record writes the record and says the
// exact shape; each backend's package says how it sends it:
//
//   - SQS and SNS: one message holding the record when it fits 256 KiB,
//     else several, each with the batch's fields, "part" n of "parts"
//     and a share of the records in order (a record too large for a
//     message alone goes in chunks, with dataOffset and dataSize). FIFO
//     queues and topics get the shard id as MessageGroupId and a
//     MessageDeduplicationId per message.
//   - S3: one object per batch, keys in Lambda's layout with the app in
//     place of the mapping's UUID:
//     <prefix>/<app>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>.
//   - file: one line per batch, appended and synced; a new file has mode
//     0600.
//
// A Send returns only once the service (or the file system) has accepted
// everything; an error names the destination and what failed, and the
// shard parks: nothing is skipped. Every destination is safe for
// concurrent use: the dispatchers of several shards send at once.
//
// One package per backend, as litestream keeps one per replica client:
// each holds its parsing, its one SDK call behind a one-method interface,
// and its tests against moto_server; this package only reads the form and
// wires the backend to its client. Parse makes no AWS call: a destination
// that does not exist shows on its first Send.
package destination
