package coordinator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/stream"
)

// oneAnswer answers the first GetRecords with recs and an end of shard.
type oneAnswer struct {
	recs  []types.Record
	calls int
}

func (f *oneAnswer) GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("it")}, nil
}

func (f *oneAnswer) GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	f.calls++
	return &kinesis.GetRecordsOutput{Records: slices.Clone(f.recs), MillisBehindLatest: aws.Int64(0),
		ChildShards: []types.ChildShard{{ShardId: aws.String("shardId-000000000009")}}}, nil
}

// A GetRecords answer is de-aggregated a chunk at a time: a shard holds
// the answer and about a chunk of user records (BatchSize ×
// ParallelizationFactor, plus the rest of the aggregate that crossed it),
// not every user record of the answer at once. The answer is read once,
// every user record comes out in order, and the end of the shard comes
// with the last of them.
func TestReadDeaggregatesAChunkAtATime(t *testing.T) {
	const aggregates, per = 5, 100
	var recs []types.Record
	for a := range aggregates {
		urs := make([]kpl.UserRecord, per)
		for i := range urs {
			urs[i] = kpl.UserRecord{PartitionKey: fmt.Sprint("k", i), Data: []byte(fmt.Sprint(a*per + i))}
		}
		blob, err := kpl.Aggregate(urs)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, types.Record{SequenceNumber: aws.String(fmt.Sprint(1000 + a)), PartitionKey: aws.String("k"), Data: blob})
	}
	for _, factor := range []int{1, 3} {
		t.Run(fmt.Sprint("factor ", factor), func(t *testing.T) {
			fake := &oneAnswer{recs: recs}
			r, err := fetch.New(fake, fetch.Config{StreamName: "s", ShardID: "shardId-000000000000",
				Start: stream.Position{Seq: stream.TrimHorizon}, BusyInterval: time.Nanosecond, IdleInterval: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			w := &Worker{cfg: Config{BatchSize: 40, ParallelizationFactor: factor, ReadBudget: 16 << 20, MetricsLevel: 0},
				log: slog.New(slog.DiscardHandler)}
			h := newHeld(context.Background(), lease.Lease{Key: "shardId-000000000000"})
			c := newReadingConsumer(w, h, r)
			var (
				got []stream.Record
				n   int
			)
			for {
				b, err := c.read(context.Background(), w.cfg.MaxBatchingWindow)
				if err != nil {
					t.Fatal(err)
				}
				out := c.recs
				n++
				// A chunk, plus what is left of the aggregate that crossed it.
				if limit := 40*factor + per - 1; len(out) > limit {
					t.Errorf("read %d gave %d user records at once, want at most %d", n, len(out), limit)
				}
				got = append(got, out...)
				if b.End != (len(got) == aggregates*per) {
					t.Errorf("read %d: End %v with %d of %d records out", n, b.End, len(got), aggregates*per)
				}
				if b.End {
					if len(b.Children) != 1 {
						t.Errorf("children %v at the end", b.Children)
					}
					break
				}
				if len(b.Children) != 0 {
					t.Errorf("read %d: children before the end", n)
				}
			}
			if fake.calls != 1 {
				t.Errorf("%d GetRecords calls, want 1", fake.calls)
			}
			for i, rec := range got {
				if string(rec.Data) != fmt.Sprint(i) {
					t.Fatalf("user record %d is %q", i, rec.Data)
				}
			}
			if n < 2 {
				t.Errorf("the answer came out in %d read, want several", n)
			}
		})
	}
}

// newReadingConsumer is a shard consumer for h that reads from r, with no
// hash-range filter.
func newReadingConsumer(w *Worker, h *held, r fetch.Publisher) *shardConsumer {
	c := newShardConsumer(w, h, &shardStats{})
	c.pub, c.filter = r, kpl.NewFilter(kpl.HashRange{}, nil)
	return c
}
