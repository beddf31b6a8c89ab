// Package shards lists a stream's shards and knows their lineage: which
// shards are parents of which, and so when a child may be read (only after
// every parent has reached SHARD_END, which keeps records of one partition
// key in order across a reshard).
package shards
