package kpl

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"

	"github.com/shardline/shardline/shared/stream"
)

// benchRecords is 100 user records of ~100 bytes with distinct keys.
func benchRecords() []UserRecord {
	recs := make([]UserRecord, 100)
	for i := range recs {
		data := fmt.Appendf(nil, "%03d ", i)
		for len(data) < 100 {
			data = append(data, "lorem ipsum dolor sit amet "...)
		}
		recs[i] = UserRecord{PartitionKey: fmt.Sprintf("partition-%d", i), Data: data[:100]}
	}
	return recs
}

func BenchmarkDeaggregate(b *testing.B) {
	agg := mustAggregate(b, benchRecords())
	half := mustRange(b, "0", "170141183460469231731687303715884105727")
	for _, bc := range []struct {
		name string
		data []byte
		hr   HashRange
	}{
		{"aggregate", agg, HashRange{}},
		{"aggregate-half-range", agg, half},
		{"plain", agg[1:], half},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := carrier(bc.data)
			var dst []stream.Record
			b.SetBytes(int64(len(bc.data)))
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = Deaggregate(dst[:0], testShard, r, bc.hr)
			}
		})
	}
}

func BenchmarkAggregate(b *testing.B) {
	recs := benchRecords()
	size := len(mustAggregate(b, recs))
	b.Run("Aggregate", func(b *testing.B) {
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Aggregate(recs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Aggregator", func(b *testing.B) {
		var a Aggregator
		b.SetBytes(int64(size))
		b.ReportAllocs()
		for b.Loop() {
			for _, r := range recs {
				a.Add(r)
			}
			if _, err := a.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDeaggregateAwslabs is awslabs' de-aggregator on the same
// aggregate, for comparison (issue #11: at most a third of its time per user
// record, at most one allocation per user record).
func BenchmarkDeaggregateAwslabs(b *testing.B) {
	agg := mustAggregate(b, benchRecords())
	r := carrier(agg)
	b.SetBytes(int64(len(agg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := deaggregator.DeaggregateRecords([]types.Record{*r}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeaggregateAnswer: a whole GetRecords answer of 80 aggregates
// of 100 user records of 100 bytes (~1 MB), as the worker de-aggregates
// it (CheckAll, then DeaggregateChecked per record) and as awslabs'
// deaggregator does (DeaggregateRecords of the answer). ns/user-record.
func BenchmarkDeaggregateAnswer(b *testing.B) {
	recs := answerOf(b, 80, 100, 100)
	b.Run("shardline", func(b *testing.B) {
		var dst []stream.Record
		b.ReportAllocs()
		for b.Loop() {
			good := CheckAll(recs)
			dst = dst[:0]
			for i := range recs {
				dst, _ = DeaggregateChecked(dst, testShard, &recs[i], HashRange{}, good != nil && good[i])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8000), "ns/user-record")
	})
	b.Run("awslabs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := deaggregator.DeaggregateRecords(recs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8000), "ns/user-record")
	})
}
