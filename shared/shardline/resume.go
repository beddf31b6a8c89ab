package shardline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/lease"
)

// runResume clears the park of one shard (or of every parked shard with
// -all), so that the next worker's lease round takes it and retries it at
// once instead of after its back-off. A worker that holds the lease keeps
// it: resume changes neither the owner nor the counter.
func (a *App) runResume(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c config.Common
	var shard string
	var all bool
	fs := a.newFlagSet("resume", stdout)
	c.Register(fs, true)
	fs.StringVar(&shard, "shard", "", "the parked shard to retry at once")
	fs.BoolVar(&all, "all", false, "every parked shard")
	if err := a.parse(fs, args, getenv); err != nil {
		return err
	}
	if err := c.Validate(true); err != nil {
		return err
	}
	switch {
	case shard == "" && !all:
		return config.Usagef("-shard (%s) or -all is required: which parked shard to retry (poller status shows them)", config.EnvName("shard"))
	case shard != "" && all:
		return config.Usagef("-shard %q and -all: allowed one of them, not both", shard)
	}
	clients, err := c.QuickClients(ctx)
	if err != nil {
		return err
	}
	t := lease.NewTable(clients.DynamoDB, c.AppName)
	leases, err := t.List(ctx)
	if err != nil {
		return fmt.Errorf("lease table %s: %w", c.AppName, explain(err))
	}
	var todo []lease.Lease
	for _, l := range leases {
		if (all || l.Key == shard) && l.Park != nil {
			todo = append(todo, l)
		}
	}
	if shard != "" && len(todo) == 0 {
		if !slices.ContainsFunc(leases, func(l lease.Lease) bool { return l.Key == shard }) {
			return fmt.Errorf("no lease for shard %s in %s", shard, c.AppName)
		}
		return fmt.Errorf("shard %s is not parked", shard)
	}
	for _, l := range todo {
		if err := t.Resume(ctx, l.Key); err != nil {
			if errors.Is(err, lease.ErrNotParked) {
				fmt.Fprintf(stdout, "%s: no longer parked\n", l.Key)
				continue
			}
			return fmt.Errorf("lease %s: %w", l.Key, explain(err))
		}
		fmt.Fprintf(stdout, "%s: resumed (was parked %d times: %s)\n", l.Key, l.Park.Count, l.Park.Reason)
	}
	if len(todo) == 0 {
		fmt.Fprintln(stdout, "no shard is parked")
	}
	return nil
}
