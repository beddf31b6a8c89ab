// Package stream is Shardline's vocabulary: records, shard ids, positions and
// the handler signature shared by every other package.
package stream
