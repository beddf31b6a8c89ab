package coordinator_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// The tests of a parallelization factor whose lanes do not wait for each
// other (issue 17, point 8). Each puts 800 user records over 8 partition
// keys in KPL aggregates of 50 (so positions have sub-sequence numbers)
// into one shard, and reads them back in shard order to know every
// record's position.

const laneShard = "shardId-000000000000"

// laneStream puts the records and returns their ids and the shard's user
// records in order.
func laneStream(t *testing.T, f *fixture, n int) ([]string, []stream.Record) {
	t.Helper()
	want := f.put(8, n, 0, 50)
	all, _ := kclReadShard(t, f, f.openShards()[0])
	if len(all) != len(want) {
		t.Fatalf("read back %d records, want %d", len(all), len(want))
	}
	return want, all
}

// lanesOf says which records are in lane l of factor (by partition key).
func inLane(all []stream.Record, factor, l int) func(i int) bool {
	return func(i int) bool { return dispatch.Lane(all[i].PartitionKey, factor) == l }
}

// handledSet is the ids a collector holds.
func handledSet(c *collector) map[string]bool {
	m := map[string]bool{}
	for _, g := range c.snapshot() {
		m[g.id] = true
	}
	return m
}

// watermarkOf is the position before the lowest record not handled (the
// sentinel TRIM_HORIZON when that is the first), or the last record's.
func watermarkOf(all []stream.Record, handled map[string]bool) stream.Position {
	for i := range all {
		if !handled[string(all[i].Data)] {
			if i == 0 {
				return stream.Position{Seq: stream.TrimHorizon}
			}
			return all[i-1].Position()
		}
	}
	return all[len(all)-1].Position()
}

// gate is a channel handler calls wait on, opened at the end of the test
// if the test did not.
func gate(t *testing.T) (wait <-chan struct{}, open func()) {
	c := make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(c) }) }
	t.Cleanup(open)
	return c, open
}

// TestLanesDoNotWaitForEachOther: with a factor of 4, a lane whose first
// call does not return does not stop the other lanes: they handle every
// record of theirs, far past the first chunk the reader read, through
// errors (bisected), partial failures and retries, each key in order;
// the checkpoint stays before the slow lane's first record (the shard's
// first) until it is done, then reaches the end; each record is handled
// once.
func TestLanesDoNotWaitForEachOther(t *testing.T) {
	f := newFixture(t, 1)
	want, all := laneStream(t, f, 800)
	const factor = 4
	slowLane := dispatch.Lane(all[0].PartitionKey, factor)
	slow := inLane(all, factor, slowLane)
	release, open := gate(t)
	var slowCalls atomic.Int64
	seen := map[string]int{} // under the collector's lock
	c := &collector{fail: func(call int, ev events.KinesisEvent) ([]int, error) {
		failAt := -1
		var err error
		for j, r := range ev.Records {
			id := string(r.Kinesis.Data)
			seen[id]++
			_, n := splitID(t, id)
			switch {
			case n%11 == 3 && seen[id] <= 2:
				err = errors.New("flaky") // the whole call fails: bisected
			case n%7 == 5 && seen[id] == 1 && failAt < 0:
				failAt = j // a partial failure, once
			}
		}
		if err != nil {
			return nil, err
		}
		if failAt >= 0 {
			return []int{failAt}, nil
		}
		return nil, nil
	}}
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if dispatch.Lane(ev.Records[0].Kinesis.PartitionKey, factor) == slowLane && slowCalls.Add(1) == 1 {
			<-release
		}
		return c.handle(ctx, ev)
	}
	r := f.start(h, func(cfg *coordinator.Config) {
		cfg.ParallelizationFactor = factor
		cfg.BatchSize = 10
		cfg.BisectOnError = true
	})
	fast := 0
	for i := range all {
		if !slow(i) {
			fast++
		}
	}
	testwait.Until(t, time.Minute, "every record of the other lanes while the slow lane's first call runs", func() bool {
		return len(handledSet(c)) == fast
	})
	if cp := f.leases()[laneShard].Checkpoint; !cp.IsSentinel() {
		t.Errorf("checkpoint %s while the shard's first record (the slow lane's) is not done", cp)
	}
	open()
	last := all[len(all)-1].Position()
	testwait.Until(t, time.Minute, "every record, and the checkpoint at the last", func() bool {
		return len(handledSet(c)) == len(all) && f.leases()[laneShard].Checkpoint == last
	})
	r.stop(t)
	assertIDs(t, c.snapshot(), want)
	checkKeyOrder(t, c.snapshot())
}

