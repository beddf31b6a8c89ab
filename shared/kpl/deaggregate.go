package kpl

import (
	"bytes"
	"crypto/md5"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/stream"
)

// Magic is the 4-byte prefix of a KPL aggregated record's data.
const Magic = "\xf3\x89\x9a\xc2"

// overhead is what an aggregate adds around its protobuf: magic and digest.
const overhead = len(Magic) + md5.Size

// Stats counts what Deaggregate saw, for metrics and logs; add one call's
// counts to running totals with Add.
type Stats struct {
	// Records is the number of Kinesis records looked at (1 per call with a
	// non-nil record).
	Records int
	// Aggregates is how many of them were well-formed KPL aggregates.
	Aggregates int
	// UserRecords is how many stream.Records were delivered (appended to
	// dst): the user records kept from aggregates, plus one per plain or
	// malformed record.
	UserRecords int
	// DroppedOutOfRange is how many user records of aggregates were dropped
	// because their hash key is outside the shard's hash key range.
	DroppedOutOfRange int
	// Malformed is how many records began with the magic bytes but were not
	// well-formed aggregates, and were delivered whole instead.
	Malformed int
}

// Add adds o's counts to s.
func (s *Stats) Add(o Stats) {
	s.Records += o.Records
	s.Aggregates += o.Aggregates
	s.UserRecords += o.UserRecords
	s.DroppedOutOfRange += o.DroppedOutOfRange
	s.Malformed += o.Malformed
}

// Deaggregate appends to dst the user records of one Kinesis record r read
// from the shard shardID, whose hash key range is hr, and returns the
// extended slice and what it saw. It never fails and never panics; a nil r
// adds nothing.
//
// A record whose data does not begin with Magic, or is too short to hold
// the magic and a digest, is a plain record: it is delivered as one
// stream.Record with Aggregated false and SubSequenceNumber 0, and is not
// filtered by hash range (Kinesis put it on this shard).
//
// A record that begins with Magic but is not a well-formed aggregate (digest
// mismatch, protobuf that does not decode or lacks required fields, a
// partition key or explicit hash key index outside its table, or no user
// records at all) is delivered whole in the same way, and counted in
// Stats.Malformed, so that nothing is lost silently.
//
// A well-formed aggregate yields one stream.Record per user record, in
// order, with Aggregated true, SubSequenceNumber its index in the aggregate
// (counting dropped ones, so positions are stable whatever the range), its
// own PartitionKey and ExplicitHashKey, and the carrier's sequence number,
// arrival time and encryption type.
//
// If hr is not the zero HashRange, user records whose hash key lies outside
// it are dropped and counted in Stats.DroppedOutOfRange, as the KCL does
// after a reshard, when an aggregate written before the split holds records
// that belong to the sibling shard. The hash key is the explicit hash key
// when the user record has one, otherwise the MD5 of the partition key read
// as a 128-bit big-endian unsigned integer. An explicit hash key that is not
// a decimal integer in [0, 2^128-1] cannot be placed, and its record is kept
// rather than dropped.
//
// The Data (and the partition and explicit hash keys) of delivered records
// alias r.Data, which must not change while they are in use: nothing is
// copied, and the records of one aggregate share its memory.
func Deaggregate(dst []stream.Record, shardID string, r *types.Record, hr HashRange) ([]stream.Record, Stats) {
	return DeaggregateChecked(dst, shardID, r, hr, false)
}

// DeaggregateChecked is Deaggregate for a record whose checksum CheckAll
// found right (good true): it is not checked again. With good false it is
// Deaggregate.
func DeaggregateChecked(dst []stream.Record, shardID string, r *types.Record, hr HashRange, good bool) ([]stream.Record, Stats) {
	return deaggregate(dst, shardID, r, hr, good, nil)
}

