// Package dispatch hands one shard's records to a handler in batches, the way
// Lambda's Kinesis event source mapping does: batchItemFailures resume at the
// lowest failed item, an error retries the batch with back-off, a failing
// batch can be bisected, and records given up (after the retry attempts or
// past the record age) go to an on-failure destination, never nowhere. It
// reports each record done so the caller can checkpoint it, and never
// reports a record that was not handled.
package dispatch
