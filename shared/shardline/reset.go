package shardline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/stream"
)

// resetKinesis lists the Kinesis calls reset makes.
type resetKinesis interface {
	DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
}

var _ resetKinesis = (*kinesis.Client)(nil)

// resetCmd is `poller reset`'s settings.
type resetCmd struct {
	c         config.Common
	to        string
	timestamp string
	shard     string
	subSeq    int64
	force     bool

	at time.Time // timestamp, parsed
}

func (r *resetCmd) parse(a *App, args []string, getenv func(string) string, stdout io.Writer, now time.Time) error {
	fs := a.newFlagSet("reset", stdout)
	fs.StringVar(&r.to, "to", "", "new checkpoint: TRIM_HORIZON, LATEST, AT_TIMESTAMP (with -timestamp) or a sequence number (with -shard) (required)")
	fs.StringVar(&r.timestamp, "timestamp", "", "with -to AT_TIMESTAMP: an RFC 3339 `time`, not in the future (2026-01-02T15:04:05Z)")
	fs.StringVar(&r.shard, "shard", "", "only this shard (default: every lease); required with a sequence number")
	fs.Int64Var(&r.subSeq, "sub-sequence-number", 0, "with a sequence number: the user record within an aggregate done last")
	fs.BoolVar(&r.force, "force", false, "reset leases that are still owned (their owner may write over the reset)")
	r.c.Register(fs, true)
	if err := a.parse(fs, args, getenv); err != nil {
		return err
	}
	if err := r.c.OneStream("reset"); err != nil {
		return err
	}
	if err := r.c.Validate(true); err != nil {
		return err
	}
	pos := stream.Position{Seq: r.to, SubSeq: r.subSeq}
	switch {
	case r.to == "":
		return config.Usagef("-to (%s) is required: TRIM_HORIZON, LATEST, AT_TIMESTAMP or a sequence number", config.EnvName("to"))
	case r.to == stream.ShardEnd:
		return config.Usagef("-to %q: allowed TRIM_HORIZON, LATEST, AT_TIMESTAMP or a sequence number", r.to)
	case pos.IsSentinel() && r.subSeq != 0:
		return config.Usagef("-sub-sequence-number %d: allowed only with a sequence number", r.subSeq)
	case !pos.IsSentinel() && !isDigits(r.to):
		return config.Usagef("-to %q: allowed TRIM_HORIZON, LATEST, AT_TIMESTAMP or a sequence number (digits)", r.to)
	case !pos.IsSentinel() && r.shard == "":
		return config.Usagef("-to %s needs -shard (%s): a sequence number belongs to one shard", r.to, config.EnvName("shard"))
	case r.to == stream.AtTimestamp && r.timestamp == "":
		return config.Usagef("-to AT_TIMESTAMP needs -timestamp (%s): an RFC 3339 time such as 2026-01-02T15:04:05Z", config.EnvName("timestamp"))
	case r.to != stream.AtTimestamp && r.timestamp != "":
		return config.Usagef("-timestamp %q is only allowed with -to AT_TIMESTAMP, not %s", r.timestamp, r.to)
	}
	if r.to == stream.AtTimestamp {
		at, err := config.ParseTimestamp("timestamp", r.timestamp, now)
		if err != nil {
			return err
		}
		r.at = at
	}
	return nil
}

// runReset moves an application's checkpoints: every lease, or one shard's.
// Run it with the pollers stopped: a lease still owned is refused unless
// -force, since its owner would write over the reset. It checks, before
// writing anything, that the stream exists, that every lease to move is
// free and that a sequence number is in its shard.
func (a *App) runReset(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var r resetCmd
	if err := r.parse(a, args, getenv, stdout, time.Now()); err != nil {
		return err
	}
	c := r.c
	clients, err := c.QuickClients(ctx)
	if err != nil {
		return err
	}
	if _, err := clients.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(c.StreamName)}); err != nil {
		return fmt.Errorf("stream %s: %w", c.StreamName, explain(err))
	}
	t := lease.NewTable(clients.DynamoDB, c.AppName)
	leases, err := t.List(ctx)
	if err != nil {
		return fmt.Errorf("lease table %s: %w", c.AppName, explain(err))
	}
	var todo []lease.Lease
	for _, l := range leases {
		if r.shard != "" && l.Key != r.shard {
			continue
		}
		if l.Owner != "" && !r.force {
			return fmt.Errorf("lease %s is owned by %s: stop the pollers first, or give -force", l.Key, l.Owner)
		}
		todo = append(todo, l)
	}
	if r.shard != "" && len(todo) == 0 {
		return fmt.Errorf("no lease for shard %s in %s", r.shard, c.AppName)
	}
	pos := stream.Position{Seq: r.to, SubSeq: r.subSeq}
	if !pos.IsSentinel() {
		if err := checkSequence(ctx, clients.Kinesis, c.StreamName, r.shard, r.to); err != nil {
			return err
		}
	}
	for _, l := range todo {
		if _, err := t.SetCheckpoint(ctx, l, pos, r.at); err != nil {
			if errors.Is(err, lease.ErrLeaseLost) {
				return fmt.Errorf("lease %s changed while resetting it: is a poller running?", l.Key)
			}
			return fmt.Errorf("lease %s: %w", l.Key, explain(err))
		}
		to := pos.String()
		if !r.at.IsZero() {
			to += " " + r.at.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(stdout, "%s: checkpoint %s -> %s\n", l.Key, l.Checkpoint, to)
	}
	return nil
}

// checkSequence asks Kinesis for an iterator at seq in shard: Kinesis
// refuses a sequence number of another shard (InvalidArgumentException;
// kinesis-mock answers ResourceNotFoundException).
func checkSequence(ctx context.Context, k resetKinesis, streamName, shard, seq string) error {
	_, err := k.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(streamName), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seq),
	})
	var invalid *types.InvalidArgumentException
	var missing *types.ResourceNotFoundException
	switch {
	case err == nil:
		return nil
	case errors.As(err, &invalid):
		return fmt.Errorf("sequence number %s is not in shard %s of stream %s (Kinesis: %s)", seq, shard, streamName, invalid.ErrorMessage())
	case errors.As(err, &missing):
		return fmt.Errorf("sequence number %s is not in shard %s of stream %s (Kinesis: %s)", seq, shard, streamName, missing.ErrorMessage())
	}
	return fmt.Errorf("check sequence number %s in shard %s: %w", seq, shard, explain(err))
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
