package shardline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/redrive"
	"github.com/shardline/shardline/shared/replay"
	"github.com/shardline/shardline/shared/stream"
)

// rangeReader reads Lambda's metadata-only records back from the stream
// with replay's range reader: [start, end] of one shard, de-aggregated.
type rangeReader struct {
	client replay.KinesisAPI
	log    *slog.Logger
}

var _ redrive.RangeReader = (*rangeReader)(nil)

// newRangeReader is how redrive reads Lambda's metadata-only records back
// from the stream.
func newRangeReader(clients *awsconf.Clients, log *slog.Logger) redrive.RangeReader {
	return &rangeReader{client: replay.NewClient(clients.Kinesis, log), log: log}
}

// ReadRange reads the user records of the Kinesis records start through
// end of shard. The records are copied: the reader reuses its memory.
func (r *rangeReader) ReadRange(ctx context.Context, streamName, shard, start, end string) ([]stream.Record, error) {
	var out []stream.Record
	res, err := replay.ReadShard(ctx, r.client, replay.Config{
		StreamName: streamName, ShardID: shard, From: replay.FromSequence(start), Until: replay.ThroughSequence(end), Logger: r.log,
	}, func(c replay.Chunk) error {
		for _, rec := range c.Records {
			rec.Data = append([]byte(nil), rec.Data...)
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read shard %s of stream %s: %w", shard, streamName, explain(err))
	}
	if res.Records == 0 || stream.CompareSeq(res.First.Seq, start) > 0 {
		first := "nothing"
		if res.Records > 0 {
			first = res.First.Seq
		}
		return nil, fmt.Errorf("the shard's oldest record in that range is %s: %w", first, redrive.ErrPastRetention)
	}
	return out, nil
}
