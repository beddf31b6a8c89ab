// Package redrive takes records given up to an on-failure destination
// back and delivers them to a handler again: `poller redrive`.
//
// A Source lists the messages of one place -on-failure writes to (an SQS
// queue, an S3 prefix, a JSON lines file); Parse reads each message:
//
//   - Shardline's own on-failure record (package
//     shared/destination/record): it carries the user records, whole or,
//     for a record too large for one message, in chunks joined here;
//   - Lambda's on-failure record of an SQS or SNS destination: metadata
//     only (KinesisBatchInfo: shard, first and last sequence numbers),
//     whose records are read back from the stream with a RangeReader;
//   - Lambda's on-failure object of an S3 destination: the "payload", the
//     event the function was given, its records de-aggregated as a
//     reader would;
//   - any of them inside an SNS envelope (an SQS queue subscribed to the
//     topic without raw message delivery).
//
// Run gathers the records per shard, drops duplicates (the same record
// in two messages: a destination written twice), sorts each shard's
// records by sequence and sub-sequence number (so each partition key is
// in its original order) and hands them to a dispatch.Deliverer — the
// batching, partial failures, retries, bisect and on-failure destination
// of `run`. A message is cleaned up (deleted, moved, cut from its file)
// only once every record it holds was handled or given up to -on-failure;
// a message whose records are not all done stays where it was. Held SQS
// messages are kept invisible while the redrive runs. Past a memory bound
// Run stops gathering and delivers what it holds, then gathers again: the
// order then holds within each round only, and it says so.
//
// The sources live in this package (sqs.go, s3.go, file.go), each behind
// a small interface of the SDK calls it makes, rather than one package per
// backend as shared/destination has: they share the message bookkeeping
// and are used nowhere else.
package redrive
