package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
	"github.com/awslabs/kinesis-aggregation/go/v2/records"
	protov1 "github.com/golang/protobuf/proto"
	"google.golang.org/protobuf/proto"

	"github.com/shardline/shardline/shared/stream"
)

const (
	testShard = "shardId-000000000007"
	testSeq   = "49590338271490256608559692538361571095921575989136588898"
)

var testTime = time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)

// carrier wraps data in a Kinesis record as GetRecords returns it.
func carrier(data []byte) *types.Record {
	seq, pk, at := testSeq, "carrier-key", testTime
	return &types.Record{
		Data:                        data,
		SequenceNumber:              &seq,
		PartitionKey:                &pk,
		ApproximateArrivalTimestamp: &at,
		EncryptionType:              types.EncryptionTypeKms,
	}
}

// frame wraps protobuf bytes as an aggregate: magic, body, md5(body).
func frame(body []byte) []byte {
	sum := md5.Sum(body)
	out := append([]byte(Magic), body...)
	return append(out, sum[:]...)
}

// encode marshals m, a hand-built (possibly invalid) aggregate, and frames it.
func encode(t testing.TB, m *records.AggregatedRecord) []byte {
	t.Helper()
	body, err := proto.MarshalOptions{AllowPartial: true}.Marshal(protov1.MessageV2(m))
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return frame(body)
}

func u64(v uint64) *uint64 { return &v }

// mustAggregate is Aggregate for tests.
func mustAggregate(t testing.TB, recs []UserRecord) []byte {
	t.Helper()
	b, err := Aggregate(recs)
	if err != nil {
		t.Fatalf("Aggregate: %v", err)
	}
	return b
}

// decodeTables returns the tables of an aggregate made by Aggregate.
func decodeTables(t *testing.T, b []byte) (pks, ehks []string) {
	t.Helper()
	var agg records.AggregatedRecord
	if err := proto.Unmarshal(b[len(Magic):len(b)-md5.Size], protov1.MessageV2(&agg)); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return agg.PartitionKeyTable, agg.ExplicitHashKeyTable
}

func TestRoundTrip(t *testing.T) {
	many := make([]UserRecord, 500)
	for i := range many {
		many[i] = UserRecord{PartitionKey: fmt.Sprintf("pk-%d", i%37), Data: []byte(strings.Repeat("x", i))}
	}
	tests := []struct {
		name           string
		recs           []UserRecord
		wantPKs, wantE int // table sizes after de-duplication
	}{
		{"one", []UserRecord{{PartitionKey: "a", Data: []byte("hello")}}, 1, 0},
		{"distinct keys", []UserRecord{
			{PartitionKey: "a", Data: []byte("1")},
			{PartitionKey: "b", Data: []byte("2")},
			{PartitionKey: "c", Data: []byte("3")},
		}, 3, 0},
		{"repeated keys", []UserRecord{
			{PartitionKey: "a", Data: []byte("1")},
			{PartitionKey: "b", Data: []byte("2")},
			{PartitionKey: "a", Data: []byte("3")},
			{PartitionKey: "a", Data: []byte("4")},
		}, 2, 0},
		{"explicit hash keys", []UserRecord{
			{PartitionKey: "a", ExplicitHashKey: "0", Data: []byte("1")},
			{PartitionKey: "a", Data: []byte("2")},
			{PartitionKey: "b", ExplicitHashKey: "340282366920938463463374607431768211455", Data: []byte("3")},
			{PartitionKey: "c", ExplicitHashKey: "0", Data: []byte("4")},
		}, 3, 2},
		{"empty data", []UserRecord{
			{PartitionKey: "a"},
			{PartitionKey: "b", Data: []byte{}},
		}, 2, 0},
		{"500 records", many, 37, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustAggregate(t, tc.recs)
			pks, ehks := decodeTables(t, b)
			if len(pks) != tc.wantPKs || len(ehks) != tc.wantE {
				t.Errorf("tables: got %d partition keys, %d explicit hash keys; want %d, %d", len(pks), len(ehks), tc.wantPKs, tc.wantE)
			}
			got, st := Deaggregate(nil, testShard, carrier(b), HashRange{})
			want := Stats{Records: 1, Aggregates: 1, UserRecords: len(tc.recs)}
			if st != want {
				t.Errorf("stats: got %+v, want %+v", st, want)
			}
			if len(got) != len(tc.recs) {
				t.Fatalf("got %d records, want %d", len(got), len(tc.recs))
			}
			for i, r := range got {
				w := stream.Record{
					ShardID:                     testShard,
					SequenceNumber:              testSeq,
					SubSequenceNumber:           int64(i),
					Aggregated:                  true,
					PartitionKey:                tc.recs[i].PartitionKey,
					ExplicitHashKey:             tc.recs[i].ExplicitHashKey,
					Data:                        tc.recs[i].Data,
					ApproximateArrivalTimestamp: testTime,
					EncryptionType:              "KMS",
				}
				if !sameRecord(r, w) {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, r, w)
				}
			}
		})
	}
}

