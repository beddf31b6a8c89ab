package kpl

import (
	"bytes"
	"crypto/md5"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/awslabs/kinesis-aggregation/go/v2/records"
	protov1 "github.com/golang/protobuf/proto"

	"github.com/shardline/shardline/shared/stream"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz/FuzzDeaggregate")

// seedCorpus is FuzzDeaggregate's committed seed corpus, by file name.
func seedCorpus(t testing.TB) map[string][]byte {
	spread := make([]UserRecord, 12)
	for i := range spread {
		spread[i] = UserRecord{PartitionKey: fmt.Sprintf("word-%d", i), Data: []byte(fmt.Sprint(i))}
	}
	mixed := mustAggregate(t, []UserRecord{
		{PartitionKey: "a", Data: []byte("one")},
		{PartitionKey: "b", ExplicitHashKey: "170141183460469231731687303715884105728", Data: []byte("two")},
		{PartitionKey: "a", ExplicitHashKey: "12", Data: []byte("three")},
		{PartitionKey: "c", ExplicitHashKey: "garbage", Data: nil},
	})
	badMD5 := bytes.Clone(mixed)
	badMD5[len(badMD5)-5] ^= 0x10
	return map[string][]byte{
		"valid-one":         mustAggregate(t, []UserRecord{{PartitionKey: "k", Data: []byte("hello")}}),
		"valid-mixed":       mixed,
		"valid-spread":      mustAggregate(t, spread),
		"truncated":         mixed[:len(mixed)-7],
		"bad-md5":           badMD5,
		"plain":             []byte("just a plain record"),
		"magic-only":        []byte(Magic),
		"empty-aggregate":   encode(t, &records.AggregatedRecord{PartitionKeyTable: []string{"a"}}),
		"pk-index-too-high": encode(t, &records.AggregatedRecord{PartitionKeyTable: []string{"a"}, Records: []*records.Record{{PartitionKeyIndex: u64(3), Data: []byte("x")}}}),
	}
}

// TestSeedCorpus checks the committed seed corpus is there; with
// -update-corpus it writes it.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDeaggregate")
	for name, data := range seedCorpus(t) {
		path := filepath.Join(dir, name)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("seed corpus file missing (run go test -run TestSeedCorpus -update-corpus): %v", err)
		}
	}
}

// FuzzDeaggregate feeds arbitrary data to Deaggregate as a Kinesis record's
// data and checks its invariants, without and with a hash range filter.
func FuzzDeaggregate(f *testing.F) {
	lower, err := ParseHashRange("0", "170141183460469231731687303715884105727")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Random mutations almost never keep the MD5 digest right, so most
		// inputs would stop at the digest check. Each input is therefore
		// also tried with a correct digest, to reach the protobuf and the
		// table indexes.
		fuzzDeaggregate(t, data, lower)
		fuzzDeaggregate(t, withDigest(data), lower)
	})
}

// withDigest returns data as an aggregate with a correct digest: its own
// body if it has the magic and room for a digest, else data as the body.
func withDigest(data []byte) []byte {
	if len(data) >= overhead && string(data[:len(Magic)]) == Magic {
		return frame(data[len(Magic) : len(data)-md5.Size])
	}
	return frame(data)
}

// fuzzDeaggregate checks Deaggregate's invariants on one input.
func fuzzDeaggregate(t *testing.T, data []byte, lower HashRange) {
	orig := bytes.Clone(data)
	all := checkDeaggregate(t, data, HashRange{})
	kept := checkDeaggregate(t, data, lower)
	if !bytes.Equal(data, orig) {
		t.Fatalf("Deaggregate modified its input")
	}
	if len(all) == 0 {
		t.Fatalf("no records without a hash range filter")
	}
	// Aggregates are exactly the inputs that are well formed.
	agg, ok := wellFormed(data)
	if ok != all[0].Aggregated {
		t.Fatalf("well formed %v, but delivered as aggregated %v", ok, all[0].Aggregated)
	}
	// The filtered records are exactly the unfiltered ones in range.
	var hasEHK []bool // by sub-sequence number: explicit hash key present
	if ok {
		for _, ur := range agg.Records {
			hasEHK = append(hasEHK, ur.ExplicitHashKeyIndex != nil)
		}
	}
	var want []stream.Record
	for _, r := range all {
		if !r.Aggregated || inRangeBig(r, hasEHK[r.SubSequenceNumber], lower) {
			want = append(want, r)
		}
	}
	if len(kept) != len(want) {
		t.Fatalf("filtered: got %d records, want %d of %d", len(kept), len(want), len(all))
	}
	for i := range kept {
		if !sameRecord(kept[i], want[i]) {
			t.Fatalf("filtered record %d: got %+v, want %+v", i, kept[i], want[i])
		}
	}
	// User records survive a round trip through Aggregate.
	if !all[0].Aggregated {
		return
	}
	recs := make([]UserRecord, len(all))
	for i, r := range all {
		recs[i] = UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey, Data: r.Data}
	}
	again, st := Deaggregate(nil, testShard, carrier(mustAggregate(t, recs)), HashRange{})
	if st.Aggregates != 1 || len(again) != len(all) {
		t.Fatalf("round trip: got %d records, %+v; want %d", len(again), st, len(all))
	}
	for i := range again {
		if again[i].SubSequenceNumber != int64(i) || again[i].PartitionKey != all[i].PartitionKey ||
			again[i].ExplicitHashKey != all[i].ExplicitHashKey || !bytes.Equal(again[i].Data, all[i].Data) {
			t.Fatalf("round trip: record %d: got %+v, want %+v", i, again[i], all[i])
		}
	}
}

