package coordinator_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/shardline/shardline/shared/testwait"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/lease"
)

// counts returns how many shards each running worker holds.
func counts(rs ...*running) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = len(r.w.Held())
	}
	return out
}

// balanced reports whether the counts add up to total and each is the
// floor or the ceiling of total/len(counts).
func balanced(got []int, total int) bool {
	sum := 0
	lo, hi := total/len(got), (total+len(got)-1)/len(got)
	for _, n := range got {
		if n < lo || n > hi {
			return false
		}
		sum += n
	}
	return sum == total
}

// TestBalancing: workers joining and leaving settle within 3 × failover
// time, each at the floor or ceiling of shards/workers; a worker that
// stops releases its leases and they are taken at once; records keep
// flowing throughout.
func TestBalancing(t *testing.T) {
	f := newFixture(t, 4)
	const failover = 1500 * time.Millisecond
	settle := 3 * failover
	c := &collector{}
	p := f.keyedProducer(40, 20)
	cfg := func(id string) func(*coordinator.Config) {
		return func(c *coordinator.Config) { c.WorkerID, c.FailoverTime = id, failover }
	}
	a := f.start(c.handle, cfg("a"))
	testwait.Until(t, 30*time.Second, "a alone holds 4", func() bool { return slices.Equal(counts(a), []int{4}) })

	joined := time.Now()
	b := f.start(c.handle, cfg("b"))
	testwait.Until(t, settle+2*time.Second, "a and b hold 2 each", func() bool { return slices.Equal(counts(a, b), []int{2, 2}) })
	t.Logf("second worker balanced after %s", time.Since(joined).Round(10*time.Millisecond))

	joined = time.Now()
	cw := f.start(c.handle, cfg("c"))
	testwait.Until(t, settle+2*time.Second, "a, b, c at 1 or 2 each", func() bool { return balanced(counts(a, b, cw), 4) })
	t.Logf("third worker balanced after %s: %v", time.Since(joined).Round(10*time.Millisecond), counts(a, b, cw))

	left := time.Now()
	if err := b.stop(t); err != nil {
		t.Fatalf("b: %v", err)
	}
	testwait.Until(t, settle+2*time.Second, "a and c hold 2 each after b left", func() bool { return slices.Equal(counts(a, cw), []int{2, 2}) })
	t.Logf("after a worker left, balanced in %s", time.Since(left).Round(10*time.Millisecond))

	want := p.finish(t)
	testwait.Until(t, time.Minute, "every record", func() bool {
		seen := map[string]bool{}
		for _, g := range c.snapshot() {
			seen[g.id] = true
		}
		for _, id := range want {
			if !seen[id] {
				return false
			}
		}
		return true
	})
	// Stealing may deliver some records twice, never out of order per key
	// on a first delivery, and never loses one.
	firstSeen := map[string]bool{}
	var firsts []got
	for _, g := range c.snapshot() {
		if !firstSeen[g.id] {
			firstSeen[g.id] = true
			firsts = append(firsts, g)
		}
	}
	checkKeyOrder(t, firsts)
}

// checkKeyOrder asserts that each key's counters increase.
func checkKeyOrder(t *testing.T, recs []got) {
	t.Helper()
	last := map[string]int{}
	for _, r := range recs {
		key, n := splitID(t, r.id)
		if p, ok := last[key]; ok && n <= p {
			t.Fatalf("key %s: counter %d first delivered after %d", key, n, p)
		}
		last[key] = n
	}
}

// TestMaxLeases: a worker never holds more than -max-leases; the rest wait
// for another worker.
func TestMaxLeases(t *testing.T) {
	f := newFixture(t, 4)
	c := &collector{}
	var logs testwait.Buffer // the leader's, a's
	a := f.start(c.handle, func(c *coordinator.Config) {
		c.WorkerID, c.MaxLeases = "a", 1
		logTo(&logs)(c)
	})
	testwait.Until(t, 30*time.Second, "a holds 1", func() bool { return len(a.w.Held()) == 1 })
	b := f.start(c.handle, func(c *coordinator.Config) {
		c.WorkerID, c.MaxLeases, c.FailoverTime = "b", 2, 1500*time.Millisecond
	})
	testwait.Until(t, 30*time.Second, "b holds 2", func() bool { return len(b.w.Held()) == 2 })
	// Several more rounds: neither goes past its limit.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if got := counts(a, b); got[0] > 1 || got[1] > 2 {
			t.Fatalf("held %v, want at most [1 2]", got)
		}
		time.Sleep(50 * time.Millisecond) // sampling, not synchronisation
	}
	owned := 0
	for _, l := range f.leases() {
		if l.Owner != "" {
			owned++
		}
	}
	if owned != 3 {
		t.Fatalf("%d leases owned, want 3 (1 + 2)", owned)
	}
	// The shard no one may take is never silent: a gauge and a WARN line
	// each round.
	// The leader (a, the first) counts them.
	testwait.Until(t, 10*time.Second, "UnownedShards 1 in the leader's snapshot", func() bool {
		return a.w.Snapshot().UnownedShards == 1
	})
	testwait.Until(t, 10*time.Second, "a WARN line naming -max-leases", func() bool {
		return lines(&logs, `"level":"WARN"`, "every worker is at its -max-leases", `"unowned":1`) >= 1
	})
}

