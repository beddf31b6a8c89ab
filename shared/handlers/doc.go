// Package handlers holds Shardline's in-process business handlers and the
// registry that names them for the poller's -handler setting.
//
// A handler has the AWS Lambda Kinesis signature (stream.Handler), so the
// same code runs inside ./poller, inside the scheduled poller Lambda function
// and as a Lambda function of its own behind the native Kinesis trigger.
// Shardline calls a handler serially within a shard and concurrently across
// shards: every handler here is safe for concurrent use.
//
// Built-ins:
//
//   - "print" (Printer): one JSON object per record on Options.Out.
//   - "wordcount" (WordCount): the word count of Spark's KinesisWordCountASL
//     example, running totals printed at most once per Options.Interval.
//
// With a tumbling window (-tumbling-window) a handler has the windowed
// signature (stream.WindowHandler) instead: NewWindow builds the windowed
// variant registered under a name, and RegisterWindow adds one. Built-in:
//
//   - "wordcount" (WindowWordCount): counts per window, in the window's
//     state; the window's counts printed as one JSON line when it ends.
//
// Register adds more, normally from an init function. Apart from the
// registry, the package keeps no global state: every handler value owns its
// state, so a program may build several.
package handlers
