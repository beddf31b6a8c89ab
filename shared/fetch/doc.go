// Package fetch is the per-shard polling reader: it gets a shard iterator
// from a checkpoint or an initial position, calls GetRecords in a loop with
// the Kinesis read limits in mind, retries throttling after the retry wait
// time (Spark's spark.streaming.kinesis.retry settings) and then with
// back-off, renews expired iterators, and reports the end of a shard with its
// children. It returns raw Kinesis records; de-aggregation comes after it.
// An enhanced fan-out reader gives the same Batch. Client makes GetRecords
// itself, in Kinesis's CBOR protocol, or in JSON for an endpoint that
// refuses CBOR; both answers are decoded in place with allocations bounded
// by the answer's size. EnsureConsumer and CheckConsumer find, register
// and wait for the stream consumer that enhanced fan-out reads through.
package fetch