// TestLanesPoisonRecord: a record the handler fails (as a batch item
// failure) in one lane holds the checkpoint exactly at the record before
// it (sequence and sub-sequence number) while the other lanes go on past
// it, as far as the read-ahead bound lets the reader read; once it
// succeeds, everything is handled. With the retries exhausted and no
// destination, the shard parks at that checkpoint as with one lane.
func TestLanesPoisonRecord(t *testing.T) {
	const factor, poison = 4, 120
	for _, tt := range []struct {
		name    string
		retries int
	}{
		{"retried until it succeeds", -1},
		{"retries exhausted parks the shard", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1)
			want, all := laneStream(t, f, 1600)
			poisonID := string(all[poison].Data)
			pl := inLane(all, factor, dispatch.Lane(all[poison].PartitionKey, factor))
			var healed atomic.Bool
			var most atomic.Int64 // the highest record index handled
			index := map[string]int{}
			for i := range all {
				index[string(all[i].Data)] = i
			}
			c := &collector{fail: func(call int, ev events.KinesisEvent) ([]int, error) {
				for j, r := range ev.Records {
					if string(r.Kinesis.Data) == poisonID && !healed.Load() {
						return []int{j}, nil
					}
				}
				for _, r := range ev.Records {
					if i := int64(index[string(r.Kinesis.Data)]); i > most.Load() {
						most.Store(i)
					}
				}
				return nil, nil
			}}
			const budget = 16 << 10
			r := f.start(c.handle, func(cfg *coordinator.Config) {
				cfg.ParallelizationFactor = factor
				cfg.BatchSize = 10
				cfg.MaxRetryAttempts = tt.retries
				cfg.ReadBudget = budget // one shard: its lanes hold at most 16 KiB of records not done, plus a chunk
				fastPark(cfg)
			})
			before := all[poison-1].Position()
			if tt.retries >= 0 {
				testwait.Until(t, time.Minute, "the shard parked", func() bool { return len(parkedLeases(f.leases())) == 1 })
				l := f.leases()[laneShard]
				if l.Checkpoint != before {
					t.Errorf("parked at %s, want %s (the record before the poison)", l.Checkpoint, before)
				}
				if !strings.Contains(l.Park.Reason, "gave up") {
					t.Errorf("park reason %q: want the give-up", l.Park.Reason)
				}
				if handledSet(c)[poisonID] {
					t.Error("the poison record was reported handled")
				}
				healed.Store(true)
				testwait.Until(t, time.Minute, "every record once healed, and the park gone", func() bool {
					return len(handledSet(c)) == len(all) && len(parkedLeases(f.leases())) == 0
				})
				r.stop(t)
				checkKeyOrder(t, firstDeliveries(c.snapshot()))
				return
			}
			// The other lanes go past the poison's chunk (the reader
			// reads 40 records at a time).
			testwait.Until(t, time.Minute, "the other lanes' records up to 200 past the poison", func() bool {
				h := handledSet(c)
				for i := range poison + 200 {
					if !pl(i) && !h[string(all[i].Data)] {
						return false
					}
				}
				return true
			})
			testwait.Until(t, 30*time.Second, "the checkpoint at the record before the poison", func() bool {
				return f.leases()[laneShard].Checkpoint == before
			})
			// The records not done cost at most the budget plus one read's
			// chunk (dispatch.RecordCost each; a chunk is 40 user records
			// and the rest of the aggregate that crosses it: < 90). The
			// poison's lane holds every record of its own from the poison
			// on, so the reader gets at most that many of them past it.
			minCost, maxCost := dispatch.RecordCost(&all[0]), int64(0)
			for i := range all {
				minCost = min(minCost, dispatch.RecordCost(&all[i]))
				maxCost = max(maxCost, dispatch.RecordCost(&all[i]))
			}
			held := int((budget+90*maxCost)/minCost) + 1
			limit := poison
			for n := 0; limit < len(all)-1 && n < held; {
				limit++
				if pl(limit) {
					n++
				}
			}
			if limit >= len(all)-1 {
				t.Fatalf("the test's bound (%d records of the poison's lane) does not bind within %d records", held, len(all))
			}
			if m := most.Load(); m > int64(limit) {
				t.Errorf("record %d handled while the poison (%d) was not done: the read-ahead bound allows up to %d", m, poison, limit)
			}
			if cp := f.leases()[laneShard].Checkpoint; cp != before {
				t.Errorf("checkpoint %s, want %s", cp, before)
			}
			healed.Store(true)
			last := all[len(all)-1].Position()
			testwait.Until(t, time.Minute, "every record once healed, and the checkpoint at the last", func() bool {
				return len(handledSet(c)) == len(all) && f.leases()[laneShard].Checkpoint == last
			})
			r.stop(t)
			assertIDs(t, c.snapshot(), want)
			checkKeyOrder(t, c.snapshot())
		})
	}
}

