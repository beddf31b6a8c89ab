// Package replay reads a range of a stream with no lease table: per shard,
// from a start (TRIM_HORIZON, a time, or a sequence number with its
// sub-sequence number) to a stop (a time, a sequence number, the shard's
// end, or the tip the reader finds), de-aggregated as the core does
// (package kpl), paced within Kinesis's read limits (package fetch does the
// reading: retries, throttles, expired iterators) and, across shards, in
// lineage order: a child only after its parents (Each).
//
// It is what `replay` reads with, and what `redrive` reads back Lambda's
// metadata-only on-failure records with: reading [startSeq, endSeq] of one
// shard is one call,
//
//	res, err := replay.ReadShard(ctx, replay.NewClient(kinesisClient, log), replay.Config{
//		StreamName: "orders", ShardID: "shardId-000000000001",
//		From: replay.FromSequence(startSeq), Until: replay.ThroughSequence(endSeq),
//	}, func(c replay.Chunk) error { return deliver(c.Records) })
//
// It writes nothing anywhere: what is done with the records, and where a
// caller resumes after a failure, is the caller's.
package replay
