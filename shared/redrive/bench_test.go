package redrive

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/destination/sqsdest"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

// BenchmarkRedriveSQS: records/s of a redrive from an SQS queue on moto
// holding benchMessages on-failure messages of benchPer records of 100
// bytes (4 shards), to an in-process handler that does nothing, with
// -batch-size 100: receive, parse, sort, deliver, delete. Each iteration
// fills the queue (not timed) and empties it. The redrive's last receive
// waits 1 s for messages that are not there (the end of the queue): it is
// in the time.
func BenchmarkRedriveSQS(b *testing.B) {
	moto := standintest.Moto(b)
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b.Setenv("AWS_ACCESS_KEY_ID", "local")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	ctx := context.Background()
	sc := standintest.SQSClient(moto.Endpoint)
	q, err := sc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(strings.ReplaceAll(standintest.UniqueName(b), ".", "_"))})
	if err != nil {
		b.Fatal(err)
	}
	url := aws.ToString(q.QueueUrl)
	queue, err := sqsdest.ParseQueue(url)
	if err != nil {
		b.Fatal(err)
	}
	const benchMessages, benchPer = 200, 100
	bodies := make([]string, benchMessages)
	data := []byte(strings.Repeat("d", 100))
	for m := range benchMessages {
		shard := fmt.Sprintf("shardId-00000000000%d", m%4)
		f := dispatch.Failure{ShardID: shard, StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/bench", Reason: dispatch.ReasonRetriesExhausted, Time: time.Now()}
		for i := range benchPer {
			n := m*benchPer + i
			f.Records = append(f.Records, stream.Record{ShardID: shard, SequenceNumber: fmt.Sprintf("4966%052d", n), PartitionKey: fmt.Sprintf("key-%d", n%50),
				Data: data, ApproximateArrivalTimestamp: time.Now()})
		}
		body, err := record.Marshal(record.New(f))
		if err != nil {
			b.Fatal(err)
		}
		bodies[m] = string(body)
	}
	fill := func() {
		for i := 0; i < len(bodies); i += 10 {
			in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(url)}
			for j, body := range bodies[i:min(i+10, len(bodies))] {
				in.Entries = append(in.Entries, types.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(body)})
			}
			if _, err := sc.SendMessageBatch(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	}
	var total int64
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		fill()
		var counter countingHandler
		r, err := New(Config{Source: NewSQSSource(queue, sc, time.Minute), Logger: slog.New(slog.DiscardHandler),
			Dispatch: dispatch.Config{Handler: counter.handle, BatchSize: 100, MaxBatchBytes: -1, NoTiming: true}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		began := time.Now()
		sum, err := r.Run(ctx)
		took += time.Since(began)
		if err != nil {
			b.Fatal(err)
		}
		if _, h, _, _ := sum.Totals(); h != benchMessages*benchPer || counter.n.Load() != benchMessages*benchPer {
			b.Fatalf("handled %d (%d calls' records), want %d", h, counter.n.Load(), benchMessages*benchPer)
		}
		total += benchMessages * benchPer
	}
	b.ReportMetric(float64(total)/took.Seconds(), "records/s")
	b.ReportMetric(0, "ns/op")
}

type countingHandler struct{ n atomic.Int64 }

func (c *countingHandler) handle(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	c.n.Add(int64(len(ev.Records)))
	return events.KinesisEventResponse{}, nil
}
