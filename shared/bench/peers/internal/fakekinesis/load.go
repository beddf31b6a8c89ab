package fakekinesis

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Source is the part of a Kinesis client that Load uses.
type Source interface {
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
	DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
}

// Load reads a whole stream back from a Kinesis endpoint (every shard from
// TRIM_HORIZON until an empty answer at the tip) into a Stream with the
// same shard ids, hash ranges, sequence numbers, keys, data and arrival
// timestamps.
func Load(ctx context.Context, src Source, name string) (*Stream, error) {
	st := &Stream{Name: name, Created: time.Now()}
	if d, err := src.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)}); err == nil && d.StreamDescriptionSummary.StreamCreationTimestamp != nil {
		st.Created = *d.StreamDescriptionSummary.StreamCreationTimestamp
	}
	var list []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(name)}
	for {
		page, err := src.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", name, err)
		}
		list = append(list, page.Shards...)
		if page.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
	for _, s := range list {
		sh := &Shard{
			ID:                    aws.ToString(s.ShardId),
			ParentShardID:         aws.ToString(s.ParentShardId),
			AdjacentParentShardID: aws.ToString(s.AdjacentParentShardId),
		}
		if s.HashKeyRange != nil {
			sh.StartingHashKey = aws.ToString(s.HashKeyRange.StartingHashKey)
			sh.EndingHashKey = aws.ToString(s.HashKeyRange.EndingHashKey)
		}
		if s.SequenceNumberRange != nil {
			sh.StartingSequence = aws.ToString(s.SequenceNumberRange.StartingSequenceNumber)
			sh.EndingSequence = aws.ToString(s.SequenceNumberRange.EndingSequenceNumber)
		}
		it, err := src.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(name), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, fmt.Errorf("iterator of %s/%s: %w", name, sh.ID, err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := src.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				return nil, fmt.Errorf("read %s/%s: %w", name, sh.ID, err)
			}
			for _, r := range out.Records {
				sh.Records = append(sh.Records, Record{
					SequenceNumber: aws.ToString(r.SequenceNumber),
					PartitionKey:   aws.ToString(r.PartitionKey),
					Data:           r.Data,
					Arrival:        aws.ToTime(r.ApproximateArrivalTimestamp).Truncate(time.Millisecond),
				})
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
		st.Shards = append(st.Shards, sh)
	}
	return st, nil
}

// Records is the number of Kinesis records held.
func (st *Stream) Records() int {
	n := 0
	for _, sh := range st.shardsNow() {
		n += sh.Len()
	}
	return n
}