// sameRecord compares records, treating nil and empty Data alike.
func sameRecord(a, b stream.Record) bool {
	return a.ShardID == b.ShardID && a.SequenceNumber == b.SequenceNumber &&
		a.SubSequenceNumber == b.SubSequenceNumber && a.Aggregated == b.Aggregated &&
		a.PartitionKey == b.PartitionKey && a.ExplicitHashKey == b.ExplicitHashKey &&
		bytes.Equal(a.Data, b.Data) && a.ApproximateArrivalTimestamp.Equal(b.ApproximateArrivalTimestamp) &&
		a.EncryptionType == b.EncryptionType
}

// TestInteropDeaggregator checks Aggregate's output against the reference
// de-aggregator of github.com/awslabs/kinesis-aggregation (used here only
// as an independent reader of the format).
func TestInteropDeaggregator(t *testing.T) {
	recs := []UserRecord{
		{PartitionKey: "a", Data: []byte("one")},
		{PartitionKey: "b", ExplicitHashKey: "12345", Data: []byte("two")},
		{PartitionKey: "a", Data: []byte("three")},
	}
	b := mustAggregate(t, recs)
	got, err := deaggregator.DeaggregateRecords([]types.Record{*carrier(b)})
	if err != nil {
		t.Fatalf("reference de-aggregator: %v", err)
	}
	if len(got) != len(recs) {
		t.Fatalf("reference de-aggregator: got %d records, want %d", len(got), len(recs))
	}
	for i, r := range got {
		if *r.PartitionKey != recs[i].PartitionKey || !bytes.Equal(r.Data, recs[i].Data) {
			t.Errorf("record %d: got %q %q, want %q %q", i, *r.PartitionKey, r.Data, recs[i].PartitionKey, recs[i].Data)
		}
	}
}

