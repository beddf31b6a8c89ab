package coordinator_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

func benchFixture(b *testing.B, shards int) *fixture {
	b.Helper()
	k, d := standintest.Both(b)
	b.Setenv("AWS_ACCESS_KEY_ID", "local")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	cl, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1", KinesisEndpoint: k.Endpoint, DynamoDBEndpoint: d.Endpoint})
	if err != nil {
		b.Fatal(err)
	}
	return &fixture{stream: standintest.NewStream(b, k.Endpoint, shards), app: standintest.UniqueName(b), kinesis: cl.Kinesis, dynamo: cl.DynamoDB}
}

func benchWorker(b *testing.B, f *fixture, h stream.Handler) func() {
	w, err := coordinator.New(coordinator.Config{
		AppName: f.app, StreamName: f.stream, InitialPosition: stream.TrimHorizon, Handler: h,
		MaxRetryAttempts: -1, Kinesis: f.kinesis, DynamoDB: f.dynamo, BatchSize: 1000,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliveryLatency: one record put, then waited for in the handler
// of a caught-up worker (1 shard, default settings: a read every 200 ms
// while idle). ns/op is the put-to-handler latency.
func BenchmarkDeliveryLatency(b *testing.B) {
	f := benchFixture(b, 1)
	got := make(chan string, 16)
	stop := benchWorker(b, f, func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		for _, r := range ev.Records {
			got <- string(r.Kinesis.Data)
		}
		return events.KinesisEventResponse{}, nil
	})
	defer stop()
	p, err := produce.New(context.Background(), f.kinesis, f.stream, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint(i)
		if err := p.Put(context.Background(), []kpl.UserRecord{{PartitionKey: id, Data: []byte(id)}}); err != nil {
			b.Fatal(err)
		}
		for got := range got {
			if got == id {
				break
			}
		}
	}
}

// BenchmarkThroughput: user records per second through a worker reading
// 4 shards of KPL aggregates (100 user records of ~40 B each) into a
// handler that does nothing. Reported as records/s.
func BenchmarkThroughput(b *testing.B) {
	f := benchFixture(b, 4)
	const n = 40000
	p, err := produce.New(context.Background(), f.kinesis, f.stream, 100)
	if err != nil {
		b.Fatal(err)
	}
	var recs []kpl.UserRecord
	for i := range n {
		recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint("key-", i%1000), Data: fmt.Appendf(nil, "key-%d:%d 1 2 3 4 5 6 7 8 9", i%1000, i)})
	}
	if err := p.Put(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		f.app = standintest.UniqueName(b) // a fresh application reads it all again
		var count atomic.Int64
		all := make(chan struct{})
		start := time.Now()
		stop := benchWorker(b, f, func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			if count.Add(int64(len(ev.Records))) == n {
				close(all)
			}
			return events.KinesisEventResponse{}, nil
		})
		<-all
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
		stop()
	}
}
