// Package shardline runs a Lambda Kinesis handler everywhere from one
// binary: behind Lambda's own Kinesis trigger, as a scheduled poller Lambda
// function, and as a long-running poller on a VM or in a container, with
// shard leases and checkpoints in DynamoDB (KCL 2.x compatible), KPL
// aggregates de-aggregated, partial batch failures, retries, bisection and
// on-failure destinations as Lambda's event source mapping has them.
//
// A program's main is one call, as with aws-lambda-go's lambda.Start:
//
//	func handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
//		var resp events.KinesisEventResponse
//		for _, r := range ev.Records {
//			if err := process(ctx, r); err != nil {
//				resp.BatchItemFailures = append(resp.BatchItemFailures, shardline.ItemFailure(r))
//				break // Shardline and Lambda retry from the first failed record
//			}
//		}
//		return resp, nil
//	}
//
//	func main() { shardline.Start(handle) }
//
// The binary then decides by where it runs (see Start):
//
//	./app run -app-name myapp -stream-name orders   # on a VM: the poller, h in process
//	./app status -app-name myapp -stream-name orders
//	./app -h                                         # every command and setting
//
// and on Lambda it answers Lambda's Kinesis events and the schedule's
// {"shardline":"poll"}. Settings are flags or SHARDLINE_* variables
// (-stream-name is SHARDLINE_STREAM_NAME); a flag beats its variable.
//
// A program that does more than read the stream (a service that also
// serves HTTP) embeds a Worker instead: NewWorker with Settings, Run with a
// context, Snapshot while it runs.
//
// Delivery is at least once, in order within a shard and per partition key
// across a reshard. A handler is called serially within a shard (or per
// partition key with -parallelization-factor) and concurrently across
// shards. Nothing is skipped silently: a record is handled, or sent to the
// on-failure destination, or its shard stops (parks) and says why.
package shardline
