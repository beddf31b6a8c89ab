// Package invoke hands batches to a Lambda function through the Lambda
// Invoke API (a deployed function, `sam local start-lambda`, or the runtime
// interface emulator) with exactly the JSON Lambda's Kinesis event source
// mapping sends, and reads the answer as it does: batchItemFailures, or a
// function error (the X-Amz-Function-Error header, or a local host's error
// payload) failing the batch. Each call sends one Invoke request, never
// re-sent by the SDK; what Lambda answers becomes what the dispatcher
// branches on: a 429 wraps stream.ErrThrottled, a 413 stream.ErrTooLarge, a
// function timeout stream.ErrHandlerTimeout. Sizer measures the JSON
// Marshal writes without marshalling, for the dispatcher's batch limit.
//
// With a tumbling window, WindowHandler sends the windowed event
// (MarshalWindow: the same records plus window, state, shardId and the
// flags, as Lambda writes them) and reads {"state", "batchItemFailures"};
// WindowOverhead is what the window's fields add to Sizer's count.
package invoke
