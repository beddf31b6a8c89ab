package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/shardline/shardline/shared/config"
	"io"
	"time"

	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/stream"
)

// runReset moves an application's checkpoints: every lease, or one shard's.
// Run it with the pollers stopped: a lease still owned is refused unless
// -force, since its owner would write over the reset.
func runReset(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config.Common
	var to, shard string
	var subSeq int64
	var force bool
	fs := config.NewFlagSet("reset", stdout)
	c.Register(fs, true)
	fs.StringVar(&to, "to", "", "new checkpoint: TRIM_HORIZON, LATEST, AT_TIMESTAMP (uses the run's -initial-timestamp) or a sequence number (required)")
	fs.Int64Var(&subSeq, "sub-sequence-number", 0, "with a sequence number: the user record within an aggregate done last")
	fs.StringVar(&shard, "shard", "", "only this shard (default: every lease)")
	fs.BoolVar(&force, "force", false, "reset leases that are still owned")
	if err := config.Parse(fs, args, getenv); err != nil {
		return err
	}
	if err := c.Validate(true); err != nil {
		return err
	}
	pos := stream.Position{Seq: to, SubSeq: subSeq}
	switch {
	case to == "":
		return config.Usagef("-to (TO) is required: TRIM_HORIZON, LATEST, AT_TIMESTAMP or a sequence number")
	case to == stream.ShardEnd:
		return config.Usagef("-to %q: allowed TRIM_HORIZON, LATEST, AT_TIMESTAMP or a sequence number", to)
	case pos.IsSentinel() && subSeq != 0:
		return config.Usagef("-sub-sequence-number %d: allowed only with a sequence number", subSeq)
	case !pos.IsSentinel() && !isDigits(to):
		return config.Usagef("-to %q: allowed TRIM_HORIZON, LATEST, AT_TIMESTAMP or a sequence number (digits)", to)
	}
	clients, err := c.Clients(ctx)
	if err != nil {
		return err
	}
	t := lease.NewTable(clients.DynamoDB, c.AppName)
	leases, err := t.List(ctx)
	if err != nil {
		return fmt.Errorf("lease table %s: %w", c.AppName, explain(err))
	}
	n := 0
	for _, l := range leases {
		if shard != "" && l.Key != shard {
			continue
		}
		if l.Owner != "" && !force {
			return fmt.Errorf("lease %s is owned by %s: stop the pollers first, or give -force", l.Key, l.Owner)
		}
		if _, err := t.SetCheckpoint(ctx, l, pos, time.Time{}); err != nil {
			if errors.Is(err, lease.ErrLeaseLost) {
				return fmt.Errorf("lease %s changed while resetting it: is a poller running?", l.Key)
			}
			return explain(err)
		}
		fmt.Fprintf(stdout, "%s: checkpoint %s -> %s\n", l.Key, l.Checkpoint, pos)
		n++
	}
	if shard != "" && n == 0 {
		return fmt.Errorf("no lease for shard %s in %s", shard, c.AppName)
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
