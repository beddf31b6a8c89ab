package kpl

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/stream"
)

// keyedAnswer is n aggregates of per user records whose partition keys
// are key(aggregate, record), with every 7th record carrying an explicit
// hash key instead (those never go through the memo).
func keyedAnswer(t testing.TB, n, per int, key func(a, i int) string) []types.Record {
	recs := make([]types.Record, n)
	for a := range recs {
		urs := make([]UserRecord, per)
		for i := range urs {
			urs[i] = UserRecord{PartitionKey: key(a, i), Data: fmt.Appendf(nil, "%d/%d", a, i)}
			if i%7 == 6 {
				urs[i].ExplicitHashKey = fmt.Sprint(uint64(a*per+i) * 0x9E3779B97F4A7C15)
			}
		}
		blob, err := Aggregate(urs)
		if err != nil {
			t.Fatal(err)
		}
		recs[a] = types.Record{SequenceNumber: aws.String(fmt.Sprintf("%056d", a)), PartitionKey: aws.String("k"), Data: blob}
	}
	return recs
}

// TestFilterAgreesWithDeaggregate: a Filter delivers and drops exactly what
// DeaggregateChecked does with the same range, record for record, whether
// the keys repeat (the memo answers), never repeat (the memo fills, finds
// too few hits and rests, then tries again), or mix; and the range cuts
// through the keys so both answers occur.
func TestFilterAgreesWithDeaggregate(t *testing.T) {
	half := mustRange(t, "0", "170141183460469231731687303715884105727") // the lower half
	for name, key := range map[string]func(a, i int) string{
		"repeating": func(a, i int) string { return fmt.Sprint("device-", (a*100+i)%300) },
		"unique":    func(a, i int) string { return fmt.Sprintf("order-%d-%d", a, i) },
		"mixed": func(a, i int) string {
			if i%2 == 0 {
				return fmt.Sprint("tenant-", i%40)
			}
			return fmt.Sprintf("event-%d-%d", a, i)
		},
	} {
		t.Run(name, func(t *testing.T) {
			answer := keyedAnswer(t, 800, 100, key) // 80,000 user records: several rests
			f := NewFilter(half, nil)
			var got, want []stream.Record
			var gs, ws Stats
			for i := range answer {
				var s Stats
				got, s = f.Deaggregate(got, testShard, &answer[i], false)
				gs.Add(s)
				want, s = DeaggregateChecked(want, testShard, &answer[i], half, false)
				ws.Add(s)
			}
			if gs != ws {
				t.Fatalf("stats %+v, without the memo %+v", gs, ws)
			}
			if ws.DroppedOutOfRange == 0 || ws.UserRecords == 0 {
				t.Fatalf("the range should keep some and drop some: %+v", ws)
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, without the memo %d", len(got), len(want))
			}
			for i := range got {
				if !sameRecord(got[i], want[i]) {
					t.Fatalf("record %d: %+v, without the memo %+v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestKeyMemoStepsAside: with keys that repeat, the memo answers nearly
// every lookup and keeps its keys; with keys that never repeat, it fills,
// judges the window poor, empties and rests for memoRest lookups, then
// fills again.
func TestKeyMemoStepsAside(t *testing.T) {
	lo, hi := hashKey{}, hashKey{hi: 1 << 63}
	var m keyMemo
	for i := range 10*memoWindow + 10 {
		k := fmt.Sprint("device-", i%100)
		if got, want := m.contains(k, lo, hi), hashPartitionKey(k).in(lo, hi); got != want {
			t.Fatalf("%q: %v, want %v", k, got, want)
		}
	}
	if m.hits != 10 { // the window restarted 10 lookups ago; all of them hit
		t.Fatalf("repeating keys: %d hits in the last 10 lookups", m.hits)
	}
	if len(m.in) != 100 || m.rest != 0 {
		t.Fatalf("repeating keys: memo holds %d keys, rest %d; want 100 and 0", len(m.in), m.rest)
	}

	m = keyMemo{}
	i := 0
	next := func() {
		k := fmt.Sprint("order-", i)
		i++
		if got, want := m.contains(k, lo, hi), hashPartitionKey(k).in(lo, hi); got != want {
			t.Fatalf("%q: %v, want %v", k, got, want)
		}
	}
	for m.rest == 0 {
		next()
		if i > 10*memoWindow {
			t.Fatalf("unique keys: after %d lookups the memo (%d keys) has not stepped aside", i, len(m.in))
		}
	}
	if m.in != nil {
		t.Fatalf("resting with %d keys held", len(m.in))
	}
	for range memoRest {
		next()
	}
	if m.rest != 0 {
		t.Fatalf("rest %d after memoRest lookups", m.rest)
	}
	next()
	if len(m.in) != 1 {
		t.Fatalf("after the rest the memo should fill again: %d keys", len(m.in))
	}
}

// TestKeyMemoOwnsItsKeys: partition keys alias the GetRecords answer, which
// is let go (and its memory reused) once de-aggregated; the memo keeps
// copies, so a key remembered from an answer whose bytes are then
// overwritten still answers for the key it was.
func TestKeyMemoOwnsItsKeys(t *testing.T) {
	lo, hi := hashKey{}, hashKey{hi: 1 << 63}
	var m keyMemo
	buf := []byte("key-aaaa")
	var first string
	for c := byte('a'); c <= 'z'; c++ {
		copy(buf[4:], []byte{c, c, c, c})
		k := unsafe.String(&buf[0], len(buf)) // as the CBOR decoder's keys alias its answer
		if first == "" {
			first = string(buf)
		}
		if got, want := m.contains(k, lo, hi), hashPartitionKey(k).in(lo, hi); got != want {
			t.Fatalf("%q: %v, want %v", k, got, want)
		}
	}
	for k := range m.in {
		if want := hashPartitionKey(k).in(lo, hi); m.in[k] != want {
			t.Fatalf("memo says %q is %v, MD5 says %v", k, m.in[k], want)
		}
	}
	if _, ok := m.in[first]; !ok || len(m.in) != 26 {
		t.Fatalf("memo holds %d keys (want 26, %q among them)", len(m.in), first)
	}
}

// BenchmarkDeaggregateFiltered: de-aggregating an answer of 80 aggregates
// of 100 user records with the shard's hash range on (4 shards' worth: a
// quarter of the key space), keys drawn from 250 (as a stream keyed by
// device) or all distinct. "md5" places each key with its MD5; "memo"
// through a Filter.
func BenchmarkDeaggregateFiltered(b *testing.B) {
	quarter := mustRange(b, "0", "85070591730234615865843651857942052863")
	for name, key := range map[string]func(a, i int) string{
		"repeating": func(a, i int) string { return fmt.Sprint("key-", (a*100+i)%250) },
		"unique":    func(a, i int) string { return fmt.Sprintf("key-%d-%d", a, i) },
	} {
		recs := keyedAnswer(b, 80, 100, key)
		b.Run(name+"/md5", func(b *testing.B) {
			var dst []stream.Record
			for b.Loop() {
				dst = dst[:0]
				for i := range recs {
					dst, _ = DeaggregateChecked(dst, testShard, &recs[i], quarter, true)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8000), "ns/user-record")
		})
		b.Run(name+"/memo", func(b *testing.B) {
			var dst []stream.Record
			f := NewFilter(quarter, nil)
			for b.Loop() {
				dst = dst[:0]
				for i := range recs {
					dst, _ = f.Deaggregate(dst, testShard, &recs[i], true)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8000), "ns/user-record")
		})
	}
}

// TestKeyBudgetShared: the filters of a worker's shards remember at most
// their shared budget of keys together; a key over the budget is hashed
// (and answered right) without being remembered; Release gives a shard's
// keys back, and a memo that rests gives back its keys too.
func TestKeyBudgetShared(t *testing.T) {
	lo, hi := hashKey{}, hashKey{hi: 1 << 63}
	budget := NewKeyBudget(100)
	a, b := NewFilter(HashRange{}, budget), NewFilter(HashRange{}, budget)
	look := func(m *keyMemo, k string) {
		t.Helper()
		if got, want := m.contains(k, lo, hi), hashPartitionKey(k).in(lo, hi); got != want {
			t.Fatalf("%q: %v, want %v", k, got, want)
		}
	}
	for round := range 3 {
		for i := range 80 {
			look(&a.memo, fmt.Sprint("a-", i))
		}
		for i := range 80 {
			look(&b.memo, fmt.Sprint("b-", i))
		}
		if round == 0 && (len(a.memo.in) != 80 || len(b.memo.in) != 20) {
			t.Fatalf("memos hold %d and %d keys; want 80 and 20 of a budget of 100", len(a.memo.in), len(b.memo.in))
		}
	}
	if len(a.memo.in)+len(b.memo.in) != 100 || budget.Left() != 0 {
		t.Fatalf("memos hold %d + %d keys, %d left; want 100 in all, 0 left", len(a.memo.in), len(b.memo.in), budget.Left())
	}
	a.Release()
	if budget.Left() != 100-len(b.memo.in) || a.memo.in != nil {
		t.Fatalf("after a's Release: %d left (b holds %d), a holds %v", budget.Left(), len(b.memo.in), a.memo.in)
	}
	// b's keys now miss more than they hit once the budget is gone: it
	// rests and gives its keys back.
	c := NewFilter(HashRange{}, budget)
	for i := range 100 - len(b.memo.in) {
		look(&c.memo, fmt.Sprint("c-", i))
	}
	if budget.Left() != 0 {
		t.Fatalf("%d left, want 0", budget.Left())
	}
	for i := 0; b.memo.rest == 0; i++ {
		look(&b.memo, fmt.Sprint("new-", i))
		if i > 4*memoWindow {
			t.Fatal("b did not rest with its keys missing and no budget left")
		}
	}
	if b.memo.in != nil || budget.Left() != 20 {
		t.Fatalf("b resting holds %d keys; %d left, want b's 20 back", len(b.memo.in), budget.Left())
	}
	b.Release()
	c.Release()
	if budget.Left() != 100 {
		t.Fatalf("all released: %d left, want 100", budget.Left())
	}
}
