// Package dispatch hands one shard's records to a handler in batches, the way
// Lambda's Kinesis event source mapping does: batchItemFailures resume at the
// lowest failed item, an error retries the batch with back-off, a failing
// batch can be bisected, and records given up (after the retry attempts or
// past the record age) go to an on-failure destination, never nowhere. Each
// call has a deadline on its context (HandlerTimeout, capped by Deadline);
// the dispatcher stops waiting for a call at its deadline even if the
// handler never returns. It reports each record done so the caller can
// checkpoint it, and never reports a record that was not handled.
package dispatch
