package kpl

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/stream"
)

// Filter de-aggregates the records of one shard: Deaggregate with the
// shard's hash range, remembering where the partition keys it has hashed
// fall. Placing a user record without an explicit hash key costs an MD5 of
// its partition key (~90 ns, most of what de-aggregating a small record
// costs), and most streams reuse a bounded set of keys (devices, tenants,
// users), so a key seen before is looked up instead (~20 ns). The memo is
// bounded (memoKeys keys, ~30 KB) and steps aside while the keys do not
// repeat enough to pay for it. A Filter is not safe for concurrent use:
// one per shard reader.
type Filter struct {
	hr   HashRange
	memo keyMemo
}

// NewFilter returns the Filter of a shard whose hash range is hr (the zero
// HashRange filters nothing).
func NewFilter(hr HashRange) *Filter { return &Filter{hr: hr} }

// Deaggregate is DeaggregateChecked with the Filter's hash range.
func (f *Filter) Deaggregate(dst []stream.Record, shardID string, r *types.Record, good bool) ([]stream.Record, Stats) {
	return deaggregate(dst, shardID, r, f.hr, good, &f.memo)
}

const (
	memoKeys   = 512   // keys remembered per shard
	memoWindow = 1024  // lookups over which the hit rate is judged
	memoRest   = 32768 // lookups that go straight to MD5 after a poor window
)

// keyMemo remembers whether partition keys hash into the shard's range. It
// fills until it holds memoKeys keys. A window of memoWindow lookups with
// the memo full and fewer than half of them hits (more keys in play than it
// can hold) empties it and leaves the next memoRest lookups to MD5 alone,
// then it tries again. A nil keyMemo hashes every key.
type keyMemo struct {
	in      map[string]bool
	lookups int // in the current window
	hits    int
	rest    int     // lookups left to go straight to MD5
	lo, hi  hashKey // the range of the keys in the memo
}

// contains reports whether the partition key pk hashes into [lo, hi].
func (m *keyMemo) contains(pk string, lo, hi hashKey) bool {
	if m == nil {
		return hashPartitionKey(pk).in(lo, hi)
	}
	if m.rest > 0 {
		m.rest--
		return hashPartitionKey(pk).in(lo, hi)
	}
	if m.in == nil || m.lo != lo || m.hi != hi {
		// First use, after a rest, or another range (a Filter's range is
		// fixed; kept correct anyway).
		m.in = make(map[string]bool, 64)
		m.lo, m.hi = lo, hi
	}
	m.lookups++
	v, ok := m.in[pk]
	if ok {
		m.hits++
	} else {
		v = hashPartitionKey(pk).in(lo, hi)
		if len(m.in) < memoKeys {
			m.in[strings.Clone(pk)] = v // pk aliases the GetRecords answer: keep a copy
		}
	}
	if m.lookups == memoWindow {
		if len(m.in) >= memoKeys && m.hits < memoWindow/2 {
			m.in = nil // let the keys go while resting
			m.rest = memoRest
		}
		m.lookups, m.hits = 0, 0
	}
	return v
}
