// Package produce writes user records to a stream as a KPL producer does:
// records are grouped by the shard their partition key hashes to, packed
// into aggregates of up to N user records, and sent with PutRecords, retrying
// the entries Kinesis throttles. An aggregate only holds records of one
// shard, so a consumer's hash-range filter never drops them; if a reshard
// moves the range, the shard map is refreshed and any user record that
// landed outside its shard's range is sent again.
package produce
