// Command poller is the scheduled poller Lambda function with no handler
// of its own: an EventBridge schedule invokes it; it runs Shardline's core
// (leases, reading, de-aggregation, the handler, checkpoints) until the
// invocation's deadline minus SHARDLINE_DEADLINE_MARGIN, then checkpoints,
// releases its leases and returns a JSON summary. Its handler is a
// built-in (SHARDLINE_HANDLER) or another function it invokes
// (SHARDLINE_TARGET_FUNCTION); the other settings are those of `poller
// run`, from the function's environment. A function with a Go handler of
// its own needs no such poller: shardline.Start(handler) is the scheduled
// poller, the native-trigger function and the VM poller in one binary.
// Build with -tags lambda.norpc as bootstrap for provided.al2023.
package main

import "github.com/shardline/shardline/shared/shardline"

func main() { shardline.New(shardline.WithName("poller")).Start() }
