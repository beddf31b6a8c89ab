// Package kpl reads and writes the Kinesis Producer Library (KPL) aggregated
// record format: many user records packed into one Kinesis record.
//
// An aggregated record's data is the 4 magic bytes 0xF3 0x89 0x9A 0xC2, then
// a protobuf AggregatedRecord (the message of
// github.com/awslabs/kinesis-aggregation/go/v2/records: a partition key
// table, an explicit hash key table and the user records, which refer to the
// tables by index), then the 16-byte MD5 digest of the protobuf bytes.
//
// Deaggregate turns one Kinesis record into the user records it carries, as
// the Kinesis Client Library does: each with its sub-sequence number (its
// index in the aggregate) and its own partition key, those whose hash key
// falls outside the reading shard's hash key range dropped (they belong to a
// sibling shard after a reshard). It never fails: data that is not a
// well-formed aggregate is delivered whole, as the plain record it is.
//
// Aggregate and Aggregator build aggregates on the producer side.
package kpl