// deaggregate is DeaggregateChecked placing partition keys through memo
// (nil: an MD5 each time).
func deaggregate(dst []stream.Record, shardID string, r *types.Record, hr HashRange, good bool, memo *keyMemo) ([]stream.Record, Stats) {
	if r == nil {
		return dst, Stats{}
	}
	data := r.Data
	if len(data) < overhead || string(data[:len(Magic)]) != Magic {
		return appendPlain(dst, shardID, r), Stats{Records: 1, UserRecords: 1}
	}
	malformed := Stats{Records: 1, UserRecords: 1, Malformed: 1}
	body, digest := data[len(Magic):len(data)-md5.Size], data[len(data)-md5.Size:]
	if !good {
		if sum := md5.Sum(body); !bytes.Equal(sum[:], digest) {
			return appendPlain(dst, shardID, r), malformed
		}
	}
	agg := scratch.Get().(*aggregate)
	defer putScratch(agg)
	ok := parseAggregate(body, agg)
	if !ok || len(agg.recs) == 0 {
		return appendPlain(dst, shardID, r), malformed
	}
	pks, ehks := agg.pks, agg.ehks
	// Check every index before appending anything: a bad one means the
	// whole record is delivered as it is.
	for _, ur := range agg.recs {
		if ur.pk >= uint64(len(pks)) || (ur.hasEHK && ur.ehk >= uint64(len(ehks))) {
			return appendPlain(dst, shardID, r), malformed
		}
	}

	st := Stats{Records: 1, Aggregates: 1}
	filter := !hr.IsZero()
	var lo, hi hashKey
	// inRange caches, per table entry, whether its hash key is in range
	// (0 = not yet known, 1 = in, 2 = out): keys repeat across user records.
	var pkBuf, ehkBuf [256]uint8
	var pkIn, ehkIn []uint8
	if filter {
		lo, hi = hr.bounds()
		pkIn = cacheFor(pkBuf[:], len(pks))
		ehkIn = cacheFor(ehkBuf[:], len(ehks))
	}

	base := stream.Record{
		ShardID:        shardID,
		SequenceNumber: deref(r.SequenceNumber),
		Aggregated:     true,
		EncryptionType: string(r.EncryptionType),
	}
	if r.ApproximateArrivalTimestamp != nil {
		base.ApproximateArrivalTimestamp = *r.ApproximateArrivalTimestamp
	}
	dst = slices.Grow(dst, len(agg.recs))
	for i, ur := range agg.recs {
		pki := ur.pk
		var ehk string
		if ur.hasEHK {
			ehk = ehks[ur.ehk]
		}
		if filter {
			var in bool
			if ur.hasEHK {
				in = cachedIn(ehkIn, ur.ehk, func() bool {
					k, ok := parseHashKey(ehk)
					return !ok || k.in(lo, hi)
				})
			} else {
				in = cachedIn(pkIn, pki, func() bool {
					return memo.contains(pks[pki], lo, hi)
				})
			}
			if !in {
				st.DroppedOutOfRange++
				continue
			}
		}
		rec := base
		rec.SubSequenceNumber = int64(i)
		rec.PartitionKey = pks[pki]
		rec.ExplicitHashKey = ehk
		rec.Data = ur.data
		dst = append(dst, rec)
		st.UserRecords++
	}
	return dst, st
}

// cacheFor returns a zeroed cache of n entries, in buf if it fits.
func cacheFor(buf []uint8, n int) []uint8 {
	if n <= len(buf) {
		return buf[:n]
	}
	return make([]uint8, n)
}

// cachedIn returns the cached answer for table entry i, computing it with
// in the first time.
func cachedIn(cache []uint8, i uint64, in func() bool) bool {
	switch cache[i] {
	case 1:
		return true
	case 2:
		return false
	}
	v := in()
	if v {
		cache[i] = 1
	} else {
		cache[i] = 2
	}
	return v
}

// appendPlain appends r as it is: one plain (not aggregated) record.
func appendPlain(dst []stream.Record, shardID string, r *types.Record) []stream.Record {
	rec := stream.Record{
		ShardID:        shardID,
		SequenceNumber: deref(r.SequenceNumber),
		PartitionKey:   deref(r.PartitionKey),
		Data:           r.Data,
		EncryptionType: string(r.EncryptionType),
	}
	if r.ApproximateArrivalTimestamp != nil {
		rec.ApproximateArrivalTimestamp = *r.ApproximateArrivalTimestamp
	}
	return append(dst, rec)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