// lanesInCalls starts a worker with a factor of 4 whose lanes all end up
// inside a call that does not return by itself: the slow lane's first
// call, and each other lane's first call once the other lanes handled 200
// records (far past the reader's first chunk of 40). wait is what those
// calls wait for (given the call's context). It returns once all four are
// waiting.
func lanesInCalls(t *testing.T, f *fixture, all []stream.Record, c *collector, calls *atomic.Int64, wait func(ctx context.Context), mod func(*coordinator.Config)) *running {
	t.Helper()
	const factor = 4
	slowLane := dispatch.Lane(all[0].PartitionKey, factor)
	var inCall atomic.Int64
	var waited [factor]atomic.Bool
	var fastHandled atomic.Int64
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		calls.Add(1)
		l := dispatch.Lane(ev.Records[0].Kinesis.PartitionKey, factor)
		if (l == slowLane || fastHandled.Load() >= 200) && waited[l].CompareAndSwap(false, true) {
			inCall.Add(1)
			wait(ctx)
			if ctx.Err() != nil {
				return events.KinesisEventResponse{}, context.Cause(ctx)
			}
		}
		resp, err := c.handle(ctx, ev)
		if l != slowLane && err == nil {
			fastHandled.Add(int64(len(ev.Records)))
		}
		return resp, err
	}
	r := f.start(h, func(cfg *coordinator.Config) {
		cfg.ParallelizationFactor = factor
		cfg.BatchSize = 10
		if mod != nil {
			mod(cfg)
		}
	})
	testwait.Until(t, time.Minute, "all four lanes in a call, the other lanes 200 records in", func() bool { return inCall.Load() == factor })
	return r
}

// TestLanesDrainMidCall: a drain while every lane is inside a call lets
// each call finish, starts none after, and releases the lease at exactly
// the record before the lowest one not handled.
func TestLanesDrainMidCall(t *testing.T) {
	f := newFixture(t, 1)
	_, all := laneStream(t, f, 800)
	c := &collector{}
	var calls atomic.Int64
	release, open := gate(t)
	r := lanesInCalls(t, f, all, c, &calls, func(context.Context) { <-release }, nil)
	r.cancel()
	<-r.w.Draining()
	n := calls.Load()
	open()
	if err := r.returned(t, time.Minute, "the drain did not finish"); err != nil {
		t.Fatalf("Run = %v, want nil after a drain", err)
	}
	if got := calls.Load(); got != n {
		t.Errorf("%d calls started after the drain began", got-n)
	}
	l := f.leases()[laneShard]
	if l.Owner != "" {
		t.Errorf("lease owned by %q after the drain, want released", l.Owner)
	}
	if want := watermarkOf(all, handledSet(c)); l.Checkpoint != want || l.Checkpoint.IsSentinel() {
		t.Errorf("released at %s, want %s (before the lowest record not handled)", l.Checkpoint, want)
	}
}

