package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/stream"
)

// rereadLimit is the most Kinesis records one GetRecords of a reread asks
// for, and rereadCalls the most GetRecords calls one reread makes before it
// counts the records not found yet as missing.
const (
	rereadLimit = 1000
	rereadCalls = 50
)

// rereader is dispatch.Config.Reread for one shard of an in-process
// handler: after a failed call, it reads the records still to do again
// (from the first one's sequence number, de-aggregated as before), so that
// a handler that changed its event's Data in place cannot change what the
// retry, the halves or the on-failure destination get. The calls that do
// not fail never come here: they get the bytes as read, with no copy.
func (w *Worker) rereader(s *streamInfo, shardID string) func(context.Context, []stream.Record) (int, error) {
	return func(ctx context.Context, recs []stream.Record) (int, error) {
		if len(recs) == 0 {
			return 0, nil
		}
		it, err := w.reads.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(s.name), ShardId: aws.String(shardID),
			ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(recs[0].SequenceNumber),
		})
		if err != nil {
			var bad *types.InvalidArgumentException
			var gone *types.ResourceNotFoundException
			if errors.As(err, &bad) || errors.As(err, &gone) {
				return len(recs), nil // past the stream's retention, or the shard is gone
			}
			return 0, fmt.Errorf("GetShardIterator at %s: %w", recs[0].SequenceNumber, err)
		}
		iterator := it.ShardIterator
		last := recs[len(recs)-1].Position()
		i, missing := 0, 0
		var users []stream.Record
		past := false // a record after the last one was read
		for calls := 0; iterator != nil && i < len(recs) && !past && calls < rereadCalls; calls++ {
			out, err := w.reads.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iterator, Limit: aws.Int32(rereadLimit)})
			if err != nil {
				return 0, fmt.Errorf("GetRecords after %s: %w", recs[0].SequenceNumber, err)
			}
			for k := range out.Records {
				users, _ = kpl.Deaggregate(users[:0], shardID, &out.Records[k], kpl.HashRange{})
				for u := range users {
					p := users[u].Position()
					for i < len(recs) && p.After(recs[i].Position()) {
						i++ // not in the stream any more
						missing++
					}
					if i < len(recs) && p == recs[i].Position() {
						recs[i].Data = bytes.Clone(users[u].Data) // the answer is not kept
						i++
					}
				}
				if past = len(users) > 0 && users[len(users)-1].Position().After(last); past || i == len(recs) {
					break
				}
			}
			clear(users)
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break // at the tip: nothing more to find
			}
			iterator = out.NextShardIterator
		}
		return missing + len(recs) - i, nil
	}
}
