// Package coordinator runs a worker: it keeps the lease table in step with
// the stream's shards, takes and renews leases (stealing to balance), and
// runs one consumer goroutine per held shard that reads, de-aggregates,
// dispatches to the handler and checkpoints. The long-running ./poller and
// the scheduled poller Lambda function both run it.
//
// Concurrency: the handler is called serially within a shard and
// concurrently across shards. Lease renewal runs on its own ticker. A shard
// whose lease is lost is cancelled with ErrLeaseLost as the cause and never
// writes again; a shard stopped or released flushes its checkpoint.
package coordinator
