package shards

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Shard is what Shardline needs to know of one shard.
type Shard struct {
	ID              string
	Parents         []string // parent and adjacent parent, when they exist
	StartingHashKey string
	EndingHashKey   string
	Closed          bool // has an ending sequence number: will reach SHARD_END
}

// kinesisAPI lists the Kinesis calls made here.
type kinesisAPI interface {
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

var _ kinesisAPI = (*kinesis.Client)(nil)

// List returns every shard of the stream, open and closed, in the order
// Kinesis gives them. Throttling (LimitExceeded) is retried with back-off.
func List(ctx context.Context, client kinesisAPI, streamName string) ([]Shard, error) {
	var out []Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(streamName)}
	wait := 200 * time.Millisecond
	for {
		page, err := client.ListShards(ctx, in)
		var le *types.LimitExceededException
		if errors.As(err, &le) {
			select {
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list shards of %s: %w", streamName, err)
		}
		for _, s := range page.Shards {
			out = append(out, FromKinesis(s))
		}
		if page.NextToken == nil {
			return out, nil
		}
		// With a NextToken the stream name must be left out.
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

// FromKinesis converts the SDK's shard description.
func FromKinesis(s types.Shard) Shard {
	sh := Shard{ID: aws.ToString(s.ShardId)}
	if p := aws.ToString(s.ParentShardId); p != "" {
		sh.Parents = append(sh.Parents, p)
	}
	if p := aws.ToString(s.AdjacentParentShardId); p != "" {
		sh.Parents = append(sh.Parents, p)
	}
	if s.HashKeyRange != nil {
		sh.StartingHashKey = aws.ToString(s.HashKeyRange.StartingHashKey)
		sh.EndingHashKey = aws.ToString(s.HashKeyRange.EndingHashKey)
	}
	if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
		sh.Closed = true
	}
	return sh
}

// FromChild converts a ChildShard given by GetRecords at the end of a shard.
func FromChild(c types.ChildShard) Shard {
	sh := Shard{ID: aws.ToString(c.ShardId), Parents: slices.Clone(c.ParentShards)}
	if c.HashKeyRange != nil {
		sh.StartingHashKey = aws.ToString(c.HashKeyRange.StartingHashKey)
		sh.EndingHashKey = aws.ToString(c.HashKeyRange.EndingHashKey)
	}
	return sh
}

// Ancestors orders shards so that every shard comes after its parents (a
// topological order; among equals, the input order). Parents not in the
// list are ignored.
func Ancestors(list []Shard) []Shard {
	byID := make(map[string]Shard, len(list))
	for _, s := range list {
		byID[s.ID] = s
	}
	done := make(map[string]bool, len(list))
	out := make([]Shard, 0, len(list))
	var visit func(s Shard)
	visit = func(s Shard) {
		if done[s.ID] {
			return
		}
		done[s.ID] = true
		for _, p := range s.Parents {
			if ps, ok := byID[p]; ok {
				visit(ps)
			}
		}
		out = append(out, s)
	}
	for _, s := range list {
		visit(s)
	}
	return out
}
