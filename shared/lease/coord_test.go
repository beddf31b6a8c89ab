package lease_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// TestOwnedKeys: a worker finds the leases under its name through
// LeaseOwnerToLeaseKeyIndex, which Ensure creates with the table.
func TestOwnedKeys(t *testing.T) {
	tbl, _ := newTable(t)
	ctx := context.Background()
	for _, k := range []string{"shardId-0", "shardId-1", "shardId-2"} {
		if err := tbl.Create(ctx, lease.Lease{Key: k, Checkpoint: stream.Position{Seq: stream.TrimHorizon}}); err != nil {
			t.Fatal(err)
		}
	}
	l, _, _ := tbl.Get(ctx, "shardId-1")
	if _, err := tbl.Assign(ctx, l, "b"); err != nil {
		t.Fatal(err)
	}
	l, _, _ = tbl.Get(ctx, "shardId-2")
	if _, err := tbl.Take(ctx, l, "b"); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, "b's two leases listed", func() bool {
		keys, err := tbl.OwnedKeys(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		return slices.Equal(keys, []string{"shardId-1", "shardId-2"})
	})
	if keys, err := tbl.OwnedKeys(ctx, "nobody"); err != nil || len(keys) != 0 {
		t.Fatalf("OwnedKeys(nobody) = %v, %v; want none", keys, err)
	}
	_ = errors.New
}
