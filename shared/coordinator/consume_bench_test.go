package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
)

// countingKinesis answers every GetRecords at once with n plain records
// of 100 bytes over 100 partition keys, whose sequence numbers go on from
// the last answer's.
type countingKinesis struct {
	KinesisAPI // only the read calls are made
	n          int
	next       int64
	keys       []string
	data       []byte
	now        time.Time
}

func newCountingKinesis(n int) *countingKinesis {
	f := &countingKinesis{n: n, next: 1e15, data: make([]byte, 100), now: time.Now()}
	for i := range 100 {
		f.keys = append(f.keys, fmt.Sprint("key-", i))
	}
	return f
}

func (f *countingKinesis) GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("it")}, nil
}

func (f *countingKinesis) GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out := make([]types.Record, f.n)
	for i := range out {
		seq := strconv.FormatInt(f.next, 10)
		f.next++
		out[i] = types.Record{SequenceNumber: &seq, PartitionKey: &f.keys[i%len(f.keys)], Data: f.data, ApproximateArrivalTimestamp: &f.now}
	}
	return &kinesis.GetRecordsOutput{Records: out, NextShardIterator: aws.String("it"), MillisBehindLatest: aws.Int64(1000)}, nil
}

// refusingDynamo refuses the release at the end of a benchmark; no other
// lease write is made (no checkpoint falls due, no renewal is needed).
type refusingDynamo struct{ lease.DynamoDBAPI }

func (refusingDynamo) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, errors.New("benchmark: no lease table")
}

// BenchmarkConsume: a shard's whole loop (consume: read, de-aggregate,
// deliver, report done, checkpoint bookkeeping) over a fake Kinesis that
// answers 20,000 plain records at once, into a handler that does nothing,
// batch size 100, metrics NONE; an op is one user record. The reader
// waits 200 ms between reads as Kinesis's 5 reads/s require, so wall time
// is mostly waiting: cpu-ns/record (the process's user and system CPU
// time over the records) is the cost.
//
//	go test -run '^$' -bench BenchmarkConsume -benchmem ./shared/coordinator/
func BenchmarkConsume(b *testing.B) {
	for _, factor := range []int{1, 4} {
		b.Run(fmt.Sprintf("factor=%d", factor), func(b *testing.B) {
			var handled atomic.Int64
			var h *held
			var stopOnce sync.Once
			handler := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
				if handled.Add(int64(len(ev.Records))) >= int64(b.N) {
					stopOnce.Do(h.stopFetching)
				}
				return events.KinesisEventResponse{}, nil
			}
			w, err := New(Config{
				AppName: "bench", StreamName: "s", Kinesis: newCountingKinesis(20000), DynamoDB: refusingDynamo{},
				Handler: handler, BatchSize: 100, ParallelizationFactor: factor, InitialPosition: stream.TrimHorizon,
				CheckpointInterval: time.Hour, DrainTimeout: time.Millisecond, MaxRetryAttempts: -1, MetricsLevel: metrics.None,
			})
			if err != nil {
				b.Fatal(err)
			}
			h = newHeld(context.Background(), lease.Lease{Key: "shardId-000000000000", Checkpoint: stream.Position{Seq: stream.TrimHorizon}})
			st := &shardStats{s: ShardStats{ShardID: "shardId-000000000000", MillisBehindLatest: -1}}
			b.ReportAllocs()
			cpu := cpuTime()
			b.ResetTimer()
			w.consume(h, st)
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(handled.Load()), "cpu-ns/record")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
