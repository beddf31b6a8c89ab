package coordinator_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/testwait"
)

// staleKinesis answers ListShards with a recorded listing once one is set.
type staleKinesis struct {
	coordinator.KinesisAPI
	stale atomic.Pointer[kinesis.ListShardsOutput]
	lists atomic.Int64
}

func (s *staleKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	s.lists.Add(1)
	if out := s.stale.Load(); out != nil {
		return out, nil
	}
	return s.KinesisAPI.ListShards(ctx, in, o...)
}

// TestStaleListingDoesNotResurrectParent: a shard listing recorded before
// a split, compared with the lease table after the parent was read to its
// end and its lease cleaned up, must not create the parent's lease again
// (its records would be delivered again after its children's).
func TestStaleListingDoesNotResurrectParent(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	before, err := f.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &f.stream})
	if err != nil {
		t.Fatal(err)
	}
	want := f.put(4, 20, 0, 0)
	parent := f.openShards()[0]
	if _, err := f.kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &f.stream, ShardToSplit: &parent.ID, NewStartingHashKey: aws.String(mid(t, parent))}); err != nil {
		t.Fatal(err)
	}
	f.waitActive()
	want = append(want, f.put(4, 40, 20, 0)...)

	c := &collector{}
	r1 := f.start(c.handle, func(cfg *coordinator.Config) { cfg.ShardSyncInterval = 200 * time.Millisecond })
	testwait.Until(t, time.Minute, "every record, and the parent's lease cleaned up", func() bool {
		_, has := f.leases()[parent.ID]
		return c.count() >= len(want) && !has
	})
	r1.stop(t)
	// Another worker (which did not read the parent itself) gets the
	// listing recorded before the split.
	sk := &staleKinesis{KinesisAPI: f.kinesis}
	sk.stale.Store(before)
	f.start(c.handle, func(cfg *coordinator.Config) { cfg.Kinesis = sk; cfg.ShardSyncInterval = 200 * time.Millisecond })
	testwait.Until(t, 30*time.Second, "three shard syncs with the stale listing", func() bool { return sk.lists.Load() >= 3 })
	if l, ok := f.leases()[parent.ID]; ok {
		t.Fatalf("the ended parent's lease was created again from a stale listing: %s", l.String())
	}
	assertIDs(t, c.snapshot(), want)
	checkOrder(t, c.snapshot())
}

// TestCountsAcrossTakes: a shard lost and taken again by the same worker
// keeps its counts: every record handed to the handler is counted once
// per delivery, over the whole run.
func TestCountsAcrossTakes(t *testing.T) {
	f := newFixture(t, 1)
	f.put(1, 10, 0, 0)
	c := &collector{}
	r := f.start(c.handle, func(cfg *coordinator.Config) { cfg.FailoverTime = 2 * time.Second })
	testwait.Until(t, time.Minute, "10 records checkpointed", func() bool {
		return c.count() >= 10 && f.leases()["shardId-000000000000"].Checkpoint == c.snapshot()[9].pos
	})
	// A ghost takes the lease and never renews it: the worker loses it,
	// then takes it back after the failover time.
	if _, err := lease.NewTable(f.dynamo, f.app).Take(ctx(), f.leases()["shardId-000000000000"], "ghost"); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, "the worker holds the shard again", func() bool {
		return f.leases()["shardId-000000000000"].Owner == r.w.WorkerID()
	})
	f.put(1, 10, 10, 0)
	testwait.Until(t, time.Minute, "20 records", func() bool { return c.count() >= 20 })
	r.stop(t)
	if got, want := r.w.Totals().Records, int64(c.count()); got != want {
		t.Errorf("Totals().Records = %d, want %d (every delivery, over both takes)", got, want)
	}
	if got := r.w.Summary().Records; got != int64(c.count()) {
		t.Errorf("Summary().Records = %d, want %d", got, c.count())
	}
}

func ctx() context.Context { return context.Background() }
