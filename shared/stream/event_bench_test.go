package stream

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkEvent: building the Lambda event of a batch of 1,000 user records
// of KPL aggregates (the handler's own copy of every record).
//
//	go test -run '^$' -bench BenchmarkEvent -benchmem ./shared/stream/
func BenchmarkEvent(b *testing.B) {
	recs, src := benchBatch()
	var sink int
	for b.Loop() {
		ev := Event(src, recs)
		sink += len(ev.Records)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

// BenchmarkEventOwnData: BenchmarkEvent plus OwnData, as every handler
// call builds its event (a copy of the batch's data, one allocation).
//
//	go test -run '^$' -bench 'BenchmarkEvent' -benchmem ./shared/stream/
func BenchmarkEventOwnData(b *testing.B) {
	recs, src := benchBatch()
	var sink int
	for b.Loop() {
		ev := Event(src, recs)
		OwnData(&ev)
		sink += len(ev.Records)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}

// benchBatch is 1,000 user records of KPL aggregates, 100 bytes each.
func benchBatch() ([]Record, Source) {
	recs := make([]Record, 1000)
	now := time.Now()
	data := make([]byte, 100)
	for i := range recs {
		recs[i] = Record{ShardID: "shardId-000000000003", SequenceNumber: fmt.Sprintf("4961%052d", i/100),
			SubSequenceNumber: int64(i % 100), Aggregated: true, PartitionKey: fmt.Sprint("key-", i),
			Data: data, ApproximateArrivalTimestamp: now}
	}
	return recs, Source{Region: "us-east-1", StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s"}
}
