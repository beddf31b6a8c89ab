package kpl

import (
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	md5simd "github.com/minio/md5-simd"
)

// answerOf makes n aggregates of per user records of size bytes each.
func answerOf(t testing.TB, n, per, size int) []types.Record {
	recs := make([]types.Record, n)
	for a := range recs {
		urs := make([]UserRecord, per)
		for i := range urs {
			urs[i] = UserRecord{PartitionKey: fmt.Sprintf("key-%d-%d", a, i), Data: make([]byte, size)}
		}
		blob, err := Aggregate(urs)
		if err != nil {
			t.Fatal(err)
		}
		recs[a] = types.Record{SequenceNumber: aws.String(fmt.Sprint(a)), PartitionKey: aws.String("k"), Data: blob}
	}
	return recs
}

func BenchmarkCheckAll(b *testing.B) {
	recs := answerOf(b, 80, 100, 100)
	b.Run("simd", func(b *testing.B) {
		for b.Loop() {
			CheckAll(recs)
		}
	})
	b.Run("std", func(b *testing.B) {
		for b.Loop() {
			for i := range recs {
				d := recs[i].Data
				_ = checksumOK(d)
			}
		}
	})
}

// CheckAll finds right exactly the aggregates whose checksum is right (of
// the size it checks), whatever else the answer holds, from many shards
// at once; and a record it found right de-aggregates as Deaggregate does.
func TestCheckAll(t *testing.T) {
	big := answerOf(t, 40, 100, 100) // ~12 KB aggregates: checked
	small := answerOf(t, 3, 2, 10)   // under minSIMD: left to Deaggregate
	bad := answerOf(t, 2, 100, 100)  // checksums broken below
	for i := range bad {
		d := append([]byte(nil), bad[i].Data...)
		d[len(d)-1] ^= 0xff
		bad[i].Data = d
	}
	plain := []types.Record{{SequenceNumber: aws.String("p"), PartitionKey: aws.String("k"), Data: make([]byte, 8<<10)}}
	var recs []types.Record
	var want []bool
	add := func(rs []types.Record, w bool) {
		for _, r := range rs {
			recs = append(recs, r)
			want = append(want, w)
		}
	}
	add(big[:20], true)
	add(bad[:1], false)
	add(small, false)
	add(plain, false)
	add(big[20:], true)
	add(bad[1:], false)
	if server() == nil {
		if CheckAll(recs) != nil {
			t.Fatal("checked without AVX2")
		}
		t.Skip("no AVX2: CheckAll checks nothing")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				got := CheckAll(recs)
				if got == nil {
					continue // every set of hashers in use: nothing checked
				}
				if len(got) != len(recs) {
					t.Errorf("%d results for %d records", len(got), len(recs))
					return
				}
				for i := range got {
					if got[i] != want[i] {
						t.Errorf("record %d: good %v, want %v", i, got[i], want[i])
					}
				}
			}
		})
	}
	wg.Wait()
	if CheckAll(big[:1]) != nil || CheckAll(small) != nil || CheckAll(plain) != nil {
		t.Error("checked an answer with fewer than two large aggregates")
	}
	// With every set of hashers taken, nothing is checked (and nothing
	// waits): the records are checked one by one as Deaggregate does.
	var taken []*[lanes]md5simd.Hasher
	for {
		hs := getHashers()
		if hs == nil {
			break
		}
		taken = append(taken, hs)
	}
	if len(taken) != maxSets {
		t.Errorf("%d sets of hashers, want at most %d", len(taken), maxSets)
	}
	if got := CheckAll(recs); got != nil {
		t.Error("checked with no hashers free")
	}
	for _, hs := range taken {
		putHashers(hs)
	}
	if got := CheckAll(recs); got == nil {
		t.Error("nothing checked once the hashers were back")
	}
	// Checked and unchecked de-aggregation agree; a broken checksum given
	// as unchecked is delivered whole, as Deaggregate does.
	for i := range recs {
		a, sa := Deaggregate(nil, "s", &recs[i], HashRange{})
		b, sb := DeaggregateChecked(nil, "s", &recs[i], HashRange{}, want[i])
		if sa != sb || len(a) != len(b) {
			t.Fatalf("record %d: checked %v/%d, unchecked %v/%d", i, sb, len(b), sa, len(a))
		}
		for j := range a {
			if a[j].PartitionKey != b[j].PartitionKey || string(a[j].Data) != string(b[j].Data) || a[j].SubSequenceNumber != b[j].SubSequenceNumber {
				t.Fatalf("record %d user record %d differs", i, j)
			}
		}
	}
	if _, st := Deaggregate(nil, "s", &bad[0], HashRange{}); st.Malformed != 1 {
		t.Errorf("a broken checksum: %+v, want delivered whole as malformed", st)
	}
}
