package kpl

import (
	"math"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/stream"
)

// Filter de-aggregates the records of one shard: Deaggregate with the
// shard's hash range, remembering where the partition keys it has hashed
// fall. Placing a user record without an explicit hash key costs an MD5 of
// its partition key (~90 ns, most of what de-aggregating a small record
// costs), and most streams reuse a bounded set of keys (devices, tenants,
// users), so a key seen before is looked up instead (~20 ns). The memo is
// bounded (memoKeys keys a shard, and a KeyBudget shared by the shards of a
// worker) and steps aside while the keys do not repeat enough to pay for
// it. A Filter is not safe for concurrent use: one per shard reader.
type Filter struct {
	hr   HashRange
	memo keyMemo
}

// NewFilter returns the Filter of a shard whose hash range is hr (the zero
// HashRange filters nothing). Its memo takes its keys from budget, which
// Filters of other shards may share (nil: memoKeys for this one alone).
// Release gives them back.
func NewFilter(hr HashRange, budget *KeyBudget) *Filter {
	return &Filter{hr: hr, memo: keyMemo{budget: budget}}
}

// Deaggregate is DeaggregateChecked with the Filter's hash range.
func (f *Filter) Deaggregate(dst []stream.Record, shardID string, r *types.Record, good bool) ([]stream.Record, Stats) {
	return deaggregate(dst, shardID, r, f.hr, good, &f.memo)
}

// Release forgets the keys and gives them back to the budget; the Filter
// still works afterwards (it starts remembering again).
func (f *Filter) Release() { f.memo.forget() }

// KeyBudget is how many partition keys the Filters sharing it may remember
// together, so that a worker holding many shards holds a bounded memo
// (~80 bytes a key) whatever its keys.
type KeyBudget struct{ left atomic.Int64 }

// NewKeyBudget returns a budget of keys.
func NewKeyBudget(keys int) *KeyBudget {
	b := new(KeyBudget)
	b.left.Store(int64(keys))
	return b
}

// take takes one key from b; a nil budget always has one.
func (b *KeyBudget) take() bool {
	if b == nil {
		return true
	}
	if b.left.Add(-1) >= 0 {
		return true
	}
	b.left.Add(1)
	return false
}

// give returns n keys to b.
func (b *KeyBudget) give(n int) {
	if b != nil && n > 0 {
		b.left.Add(int64(n))
	}
}

// Left is how many keys are left in b (a nil budget: as many as wanted).
func (b *KeyBudget) Left() int {
	if b == nil {
		return math.MaxInt
	}
	return int(b.left.Load())
}

const (
	memoKeys   = 512   // keys remembered per shard
	memoWindow = 1024  // lookups over which the hit rate is judged
	memoRest   = 32768 // lookups that go straight to MD5 after a poor window
)

// keyMemo remembers whether partition keys hash into its Filter's range
// (fixed for the Filter's life). It fills until it holds memoKeys keys or
// its budget runs out. A window of memoWindow lookups with the memo full and
// fewer than half of them hits (more keys in play than it can hold) empties
// it and leaves the next memoRest lookups to MD5 alone, then it tries
// again. A nil keyMemo hashes every key.
type keyMemo struct {
	in      map[string]bool
	budget  *KeyBudget // where the keys in the memo were taken from
	lookups int        // in the current window
	hits    int
	rest    int // lookups left to go straight to MD5
}

// contains reports whether the partition key pk hashes into [lo, hi], the
// range of every earlier call.
func (m *keyMemo) contains(pk string, lo, hi hashKey) bool {
	if m == nil {
		return hashPartitionKey(pk).in(lo, hi)
	}
	if m.rest > 0 {
		m.rest--
		return hashPartitionKey(pk).in(lo, hi)
	}
	if m.in == nil { // first use, or after a rest
		m.in = make(map[string]bool, 64)
	}
	m.lookups++
	v, ok := m.in[pk]
	if ok {
		m.hits++
	} else {
		v = hashPartitionKey(pk).in(lo, hi)
		if len(m.in) < memoKeys && m.budget.take() {
			m.in[strings.Clone(pk)] = v // pk aliases the GetRecords answer: keep a copy
		}
	}
	if m.lookups == memoWindow {
		if full := len(m.in) >= memoKeys || m.budget.Left() <= 0; full && m.hits < memoWindow/2 {
			m.forget() // let the keys go while resting
			m.rest = memoRest
		}
		m.lookups, m.hits = 0, 0
	}
	return v
}

// forget drops the memo's keys and gives them back to its budget.
func (m *keyMemo) forget() {
	m.budget.give(len(m.in))
	m.in = nil
}