// wellFormed decides independently of Deaggregate whether data is a
// well-formed aggregate, and decodes it.
func wellFormed(data []byte) (*records.AggregatedRecord, bool) {
	if len(data) < overhead || !bytes.HasPrefix(data, []byte(Magic)) {
		return nil, false
	}
	body := data[len(Magic) : len(data)-md5.Size]
	if sum := md5.Sum(body); !bytes.HasSuffix(data, sum[:]) {
		return nil, false
	}
	var agg records.AggregatedRecord
	if err := protov1.Unmarshal(body, &agg); err != nil || len(agg.Records) == 0 {
		return nil, false
	}
	for _, ur := range agg.Records {
		if ur.GetPartitionKeyIndex() >= uint64(len(agg.PartitionKeyTable)) ||
			(ur.ExplicitHashKeyIndex != nil && *ur.ExplicitHashKeyIndex >= uint64(len(agg.ExplicitHashKeyTable))) {
			return nil, false
		}
	}
	return &agg, true
}

// inRangeBig is the hash range test done independently with big.Int.
func inRangeBig(r stream.Record, hasEHK bool, hr HashRange) bool {
	if hasEHK && r.ExplicitHashKey == "" {
		return true // present but empty: unparsable, kept
	}
	k, ok := keyOf(UserRecord{PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey})
	if !ok || k.Sign() < 0 || k.Cmp(maxHashKey) > 0 {
		return true
	}
	return k.Cmp(hr.Start) >= 0 && k.Cmp(hr.End) <= 0
}

// checkDeaggregate runs Deaggregate on data and checks the invariants that
// hold for any input; it returns the records delivered.
func checkDeaggregate(t *testing.T, data []byte, hr HashRange) []stream.Record {
	t.Helper()
	prefix := []stream.Record{{SequenceNumber: "before"}}
	out, st := Deaggregate(prefix, testShard, carrier(data), hr)
	if len(out) < 1 || out[0].SequenceNumber != "before" {
		t.Fatalf("dst's records not kept")
	}
	got := out[1:]
	if st.Records != 1 || st.UserRecords != len(got) || st.Malformed+st.Aggregates > 1 {
		t.Fatalf("stats %+v for %d records", st, len(got))
	}
	if hr.IsZero() && st.DroppedOutOfRange != 0 {
		t.Fatalf("dropped %d records without a hash range", st.DroppedOutOfRange)
	}
	if st.Aggregates == 0 {
		// Plain or malformed: delivered whole.
		if len(got) != 1 || got[0].Aggregated || got[0].SubSequenceNumber != 0 || !bytes.Equal(got[0].Data, data) ||
			got[0].PartitionKey != "carrier-key" || got[0].SequenceNumber != testSeq || st.DroppedOutOfRange != 0 {
			t.Fatalf("plain record (%+v): got %+v, want one plain record with the input", st, got)
		}
		if st.Malformed == 1 && (len(data) < overhead || string(data[:len(Magic)]) != Magic) {
			t.Fatalf("malformed without the magic")
		}
		return got
	}
	if len(got) == 0 && st.DroppedOutOfRange == 0 {
		t.Fatalf("aggregate gave no records and dropped none")
	}
	for i, r := range got {
		if !r.Aggregated || r.SequenceNumber != testSeq || r.ShardID != testShard || r.SubSequenceNumber < 0 ||
			(i > 0 && r.SubSequenceNumber <= got[i-1].SubSequenceNumber) {
			t.Fatalf("record %d: %+v (previous sub-sequence %d)", i, r, got[max(i-1, 0)].SubSequenceNumber)
		}
	}
	if n := int64(st.UserRecords + st.DroppedOutOfRange); len(got) > 0 && got[len(got)-1].SubSequenceNumber >= n {
		t.Fatalf("sub-sequence %d beyond the %d user records", got[len(got)-1].SubSequenceNumber, n)
	}
	return got
}
