// Package invoke hands batches to a Lambda function through the Lambda
// Invoke API (a deployed function, `sam local start-lambda`, or the runtime
// interface emulator) with exactly the JSON Lambda's Kinesis event source
// mapping sends, and reads the answer as it does: batchItemFailures, or a
// function error (the X-Amz-Function-Error header) failing the batch.
package invoke