// TestMaxLeasesCapacityCounted (issue 17): a worker with -max-leases 1
// and one without on 4 shards: the second takes the 3 others (its share
// counts the first's cap), and none is left without an owner.
func TestMaxLeasesCapacityCounted(t *testing.T) {
	f := newFixture(t, 4)
	c := &collector{}
	a := f.start(c.handle, func(c *coordinator.Config) { c.WorkerID, c.MaxLeases = "a", 1 })
	testwait.Until(t, 30*time.Second, "a holds 1", func() bool { return len(a.w.Held()) == 1 })
	b := f.start(c.handle, func(c *coordinator.Config) { c.WorkerID, c.FailoverTime = "b", 1500*time.Millisecond })
	testwait.Until(t, 30*time.Second, "b holds 3, a 1", func() bool { return slices.Equal(counts(a, b), []int{1, 3}) })
	testwait.Until(t, 10*time.Second, "no unowned shard", func() bool { return b.w.Snapshot().UnownedShards == 0 })
	for k, l := range f.leases() {
		if l.Owner == "a" && l.OwnerMaxLeases != 1 || l.Owner == "b" && l.OwnerMaxLeases != 0 {
			t.Errorf("lease %s of %s records -max-leases %d", k, l.Owner, l.OwnerMaxLeases)
		}
	}
}

// TestDeadOwnerExpires: leases held by a worker that stopped renewing
// (its counter stands still) are taken after the failover time, not
// before, and reading resumes from their checkpoints.
func TestDeadOwnerExpires(t *testing.T) {
	f := newFixture(t, 2)
	f.put(10, 40, 0, 0)
	// A worker reads everything, then "dies": its leases are taken over
	// by a ghost owner that never renews.
	c1 := &collector{}
	r1 := f.start(c1.handle, nil)
	testwait.Until(t, time.Minute, "40 records", func() bool { return c1.count() >= 40 })
	r1.stop(t)
	table := lease.NewTable(f.dynamo, f.app)
	for _, l := range f.leases() {
		if _, err := table.Take(context.Background(), l, "ghost"); err != nil {
			t.Fatal(err)
		}
	}
	more := f.put(10, 20, 40, 0)
	const failover = 2 * time.Second
	c2 := &collector{}
	start := time.Now()
	r2 := f.start(c2.handle, func(c *coordinator.Config) { c.WorkerID, c.FailoverTime = "b", failover })
	testwait.Until(t, 30*time.Second, "b holds both", func() bool { return len(r2.w.Held()) == 2 })
	took := time.Since(start)
	if took < failover {
		t.Fatalf("ghost's leases taken after %s, before the failover time %s", took, failover)
	}
	t.Logf("dead owner's leases taken after %s (failover %s)", took.Round(10*time.Millisecond), failover)
	testwait.Until(t, time.Minute, "20 records", func() bool { return c2.count() >= 20 })
	r2.stop(t)
	assertIDs(t, c2.snapshot(), more)
}

// TestLagDroppedWithTheLease: a shard whose lease goes to another worker
// has no lag in the first worker's snapshot (its MillisBehindLatest and
// IteratorAge series go with it), while the shards it keeps do.
func TestLagDroppedWithTheLease(t *testing.T) {
	f := newFixture(t, 2)
	const failover = 1500 * time.Millisecond
	f.put(4, 20, 0, 0)
	c := &collector{}
	cfg := func(id string) func(*coordinator.Config) {
		return func(c *coordinator.Config) { c.WorkerID, c.FailoverTime = id, failover }
	}
	a := f.start(c.handle, cfg("a"))
	lags := func() map[string]int64 {
		m := map[string]int64{}
		for _, s := range a.w.Snapshot().Shards {
			m[s.ShardID] = s.MillisBehindLatest
		}
		return m
	}
	testwait.Until(t, 30*time.Second, "a reads both shards, with a lag for each", func() bool {
		l := lags()
		return len(l) == 2 && l["shardId-000000000000"] >= 0 && l["shardId-000000000001"] >= 0
	})
	b := f.start(c.handle, cfg("b"))
	testwait.Until(t, 3*failover+5*time.Second, "a and b hold 1 each", func() bool { return slices.Equal(counts(a, b), []int{1, 1}) })
	testwait.Until(t, 10*time.Second, "a's lag for the shard it lost dropped", func() bool {
		held := 0
		for _, s := range a.w.Snapshot().Shards {
			if s.Held && s.MillisBehindLatest >= 0 {
				held++
			}
			if !s.Held && s.MillisBehindLatest >= 0 {
				return false
			}
		}
		return held == 1
	})
}

// scanFails is DynamoDB whose Scans fail while fail is set.
type scanFails struct {
	coordinator.DynamoDBAPI
	fail  atomic.Bool
	scans atomic.Int64
}

func (s *scanFails) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	s.scans.Add(1)
	if s.fail.Load() {
		return nil, errors.New("scan refused")
	}
	return s.DynamoDBAPI.Scan(ctx, in, opts...)
}

// Query fails too: a worker reads its own leases with a Query.
func (s *scanFails) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	s.scans.Add(1)
	if s.fail.Load() {
		return nil, errors.New("query refused")
	}
	return s.DynamoDBAPI.Query(ctx, in, opts...)
}

// TestNotReadyUntilTheTableIsRead (issue 17): a worker whose lease table
// reads (Scan, Query) fail is not ready (/readyz) however many rounds pass; it is once a
// round reads the table.
func TestNotReadyUntilTheTableIsRead(t *testing.T) {
	f := newFixture(t, 1)
	db := &scanFails{DynamoDBAPI: f.dynamo}
	db.fail.Store(true)
	c := &collector{}
	r := f.start(c.handle, func(cfg *coordinator.Config) { cfg.DynamoDB, cfg.FailoverTime = db, 900*time.Millisecond })
	testwait.Until(t, 30*time.Second, "several rounds of failed reads", func() bool { return db.scans.Load() >= 4 })
	if r.w.Snapshot().Ready {
		t.Fatal("ready although no round could read the lease table")
	}
	db.fail.Store(false)
	testwait.Until(t, 30*time.Second, "ready once the table is read", func() bool { return r.w.Snapshot().Ready })
}
