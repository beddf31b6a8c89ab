package coordinator_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/testwait"
)

// TestPlannedRebalanceNoDuplicates (issue 19): on a busy 8-shard stream
// with a 5 s checkpoint interval, a second and a third worker join and
// then one leaves (its context cancelled, as SIGTERM does): the leader
// moves leases by graceful handoff (the holder finishes the batch in
// flight, checkpoints exactly and passes the lease on), and the leaver
// releases at its last record handled, so no record is delivered twice
// and none is lost; each key's records come in order.
func TestPlannedRebalanceNoDuplicates(t *testing.T) {
	f := newFixture(t, 8)
	const failover = 1500 * time.Millisecond
	c := &collector{}
	p := f.keyedProducer(80, 20)
	cfg := func(id string) func(*coordinator.Config) {
		return func(c *coordinator.Config) {
			c.WorkerID, c.FailoverTime, c.CheckpointInterval = id, failover, 5*time.Second
		}
	}
	a := f.start(c.handle, cfg("a"))
	testwait.Until(t, 30*time.Second, "a alone holds 8", func() bool { return slices.Equal(counts(a), []int{8}) })
	testwait.Until(t, 30*time.Second, "records flowing", func() bool { return c.count() >= 400 })

	b := f.start(c.handle, cfg("b"))
	testwait.Until(t, 30*time.Second, "a and b hold 4 each", func() bool { return slices.Equal(counts(a, b), []int{4, 4}) })
	at := c.count()
	testwait.Until(t, 30*time.Second, "records flowing", func() bool { return c.count() >= at+400 })

	cw := f.start(c.handle, cfg("c"))
	testwait.Until(t, 30*time.Second, "a, b, c at 2 or 3 each", func() bool { return balanced(counts(a, b, cw), 8) })
	at = c.count()
	testwait.Until(t, 30*time.Second, "records flowing", func() bool { return c.count() >= at+400 })

	if err := b.stop(t); err != nil {
		t.Fatalf("b: %v", err)
	}
	testwait.Until(t, 30*time.Second, "a and c hold 4 each after b left", func() bool { return slices.Equal(counts(a, cw), []int{4, 4}) })
	at = c.count()
	testwait.Until(t, 30*time.Second, "records flowing", func() bool { return c.count() >= at+400 })

	want := p.finish(t)
	testwait.Until(t, time.Minute, "every record", func() bool { return c.count() >= len(want) })
	recs := c.snapshot()
	seen := map[string]int{}
	dups := 0
	for _, r := range recs {
		seen[r.id]++
		if seen[r.id] == 2 {
			dups++
		}
	}
	if dups > 0 {
		t.Errorf("%d of %d records delivered more than once, want 0 on planned rebalances", dups, len(want))
	}
	assertIDs(t, recs, want)
	checkKeyOrder(t, recs)
	t.Logf("%d records, %d deliveries, %d duplicates", len(want), len(recs), dups)
}

// TestLeaderDies (issue 19): the leader is cut off from DynamoDB (as if
// killed: it renews neither its leases nor the leader lock): the other
// worker takes the leader lock once it has not moved for the failover
// time, and the dead leader's shards once their counters stand still,
// within 3 × the failover time (failover + 20 s at the default 10 s),
// never before the failover time. No record is lost.
func TestLeaderDies(t *testing.T) {
	kinesisEP, dynamoEP := needStandins(t)
	f := newFixture(t, 4)
	proxy := newFaultProxy(t, hostPort(t, dynamoEP))
	kc, dc := clientsVia(t, kinesisEP, proxy.URL())
	const failover = 3 * time.Second
	c := &collector{}
	p := f.keyedProducer(40, 10)
	var logs testwait.Buffer
	a := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.WorkerID, cfg.FailoverTime, cfg.Kinesis, cfg.DynamoDB = "a", failover, kc, dc
	})
	testwait.Until(t, 30*time.Second, "a holds 4", func() bool { return len(a.w.Held()) == 4 })
	b := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.WorkerID, cfg.FailoverTime = "b", failover
		logTo(&logs)(cfg)
	})
	testwait.Until(t, 30*time.Second, "a and b hold 2 each", func() bool { return slices.Equal(counts(a, b), []int{2, 2}) })

	proxy.Cut()
	cut := time.Now()
	testwait.Until(t, 10*failover, "b holds all 4", func() bool { return len(b.w.Held()) == 4 })
	took := time.Since(cut)
	if took < failover || took > 3*failover {
		t.Errorf("the dead leader's shards taken %s after it was cut off, want between the failover time %s and 3 × it", took.Round(10*time.Millisecond), failover)
	}
	if lines(&logs, "leader: this worker assigns the leases", "lock expired") != 1 {
		t.Errorf("b did not take the expired leader lock once:\n%s", logs.String())
	}
	t.Logf("leader cut off: its shards taken by the other worker after %s (failover %s)", took.Round(10*time.Millisecond), failover)
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
	proxy.Restore()
}

// noIndex is DynamoDB whose Queries of the index fail as DynamoDB
// answers for an index that is missing or still being built.
type noIndex struct {
	coordinator.DynamoDBAPI
	queries atomic.Int64
}

func (n *noIndex) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	n.queries.Add(1)
	return nil, &smithy.GenericAPIError{Code: "ValidationException", Message: "The table does not have the specified index: LeaseOwnerToLeaseKeyIndex"}
}

// TestOwnerIndex (issue 19): a lease table without
// LeaseOwnerToLeaseKeyIndex (as KCL 2.x creates it) gets the index at
// start, KEYS_ONLY on leaseOwner and leaseKey; while the index cannot be
// read, workers find their leases with a Scan (one INFO line says so) and
// lose nothing.
func TestOwnerIndex(t *testing.T) {
	f := newFixture(t, 2)
	kclCreateLeaseTable(t, f.dynamo, f.app)
	want := f.put(4, 40, 0, 0)
	c := &collector{}
	var logs testwait.Buffer
	db := &noIndex{DynamoDBAPI: f.dynamo}
	a := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.WorkerID, cfg.FailoverTime = "a", 1500*time.Millisecond
	})
	b := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.WorkerID, cfg.FailoverTime, cfg.DynamoDB = "b", 1500*time.Millisecond, db
		logTo(&logs)(cfg)
	})
	testwait.Until(t, 30*time.Second, "a and b hold 1 each", func() bool { return slices.Equal(counts(a, b), []int{1, 1}) })
	testwait.Until(t, time.Minute, fmt.Sprintf("%d records", len(want)), func() bool { return c.count() >= len(want) })
	assertIDs(t, c.snapshot(), want)
	if db.queries.Load() == 0 || lines(&logs, "not ready", "reading the table instead") != 1 {
		t.Errorf("b made %d Queries and logged the fallback %d times, want Queries and one INFO line:\n%s", db.queries.Load(), lines(&logs, "reading the table instead"), logs.String())
	}
	out, err := f.dynamo.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(f.app)})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, g := range out.Table.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) == lease.OwnerIndex {
			found = g.Projection != nil && g.Projection.ProjectionType == dtypes.ProjectionTypeKeysOnly &&
				len(g.KeySchema) == 2 && aws.ToString(g.KeySchema[0].AttributeName) == "leaseOwner" && aws.ToString(g.KeySchema[1].AttributeName) == "leaseKey"
		}
	}
	if !found {
		t.Fatalf("table %s indexes %+v: want %s, KEYS_ONLY, hash leaseOwner, range leaseKey", f.app, out.Table.GlobalSecondaryIndexes, lease.OwnerIndex)
	}
}
