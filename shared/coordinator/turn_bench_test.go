package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/stream"
)

// sameAnswer answers every GetRecords with a fresh copy of the same
// records (a copy, as read clears what it has de-aggregated).
type sameAnswer struct{ recs []types.Record }

func (f *sameAnswer) GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("it")}, nil
}

func (f *sameAnswer) GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	out := make([]types.Record, len(f.recs))
	copy(out, f.recs)
	return &kinesis.GetRecordsOutput{Records: out, NextShardIterator: aws.String("it"), MillisBehindLatest: aws.Int64(1000)}, nil
}

// BenchmarkTurn: the worker's own cost per user record, without I/O: read
// (de-aggregate a chunk at a time) and deliver to a handler that does
// nothing, as consume does, for an answer of 80 KPL aggregates of 100
// user records of 100 bytes, and for one of 1,000 plain records; batch
// size 1,000. Reported per user record.
//
//	go test -run '^$' -bench BenchmarkTurn -benchmem ./shared/coordinator/
func BenchmarkTurn(b *testing.B) {
	now := time.Now()
	kplAnswer := make([]types.Record, 80)
	for a := range kplAnswer {
		urs := make([]kpl.UserRecord, 100)
		for i := range urs {
			urs[i] = kpl.UserRecord{PartitionKey: fmt.Sprintf("key-%d-%d", a, i), Data: make([]byte, 100)}
		}
		blob, err := kpl.Aggregate(urs)
		if err != nil {
			b.Fatal(err)
		}
		kplAnswer[a] = types.Record{SequenceNumber: aws.String(fmt.Sprintf("4961%056d", a)), PartitionKey: aws.String("k"),
			Data: blob, ApproximateArrivalTimestamp: &now}
	}
	plainAnswer := make([]types.Record, 1000)
	for i := range plainAnswer {
		plainAnswer[i] = types.Record{SequenceNumber: aws.String(fmt.Sprintf("4961%056d", i)), PartitionKey: aws.String(fmt.Sprint("key-", i)),
			Data: make([]byte, 100), ApproximateArrivalTimestamp: &now}
	}
	for _, c := range []struct {
		name string
		recs []types.Record
		user int
	}{{"kpl", kplAnswer, 8000}, {"plain", plainAnswer, 1000}} {
		b.Run(c.name, func(b *testing.B) {
			r, err := fetch.New(&sameAnswer{recs: c.recs}, fetch.Config{StreamName: "s", ShardID: "shardId-000000000000",
				Start: stream.Position{Seq: stream.TrimHorizon}, BusyInterval: time.Nanosecond, IdleInterval: time.Nanosecond, TargetBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			w := &Worker{cfg: Config{BatchSize: 1000, ReadBudget: 16 << 20}, log: slog.New(slog.DiscardHandler)}
			d, err := dispatch.New(dispatch.Config{Handler: noopHandler, BatchSize: 1000, MaxRetryAttempts: -1, OversizeAlone: true})
			if err != nil {
				b.Fatal(err)
			}
			h := newHeld(context.Background(), lease.Lease{Key: "shardId-000000000000"})
			ctx, done := context.Background(), func(stream.Position) {}
			c := newReadingConsumer(w, h, r)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.read(ctx, 0); err != nil {
					b.Fatal(err)
				}
				n += len(c.recs)
				if err := d.Deliver(ctx, nil, c.recs, done); err != nil {
					b.Fatal(err)
				}
				clear(c.recs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/user-record")
		})
	}
}
