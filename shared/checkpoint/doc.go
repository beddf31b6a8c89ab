// Package checkpoint decides what to commit for a shard and when: the
// position of the last record done, written at most once per checkpoint
// interval, and always at shard end, lease release and shutdown.
package checkpoint