func TestPlainPassThrough(t *testing.T) {
	agg := mustAggregate(t, []UserRecord{{PartitionKey: "a", Data: []byte("x")}})
	tests := []struct {
		name string
		data []byte
	}{
		{"text", []byte("hello world")},
		{"nil", nil},
		{"empty", []byte{}},
		{"magic only", []byte(Magic)},
		{"magic and 15 bytes", append([]byte(Magic), make([]byte, 15)...)},
		{"aggregate missing first byte", agg[1:]},
		{"json", []byte(`{"magic":"\u00f3"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkWhole(t, tc.data, Stats{Records: 1, UserRecords: 1})
		})
	}
}

// checkWhole checks that data is delivered as one plain record, even with a
// hash range that excludes the carrier's key, with the given stats.
func checkWhole(t *testing.T, data []byte, want Stats) {
	t.Helper()
	narrow, err := ParseHashRange("0", "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, hr := range []HashRange{{}, narrow} {
		got, st := Deaggregate(nil, testShard, carrier(data), hr)
		if st != want {
			t.Errorf("stats: got %+v, want %+v", st, want)
		}
		w := stream.Record{
			ShardID:                     testShard,
			SequenceNumber:              testSeq,
			PartitionKey:                "carrier-key",
			Data:                        data,
			ApproximateArrivalTimestamp: testTime,
			EncryptionType:              "KMS",
		}
		if len(got) != 1 || !sameRecord(got[0], w) {
			t.Errorf("got %+v, want [%+v]", got, w)
		}
	}
}

func TestMalformed(t *testing.T) {
	good := mustAggregate(t, []UserRecord{{PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "b", Data: []byte("y")}})
	badMD5 := bytes.Clone(good)
	badMD5[len(badMD5)-1] ^= 1
	flipped := bytes.Clone(good)
	flipped[len(Magic)+2] ^= 0x40 // body changed, digest not
	tests := []struct {
		name string
		data []byte
	}{
		{"bad md5", badMD5},
		{"body changed", flipped},
		{"truncated", good[:len(good)-3]},
		{"bad protobuf", frame([]byte{0xff, 0xff, 0xff, 0xff, 0xff})},
		{"truncated protobuf", frame(good[len(Magic) : len(good)-md5.Size-2])},
		{"empty body", frame(nil)},
		{"empty aggregate", encode(t, &records.AggregatedRecord{PartitionKeyTable: []string{"a"}})},
		{"partition key index out of range", encode(t, &records.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records: []*records.Record{
				{PartitionKeyIndex: u64(0), Data: []byte("x")},
				{PartitionKeyIndex: u64(1), Data: []byte("y")},
			},
		})},
		{"partition key index huge", encode(t, &records.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records:           []*records.Record{{PartitionKeyIndex: u64(1 << 63), Data: []byte("x")}},
		})},
		{"no partition key table", encode(t, &records.AggregatedRecord{
			Records: []*records.Record{{PartitionKeyIndex: u64(0), Data: []byte("x")}},
		})},
		{"explicit hash key index out of range", encode(t, &records.AggregatedRecord{
			PartitionKeyTable:    []string{"a"},
			ExplicitHashKeyTable: []string{"5"},
			Records: []*records.Record{
				{PartitionKeyIndex: u64(0), ExplicitHashKeyIndex: u64(0), Data: []byte("x")},
				{PartitionKeyIndex: u64(0), ExplicitHashKeyIndex: u64(1), Data: []byte("y")},
			},
		})},
		{"missing required partition key index", encode(t, &records.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records:           []*records.Record{{Data: []byte("x")}},
		})},
		{"missing required data", encode(t, &records.AggregatedRecord{
			PartitionKeyTable: []string{"a"},
			Records:           []*records.Record{{PartitionKeyIndex: u64(0)}},
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkWhole(t, tc.data, Stats{Records: 1, UserRecords: 1, Malformed: 1})
		})
	}
}

func TestNilRecord(t *testing.T) {
	dst := []stream.Record{{SequenceNumber: "1"}}
	got, st := Deaggregate(dst, testShard, nil, HashRange{})
	if len(got) != 1 || st != (Stats{}) {
		t.Errorf("got %d records, %+v; want 1 record (dst), zero stats", len(got), st)
	}
}

// TestAppendsToDst checks that Deaggregate keeps dst's records and uses its
// spare capacity.
func TestAppendsToDst(t *testing.T) {
	b := mustAggregate(t, []UserRecord{{PartitionKey: "a", Data: []byte("1")}, {PartitionKey: "b", Data: []byte("2")}})
	dst := make([]stream.Record, 1, 10)
	dst[0].SequenceNumber = "earlier"
	got, _ := Deaggregate(dst, testShard, carrier(b), HashRange{})
	if len(got) != 3 || got[0].SequenceNumber != "earlier" || got[2].PartitionKey != "b" {
		t.Fatalf("got %+v, want the earlier record then a, b", got)
	}
	if &got[0] != &dst[0] {
		t.Errorf("dst had room but was reallocated")
	}
	got, _ = Deaggregate(got, testShard, carrier([]byte("plain")), HashRange{})
	if len(got) != 4 || string(got[3].Data) != "plain" {
		t.Errorf("got %d records ending %q, want 4 ending \"plain\"", len(got), got[len(got)-1].Data)
	}
}

// keyOf is the hash key of a user record, computed independently with big.Int.
func keyOf(r UserRecord) (*big.Int, bool) {
	if r.ExplicitHashKey != "" {
		k, ok := new(big.Int).SetString(r.ExplicitHashKey, 10)
		return k, ok
	}
	sum := md5.Sum([]byte(r.PartitionKey))
	return new(big.Int).SetBytes(sum[:]), true
}

func TestHashRangeFilter(t *testing.T) {
	// Partition keys whose MD5s spread over the whole range.
	recs := make([]UserRecord, 300)
	for i := range recs {
		recs[i] = UserRecord{PartitionKey: fmt.Sprintf("word-%d", i), Data: []byte(fmt.Sprint(i))}
	}
	half := "170141183460469231731687303715884105727" // 2^127-1
	lower := mustRange(t, "0", half)
	upper := mustRange(t, "170141183460469231731687303715884105728", maxHashKey.String())
	quarter := mustRange(t, "85070591730234615865843651857942052864", "255211775190703847597530955573826158591")
	full := mustRange(t, "0", maxHashKey.String())

	ehk := []UserRecord{
		{PartitionKey: "a", ExplicitHashKey: "0", Data: []byte("lowest")},
		{PartitionKey: "a", ExplicitHashKey: half, Data: []byte("top of lower half")},
		{PartitionKey: "a", ExplicitHashKey: "170141183460469231731687303715884105728", Data: []byte("bottom of upper half")},
		{PartitionKey: "a", ExplicitHashKey: maxHashKey.String(), Data: []byte("highest")},
		{PartitionKey: "a", ExplicitHashKey: "000000000000000000000000000000000000000000000042", Data: []byte("leading zeros")},
		{PartitionKey: "a", ExplicitHashKey: "not-a-number", Data: []byte("unparsable: kept")},
		{PartitionKey: "a", ExplicitHashKey: "-1", Data: []byte("negative: kept")},
		{PartitionKey: "a", ExplicitHashKey: "340282366920938463463374607431768211456", Data: []byte("2^128: kept")},
		{PartitionKey: "b", Data: []byte("by partition key")},
	}

	tests := []struct {
		name string
		recs []UserRecord
		hr   HashRange
	}{
		{"lower half", recs, lower},
		{"upper half", recs, upper},
		{"middle half", recs, quarter},
		{"full range", recs, full},
		{"explicit, lower half", ehk, lower},
		{"explicit, upper half", ehk, upper},
		{"explicit, single key", ehk, mustRange(t, "42", "42")},
		{"only start set", recs, HashRange{Start: lower.End}},
		{"only end set", recs, HashRange{End: lower.End}},
		{"out-of-bounds values clamped", recs, HashRange{Start: big.NewInt(-5), End: new(big.Int).Lsh(maxHashKey, 3)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := tc.hr.Start, tc.hr.End
			if lo == nil || lo.Sign() < 0 {
				lo = new(big.Int)
			}
			if hi == nil || hi.Cmp(maxHashKey) > 0 {
				hi = maxHashKey
			}
			var want []int
			for i, r := range tc.recs {
				k, ok := keyOf(r)
				if !ok || k.Sign() < 0 || k.Cmp(maxHashKey) > 0 || (k.Cmp(lo) >= 0 && k.Cmp(hi) <= 0) {
					want = append(want, i)
				}
			}
			got, st := Deaggregate(nil, testShard, carrier(mustAggregate(t, tc.recs)), tc.hr)
			wantSt := Stats{Records: 1, Aggregates: 1, UserRecords: len(want), DroppedOutOfRange: len(tc.recs) - len(want)}
			if st != wantSt {
				t.Errorf("stats: got %+v, want %+v", st, wantSt)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d records, want %d", len(got), len(want))
			}
			for j, i := range want {
				if got[j].SubSequenceNumber != int64(i) || got[j].PartitionKey != tc.recs[i].PartitionKey || !bytes.Equal(got[j].Data, tc.recs[i].Data) {
					t.Errorf("record %d: got sub %d %q %q, want sub %d %q %q", j, got[j].SubSequenceNumber, got[j].PartitionKey, got[j].Data, i, tc.recs[i].PartitionKey, tc.recs[i].Data)
				}
			}
			if tc.recs[0].ExplicitHashKey == "" && tc.hr.Start != nil && tc.hr.End != nil && tc.hr.End.Cmp(maxHashKey) < 0 && (len(want) == 0 || len(want) == len(tc.recs)) {
				t.Errorf("test keys do not straddle the range: kept %d of %d", len(want), len(tc.recs))
			}
		})
	}
}

// TestHashRangeComplement checks that a shard's two children split every
// aggregate between them, dropping nothing twice and keeping nothing twice.
func TestHashRangeComplement(t *testing.T) {
	recs := make([]UserRecord, 1000)
	for i := range recs {
		recs[i] = UserRecord{PartitionKey: fmt.Sprintf("k%d", i)}
	}
	b := mustAggregate(t, recs)
	a, _ := Deaggregate(nil, testShard, carrier(b), mustRange(t, "0", "123456789012345678901234567890123456789"))
	c, _ := Deaggregate(nil, testShard, carrier(b), mustRange(t, "123456789012345678901234567890123456790", maxHashKey.String()))
	if len(a)+len(c) != len(recs) || len(a) == 0 || len(c) == 0 {
		t.Fatalf("children kept %d + %d records, want %d in all, both non-zero", len(a), len(c), len(recs))
	}
	seen := make(map[int64]bool)
	for _, r := range append(a, c...) {
		if seen[r.SubSequenceNumber] {
			t.Errorf("sub-sequence %d kept twice", r.SubSequenceNumber)
		}
		seen[r.SubSequenceNumber] = true
	}
}

func mustRange(t testing.TB, start, end string) HashRange {
	t.Helper()
	hr, err := ParseHashRange(start, end)
	if err != nil {
		t.Fatalf("ParseHashRange(%q, %q): %v", start, end, err)
	}
	return hr
}

func TestParseHashRange(t *testing.T) {
	tests := []struct {
		start, end string
		wantErr    string // substring; "" for success
	}{
		{"0", "340282366920938463463374607431768211455", ""},
		{"5", "5", ""},
		{"0042", "100", ""},
		{"", "5", `starting hash key ""`},
		{"x1", "5", `starting hash key "x1"`},
		{"1", "5.0", `ending hash key "5.0"`},
		{"-1", "5", `starting hash key "-1" is outside`},
		{"0", "340282366920938463463374607431768211456", `ending hash key "340282366920938463463374607431768211456" is outside`},
		{"6", "5", `"6" is after ending hash key "5"`},
	}
	for _, tc := range tests {
		hr, err := ParseHashRange(tc.start, tc.end)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("ParseHashRange(%q, %q): got error %v, want none", tc.start, tc.end, err)
		case tc.wantErr == "" && (hr.Start.String() != strings.TrimLeft(tc.start, "0") && hr.Start.Sign() != 0):
			t.Errorf("ParseHashRange(%q, %q): got start %v", tc.start, tc.end, hr.Start)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseHashRange(%q, %q): got error %v, want one containing %q", tc.start, tc.end, err, tc.wantErr)
		}
	}
}

func TestParseHashKey(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"0", true},
		{"1", true},
		{"18446744073709551615", true}, // 2^64-1
		{"18446744073709551616", true}, // 2^64
		{"170141183460469231731687303715884105728", true},
		{"340282366920938463463374607431768211455", true}, // 2^128-1
		{"0000340282366920938463463374607431768211455", true},
		{"340282366920938463463374607431768211456", false}, // 2^128
		{"999999999999999999999999999999999999999", false},
		{"3402823669209384634633746074317682114550", false},
		{"", false},
		{"+1", false},
		{"-1", false},
		{"1 ", false},
		{"0x10", false},
	}
	for _, tc := range tests {
		k, ok := parseHashKey(tc.in)
		if ok != tc.ok {
			t.Errorf("parseHashKey(%q): got ok %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		want, _ := new(big.Int).SetString(tc.in, 10)
		got := new(big.Int).Lsh(new(big.Int).SetUint64(k.hi), 64)
		got.Or(got, new(big.Int).SetUint64(k.lo))
		if got.Cmp(want) != 0 {
			t.Errorf("parseHashKey(%q): got %v, want %v", tc.in, got, want)
		}
	}
}

func TestHashRangeHelpers(t *testing.T) {
	if !(HashRange{}).IsZero() || !(HashRange{}).Contains("not a key") {
		t.Errorf("zero HashRange: want IsZero and Contains everything")
	}
	lower := mustRange(t, "0", "170141183460469231731687303715884105727")
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"0", true},
		{"170141183460469231731687303715884105727", true},
		{"170141183460469231731687303715884105728", false},
		{"garbage", true},
	} {
		if got := lower.Contains(tc.key); got != tc.want {
			t.Errorf("Contains(%q): got %v, want %v", tc.key, got, tc.want)
		}
	}
	sum := md5.Sum([]byte("hello"))
	if got, want := PartitionKeyHash("hello"), new(big.Int).SetBytes(sum[:]).String(); got != want {
		t.Errorf("PartitionKeyHash(hello): got %s, want %s", got, want)
	}
	long := strings.Repeat("é", 300) // longer than the stack buffer
	sum = md5.Sum([]byte(long))
	if got, want := PartitionKeyHash(long), new(big.Int).SetBytes(sum[:]).String(); got != want {
		t.Errorf("PartitionKeyHash(long): got %s, want %s", got, want)
	}
}

func TestStatsAdd(t *testing.T) {
	s := Stats{Records: 1, Aggregates: 2, UserRecords: 3, DroppedOutOfRange: 4, Malformed: 5}
	s.Add(Stats{Records: 10, Aggregates: 20, UserRecords: 30, DroppedOutOfRange: 40, Malformed: 50})
	want := Stats{Records: 11, Aggregates: 22, UserRecords: 33, DroppedOutOfRange: 44, Malformed: 55}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
}

func TestAggregateEmpty(t *testing.T) {
	for _, recs := range [][]UserRecord{nil, {}} {
		if b, err := Aggregate(recs); !errors.Is(err, ErrEmpty) || b != nil {
			t.Errorf("Aggregate(%v): got %q, %v; want nil, ErrEmpty", recs, b, err)
		}
	}
	var a Aggregator
	if _, err := a.Flush(); !errors.Is(err, ErrEmpty) {
		t.Errorf("Flush of an empty Aggregator: got %v, want ErrEmpty", err)
	}
}

func TestAggregatorLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		rec   func(i int) UserRecord
	}{
		{"small records, 1 KiB", 1024, func(i int) UserRecord {
			return UserRecord{PartitionKey: fmt.Sprintf("key-%d", i%7), Data: []byte(strings.Repeat("d", i%50))}
		}},
		{"explicit hash keys", 2000, func(i int) UserRecord {
			return UserRecord{PartitionKey: fmt.Sprintf("k%d", i), ExplicitHashKey: fmt.Sprint(i * 1000003), Data: []byte("data")}
		}},
		{"varint boundaries", 70000, func(i int) UserRecord {
			return UserRecord{PartitionKey: fmt.Sprintf("%d", i), Data: make([]byte, 100+i*37%300)}
		}},
		{"default limit, big records", 0, func(i int) UserRecord {
			return UserRecord{PartitionKey: fmt.Sprintf("p%d", i%3), Data: make([]byte, 100000+i)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAggregator(tc.limit)
			limit := tc.limit
			if limit == 0 {
				limit = MaxRecordSize
			}
			next := 0
			for round := 0; round < 3; round++ { // reused after Flush
				var added []UserRecord
				for {
					r := tc.rec(next)
					if !a.Add(r) {
						break
					}
					added = append(added, r)
					next++
				}
				if len(added) == 0 || a.Len() != len(added) {
					t.Fatalf("round %d: added %d, Len %d; want the same, non-zero", round, len(added), a.Len())
				}
				// The record refused really would not have fitted.
				over := mustAggregate(t, append(added, tc.rec(next)))
				if len(over)+len(added[0].PartitionKey) <= limit {
					t.Errorf("round %d: refused a record that fits: %d+%d <= %d", round, len(over), len(added[0].PartitionKey), limit)
				}
				size, pk := a.Size(), a.PartitionKey()
				b, err := a.Flush()
				if err != nil {
					t.Fatalf("Flush: %v", err)
				}
				if len(b) != size {
					t.Errorf("round %d: Size said %d, Flush gave %d bytes", round, size, len(b))
				}
				if len(b)+len(pk) > limit {
					t.Errorf("round %d: %d bytes + key %d > limit %d", round, len(b), len(pk), limit)
				}
				if pk != added[0].PartitionKey {
					t.Errorf("round %d: PartitionKey %q, want the first record's %q", round, pk, added[0].PartitionKey)
				}
				if !bytes.Equal(b, mustAggregate(t, added)) {
					t.Errorf("round %d: Flush differs from Aggregate of the same records", round)
				}
				got, st := Deaggregate(nil, testShard, carrier(b), HashRange{})
				if st.UserRecords != len(added) || st.Malformed != 0 {
					t.Fatalf("round %d: got %+v, want %d user records", round, st, len(added))
				}
				for i := range got {
					if got[i].PartitionKey != added[i].PartitionKey || got[i].ExplicitHashKey != added[i].ExplicitHashKey || !bytes.Equal(got[i].Data, added[i].Data) {
						t.Errorf("round %d: record %d differs", round, i)
					}
				}
				if a.Len() != 0 || a.Size() != 0 || a.PartitionKey() != "" {
					t.Errorf("after Flush: Len %d, Size %d, PartitionKey %q; want empty", a.Len(), a.Size(), a.PartitionKey())
				}
			}
		})
	}
}

func TestAggregatorTooBig(t *testing.T) {
	a := NewAggregator(100)
	if a.Add(UserRecord{PartitionKey: "k", Data: make([]byte, 100)}) {
		t.Fatalf("Add of a record bigger than the limit: got true, want false")
	}
	if a.Len() != 0 {
		t.Errorf("Len after refusing: got %d, want 0", a.Len())
	}
	if !a.Add(UserRecord{PartitionKey: "k", ExplicitHashKey: "7", Data: []byte("small")}) {
		t.Fatalf("Add of a small record: got false, want true")
	}
	if a.ExplicitHashKey() != "7" {
		t.Errorf("ExplicitHashKey: got %q, want 7", a.ExplicitHashKey())
	}
}
