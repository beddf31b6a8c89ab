// Package dispatch hands one shard's records to a handler in batches, the way
// Lambda's Kinesis event source mapping does: batches end at BatchSize
// records or before MaxBatchBytes of event JSON, batchItemFailures resume at
// the lowest failed item, an error retries the batch with back-off, a
// failing batch can be bisected, a throttled call is retried without using
// up an attempt, a batch too large for the handler's host is split, and
// records given up (after the retry attempts, past the record age, or too
// large for any call) go to an on-failure destination, never nowhere. Each
// call has a deadline on its context (HandlerTimeout, capped by Deadline);
// the dispatcher stops waiting for a call at its deadline even if the
// handler never returns. It reports each record done so the caller can
// checkpoint it, and never reports a record that was not handled.
//
// Batch sizes are measured with invoke.Sizer, as the JSON that
// invoke.Marshal sends to a Lambda function.
//
// Deliverer is what a shard's reader calls with a slice of records and
// waits on: Dispatcher (one batch at a time), Parallel (Lanes for one
// slice) or Windowed (tumbling windows with state, for a
// stream.WindowHandler: a Dispatcher inside each window, the final invoke
// at its end, and done only when a window is finished; see package
// window). With a parallelization factor the reader uses Lanes instead:
// lanes by partition key, each with its own batches and Dispatcher,
// running on goroutines of their own across reads, so that a slow lane
// does not hold the others back; the reader reads ahead within a bound,
// and done reports the watermark over all lanes.
package dispatch