// TestLanesLeaseLostMidCall: the lease taken by another owner while every
// lane is inside a call: the calls' contexts end, no handler call starts
// after, nothing is written to the lease, the shard is let go; once the
// other owner stops renewing, the worker takes it back and every record
// is handled.
func TestLanesLeaseLostMidCall(t *testing.T) {
	f := newFixture(t, 1)
	want, all := laneStream(t, f, 800)
	c := &collector{}
	var calls, late atomic.Int64
	var lost atomic.Bool
	r := lanesInCalls(t, f, all, c, &calls, func(ctx context.Context) { <-ctx.Done() }, func(cfg *coordinator.Config) {
		inner := cfg.Handler
		cfg.Handler = func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			if lost.Load() {
				late.Add(1)
			}
			return inner(ctx, ev)
		}
	})
	table := lease.NewTable(f.dynamo, f.app)
	var ghost lease.Lease
	testwait.Until(t, 30*time.Second, "the lease taken by a ghost", func() bool {
		l, err := table.Take(context.Background(), f.leases()[laneShard], "ghost")
		ghost = l
		return err == nil
	})
	lost.Store(true)
	n := calls.Load()
	ghostCheckpoint := ghost.Checkpoint
	renewing := make(chan struct{})
	stopped := make(chan struct{})
	go func() { // the ghost keeps its lease until told to stop
		defer close(stopped)
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-renewing:
				return
			case <-tick.C:
				if l, err := table.Renew(context.Background(), ghost, lease.Progress{Time: time.Now()}); err == nil {
					ghost = l
				}
			}
		}
	}()
	defer func() {
		select {
		case <-renewing:
		default:
			close(renewing)
		}
		<-stopped
	}()
	testwait.Until(t, 30*time.Second, "the worker lets the shard go", func() bool { return len(r.w.Held()) == 0 })
	if got := calls.Load(); got != n {
		t.Errorf("%d calls started after the lease was taken", got-n)
	}
	if n := late.Load(); n != 0 {
		t.Errorf("the handler was called %d times after the lease was lost", n)
	}
	if l := f.leases()[laneShard]; l.Owner != "ghost" || l.Checkpoint != ghostCheckpoint {
		t.Errorf("lease %s after the loss, want the ghost's with checkpoint %s", l.String(), ghostCheckpoint)
	}
	close(renewing)
	<-stopped
	lost.Store(false)
	last := all[len(all)-1].Position()
	testwait.Until(t, time.Minute, "the shard taken back, every record handled and the checkpoint at the last", func() bool {
		return len(handledSet(c)) == len(all) && f.leases()[laneShard].Checkpoint == last
	})
	r.stop(t)
	seen := handledSet(c)
	for _, id := range want {
		if !seen[id] {
			t.Errorf("record %s never handled", id)
		}
	}
	checkKeyOrder(t, firstDeliveries(c.snapshot()))
}

// TestLanesShardEnd: a shard that ends with a lane still in a call is not
// ended (SHARD_END) until every lane is done with every record, and its
// children start only after: each key stays in order across the split.
func TestLanesShardEnd(t *testing.T) {
	f := newFixture(t, 1)
	want, all := laneStream(t, f, 400)
	parent := f.openShards()[0]
	ctx := context.Background()
	if _, err := f.kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &f.stream, ShardToSplit: &parent.ID, NewStartingHashKey: aws.String(mid(t, parent))}); err != nil {
		t.Fatal(err)
	}
	f.waitActive()
	want = append(want, f.put(8, 400, 400, 50)...)
	const factor = 4
	slowLane := dispatch.Lane(all[0].PartitionKey, factor)
	slow := inLane(all, factor, slowLane)
	release, open := gate(t)
	var slowCalls atomic.Int64
	c := &collector{}
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		shard, _, _, _ := stream.ParseEventID(ev.Records[0].EventID)
		if shard == parent.ID && dispatch.Lane(ev.Records[0].Kinesis.PartitionKey, factor) == slowLane && slowCalls.Add(1) == 1 {
			<-release
		}
		return c.handle(ctx, ev)
	}
	r := f.start(h, func(cfg *coordinator.Config) {
		cfg.ParallelizationFactor = factor
		cfg.BatchSize = 10
		cfg.ShardSyncInterval = 200 * time.Millisecond
	})
	fast := 0
	for i := range all {
		if !slow(i) {
			fast++
		}
	}
	testwait.Until(t, time.Minute, "the parent's other lanes done while its slow lane's first call runs", func() bool {
		n := 0
		for _, g := range c.snapshot() {
			if g.shard == parent.ID {
				n++
			}
		}
		return n == fast
	})
	for _, g := range c.snapshot() {
		if g.shard != parent.ID {
			t.Fatalf("child record %s (%s) delivered before the parent's lanes were done", g.id, g.shard)
		}
	}
	if cp := f.leases()[parent.ID].Checkpoint; cp.Seq == stream.ShardEnd {
		t.Fatal("the parent ended while a lane had records not done")
	}
	open()
	testwait.Until(t, 2*time.Minute, "every record of the parent and the children", func() bool { return c.count() >= len(want) })
	r.stop(t)
	recs := c.snapshot()
	assertIDs(t, recs, want)
	checkKeyOrder(t, recs)
	if cp := f.leases()[parent.ID].Checkpoint; cp.Seq != stream.ShardEnd {
		t.Errorf("parent's checkpoint %s, want SHARD_END", cp)
	}
	lastParent := -1
	for i, g := range recs {
		if g.shard == parent.ID {
			lastParent = i
		}
	}
	for i, g := range recs[:lastParent+1] {
		if g.shard != parent.ID {
			t.Errorf("child record %s delivered (at %d) before the parent's last (at %d)", g.id, i, lastParent)
			break
		}
	}
}
