package replay

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// NotInShardError is a sequence number its shard does not hold: of
// another shard, past the stream's retention, or never written.
type NotInShardError struct {
	StreamName, ShardID, Seq string
	Detail                   string // what Kinesis said, or what the shard holds there instead
}

func (e *NotInShardError) Error() string {
	return fmt.Sprintf("sequence number %s is not in shard %s of stream %s (%s)", e.Seq, e.ShardID, e.StreamName, e.Detail)
}

// checkCalls is how many GetRecords CheckSequence makes at most before it
// says the record was not found (Kinesis may answer empty reads before
// the records of an iterator).
const checkCalls = 5

// CheckSequence makes sure shard holds the Kinesis record seq: Kinesis
// refuses a sequence number of another shard when asked for an iterator
// (InvalidArgumentException), some stand-ins only when they find no such
// record, so the first record at the iterator is read and compared. A
// record not there is a *NotInShardError; other errors are the calls'.
func CheckSequence(ctx context.Context, client KinesisAPI, streamName, shard, seq string) error {
	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(streamName), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seq),
	})
	var invalid *types.InvalidArgumentException
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &invalid):
		return &NotInShardError{StreamName: streamName, ShardID: shard, Seq: seq, Detail: "Kinesis: " + invalid.ErrorMessage()}
	case errors.As(err, &missing):
		return &NotInShardError{StreamName: streamName, ShardID: shard, Seq: seq, Detail: "Kinesis: " + missing.ErrorMessage()}
	case err != nil:
		return fmt.Errorf("check sequence number %s in shard %s: %w", seq, shard, err)
	}
	iterator := it.ShardIterator
	for range checkCalls {
		if iterator == nil {
			break
		}
		out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iterator, Limit: aws.Int32(1)})
		if err != nil {
			return fmt.Errorf("check sequence number %s in shard %s: %w", seq, shard, err)
		}
		if len(out.Records) > 0 {
			if first := aws.ToString(out.Records[0].SequenceNumber); first != seq {
				return &NotInShardError{StreamName: streamName, ShardID: shard, Seq: seq, Detail: "the shard's next record there is " + first}
			}
			return nil
		}
		if aws.ToInt64(out.MillisBehindLatest) == 0 {
			break
		}
		iterator = out.NextShardIterator
	}
	return &NotInShardError{StreamName: streamName, ShardID: shard, Seq: seq, Detail: "no record there"}
}
