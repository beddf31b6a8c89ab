package coordinator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
)

// What the metrics cost on the hot path, at each level. A batch is 100
// user records of 100 bytes; the handler does nothing, and Kinesis is a
// fake that answers at once, so the cost of the metrics is as large a
// share of the whole as it can be (a real GetRecords and a real handler
// only add to the denominator). Each op also does the worker's own
// bookkeeping after a read or a delivery, as consume does (setFetch,
// addRead, setDispatch). ns/record is ns/op over 100.
//
//	go test -run '^$' -bench BenchmarkMetrics -benchmem -count 6 ./shared/coordinator/
const benchRecords, benchBytes = 100, 100

var benchLevels = []metrics.Level{metrics.None, metrics.Summary, metrics.Detailed}

func noopHandler(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
	return events.KinesisEventResponse{}, nil
}

func benchUserRecords() []stream.Record {
	recs := make([]stream.Record, benchRecords)
	now := time.Now()
	for i := range recs {
		recs[i] = stream.Record{ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprintf("4961%056d", i),
			PartitionKey: fmt.Sprint("key-", i), Data: make([]byte, benchBytes), ApproximateArrivalTimestamp: now}
	}
	return recs
}

// fakeKinesis answers every GetRecords with the same records, behind the
// tip, at once.
type fakeKinesis struct{ out *kinesis.GetRecordsOutput }

func newFakeKinesis() *fakeKinesis {
	recs := make([]types.Record, benchRecords)
	now := time.Now()
	for i := range recs {
		recs[i] = types.Record{SequenceNumber: aws.String(fmt.Sprintf("4961%056d", i)), PartitionKey: aws.String(fmt.Sprint("key-", i)),
			Data: make([]byte, benchBytes), ApproximateArrivalTimestamp: &now}
	}
	return &fakeKinesis{out: &kinesis.GetRecordsOutput{Records: recs, NextShardIterator: aws.String("it"), MillisBehindLatest: aws.Int64(1000)}}
}

func (f *fakeKinesis) GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("it")}, nil
}

func (f *fakeKinesis) GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	return f.out, nil
}

func benchDispatcher(b *testing.B, level metrics.Level) *dispatch.Dispatcher {
	b.Helper()
	d, err := dispatch.New(dispatch.Config{Handler: noopHandler, BatchSize: benchRecords, MaxRetryAttempts: -1,
		OversizeAlone: true, NoTiming: level == metrics.None})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func benchReader(b *testing.B, level metrics.Level) *fetch.Reader {
	b.Helper()
	r, err := fetch.New(newFakeKinesis(), fetch.Config{StreamName: "s", ShardID: "shardId-000000000000",
		Start: stream.Position{Seq: stream.TrimHorizon}, BusyInterval: time.Nanosecond, IdleInterval: time.Nanosecond,
		NoTiming: level == metrics.None})
	if err != nil {
		b.Fatal(err)
	}
	return r
}

func perRecord(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRecords), "ns/record")
}

// BenchmarkMetricsDeliver: Dispatcher.Deliver of one batch, then the
// worker's setDispatch.
func BenchmarkMetricsDeliver(b *testing.B) {
	for _, level := range benchLevels {
		b.Run(level.String(), func(b *testing.B) {
			d, recs, st := benchDispatcher(b, level), benchUserRecords(), &shardStats{}
			ctx, done := context.Background(), func(stream.Position) {}
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Deliver(ctx, nil, recs, done); err != nil {
					b.Fatal(err)
				}
				st.setDispatch(d.Stats())
			}
			perRecord(b)
		})
	}
}

// BenchmarkMetricsFetch: fetch.Reader.Next of one GetRecords answer, then
// the worker's setFetch.
func BenchmarkMetricsFetch(b *testing.B) {
	for _, level := range benchLevels {
		b.Run(level.String(), func(b *testing.B) {
			r, st, ctx := benchReader(b, level), &shardStats{}, context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Next(ctx); err != nil {
					b.Fatal(err)
				}
				if level != metrics.None {
					st.setFetch(r.Stats())
				}
			}
			perRecord(b)
		})
	}
}

// BenchmarkMetricsShard: one turn of a shard's loop without I/O: read,
// de-aggregate, count the read, deliver, count the delivery.
func BenchmarkMetricsShard(b *testing.B) {
	for _, level := range benchLevels {
		b.Run(level.String(), func(b *testing.B) {
			r, d, st := benchReader(b, level), benchDispatcher(b, level), &shardStats{}
			ctx, done := context.Background(), func(stream.Position) {}
			var recs []stream.Record
			b.ReportAllocs()
			for b.Loop() {
				batch, err := r.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if level != metrics.None {
					st.setFetch(r.Stats())
				}
				recs = recs[:0]
				var ks kpl.Stats
				for i := range batch.Records {
					var s kpl.Stats
					recs, s = kpl.Deaggregate(recs, "shardId-000000000000", &batch.Records[i], kpl.HashRange{})
					ks.Add(s)
				}
				st.addRead(ks, batch.MillisBehindLatest)
				if err := d.Deliver(ctx, nil, recs, done); err != nil {
					b.Fatal(err)
				}
				st.setDispatch(d.Stats())
			}
			perRecord(b)
		})
	}
}

// BenchmarkMetricsTiming: what DETAILED and SUMMARY add to each handler
// call and each GetRecords over NONE: two clock reads and a histogram
// observation (the snapshot the worker takes after each read and delivery
// is counted in the benchmarks above, at every level).
func BenchmarkMetricsTiming(b *testing.B) {
	var h metrics.Hist
	b.ReportAllocs()
	for b.Loop() {
		began := time.Now()
		h.Observe(time.Since(began))
	}
}
