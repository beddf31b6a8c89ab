package coordinator_test

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/stream"
)

// kclDeadWorker is a worker id as the Java KCL makes them (host:uuid-ish);
// it owns the leases of the KCL application that was stopped.
const kclDeadWorker = "ip-10-0-0-1.ec2.internal:5a2b1c"

// TestContinuesKCLLeaseTable: a lease table a KCL 2.x application left
// behind (a split parent at SHARD_END with its childShardIds, children held
// by a worker that is gone, checkpointed part-way) is continued from the
// children's checkpoints: the dead owner's leases expire and are taken
// over, exactly the child records after each checkpoint are delivered, none
// at or before it, and the parent is never read again. The items are
// written with the raw DynamoDB API, with the attribute names and types of
// the KCL's DynamoDBLeaseSerializer (amazon-kinesis-client 2.x/3.x),
// including attributes Shardline does not use (pendingCheckpoint*,
// throughputKBps), so the lease package's own encoding proves nothing here.
// Cases: plain records; a child checkpoint inside a KPL aggregate
// (checkpointSubSequenceNumber k: delivery resumes at user record k+1); and
// a parent the KCL worker was still reading when it died.
func TestContinuesKCLLeaseTable(t *testing.T) {
	tests := []struct {
		name      string
		aggregate int // user records per KPL aggregate on the children; 0: plain records
	}{
		{name: "plain records", aggregate: 0},
		{name: "checkpoint inside a KPL aggregate", aggregate: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testContinuesKCLLeaseTable(t, tt.aggregate)
		})
	}
	t.Run("parent checkpointed mid-shard", testContinuesKCLParent)
}

func testContinuesKCLLeaseTable(t *testing.T, aggregate int) {
	f := newFixture(t, 1)
	ks := kclSplitStream(t, f, aggregate)
	parent, children, childRecs := ks.parent, ks.children, ks.childRecs

	// The checkpoints the KCL application had written. Plain records: one
	// child in its middle, the other at its first record. Aggregated: one
	// child inside its first aggregate (sub-sequence k), the other at the
	// last user record of its first aggregate (as the KCL checkpoints a
	// fully processed aggregate).
	checkpoints := map[string]stream.Position{}
	firstWant := map[string]stream.Position{} // the first record to come per child
	for i, c := range children {
		recs := childRecs[c.ID]
		var cp stream.Position
		switch {
		case aggregate == 0 && i == 0:
			cp = recs[len(recs)/2].Position()
		case aggregate == 0:
			cp = recs[0].Position()
		default:
			first := kclAggregate(recs, recs[0].SequenceNumber)
			if len(first) < 3 {
				t.Fatalf("child %s: first aggregate holds %d user records, want at least 3", c.ID, len(first))
			}
			if i == 0 {
				cp = first[len(first)/2].Position() // k inside the aggregate
				if cp.SubSeq == 0 {
					t.Fatalf("child %s: checkpoint %s is not inside the aggregate", c.ID, cp)
				}
			} else {
				cp = first[len(first)-1].Position()
			}
		}
		checkpoints[c.ID] = cp
		for _, r := range recs {
			if r.Position().After(cp) {
				firstWant[c.ID] = r.Position()
				break
			}
		}
	}
	if aggregate > 0 {
		c0 := children[0].ID
		if want := (stream.Position{Seq: checkpoints[c0].Seq, SubSeq: checkpoints[c0].SubSeq + 1}); firstWant[c0] != want {
			t.Fatalf("test set-up: first record after %s is %s, want user record k+1 %s", checkpoints[c0], firstWant[c0], want)
		}
	}
	t.Logf("checkpoints %v, first to come %v", checkpoints, firstWant)
	var want []string
	for _, c := range children {
		for _, r := range childRecs[c.ID] {
			if r.Position().After(checkpoints[c.ID]) {
				want = append(want, string(r.Data))
			}
		}
	}

	// The lease table, as the KCL creates and writes it.
	kclCreateLeaseTable(t, f.dynamo, f.app)
	s := func(v string) dtypes.AttributeValue { return &dtypes.AttributeValueMemberS{Value: v} }
	n := func(v int64) dtypes.AttributeValue {
		return &dtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	ss := func(v ...string) dtypes.AttributeValue { return &dtypes.AttributeValueMemberSS{Value: v} }
	const parentCounter = 4711
	items := []map[string]dtypes.AttributeValue{{
		"leaseKey":                     s(parent.ID),
		"leaseOwner":                   s(kclDeadWorker),
		"leaseCounter":                 n(parentCounter),
		"checkpoint":                   s("SHARD_END"),
		"checkpointSubSequenceNumber":  n(0),
		"ownerSwitchesSinceCheckpoint": n(0),
		"childShardIds":                ss(children[0].ID, children[1].ID),
		"startingHashKey":              s(parent.StartingHashKey),
		"endingHashKey":                s(parent.EndingHashKey),
		"throughputKBps":               &dtypes.AttributeValueMemberN{Value: "0.0"},
	}}
	for i, c := range children {
		recs := childRecs[c.ID]
		cp := checkpoints[c.ID]
		item := map[string]dtypes.AttributeValue{
			"leaseKey":                     s(c.ID),
			"leaseOwner":                   s(kclDeadWorker),
			"leaseCounter":                 n(int64(1234 + 100*i)),
			"checkpoint":                   s(cp.Seq),
			"checkpointSubSequenceNumber":  n(cp.SubSeq),
			"ownerSwitchesSinceCheckpoint": n(int64(i + 1)),
			"parentShardId":                ss(parent.ID),
			"startingHashKey":              s(c.StartingHashKey),
			"endingHashKey":                s(c.EndingHashKey),
			"throughputKBps":               &dtypes.AttributeValueMemberN{Value: "1.4921875"},
		}
		// A prepared, never committed checkpoint (the KCL's two-phase
		// prepareCheckpoint) further on: it must not move the start.
		if last := recs[len(recs)-1].Position(); last.After(cp) {
			item["pendingCheckpoint"] = s(last.Seq)
			item["pendingCheckpointSubSequenceNumber"] = n(last.SubSeq)
			item["pendingCheckpointState"] = &dtypes.AttributeValueMemberB{Value: []byte("app state")}
		}
		items = append(items, item)
	}
	kclPutItems(t, f, items)

	// Shardline takes over with TRIM_HORIZON: the checkpoints must win.
	c := &collector{}
	const failover = 2 * time.Second
	taken := time.Now()
	r := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.InitialPosition = stream.TrimHorizon
		cfg.FailoverTime = failover
		cfg.ShardSyncInterval = time.Second
	})
	testwait.Until(t, time.Minute, "the dead KCL worker's child leases taken over", func() bool {
		ls := f.leases()
		for _, ch := range children {
			if ls[ch.ID].Owner != r.w.WorkerID() {
				return false
			}
		}
		return true
	})
	if d := time.Since(taken); d < failover {
		t.Errorf("leases of %s taken after %s, want only once they expired (failover time %s)", kclDeadWorker, d, failover)
	}
	// Records written after the take-over follow on.
	more := f.put(kclKeys, 10, 70, aggregate)
	want = append(want, more...)
	testwait.Until(t, time.Minute, fmt.Sprintf("%d records", len(want)), func() bool { return c.count() >= len(want) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	recs := c.snapshot()
	assertIDs(t, recs, want)
	checkOrder(t, recs)
	first := map[string]stream.Position{}
	last := map[string]stream.Position{}
	for _, g := range recs {
		if g.shard == parent.ID {
			t.Fatalf("record %s of the ended parent %s delivered", g.id, parent.ID)
		}
		if _, ok := first[g.shard]; !ok {
			first[g.shard] = g.pos
		}
		last[g.shard] = g.pos
		if cp, ok := checkpoints[g.shard]; ok && !g.pos.After(cp) {
			t.Errorf("shard %s: record %s at %s delivered, at or before the KCL checkpoint %s", g.shard, g.id, g.pos, cp)
		}
	}
	for _, ch := range children {
		if w, ok := firstWant[ch.ID]; ok && first[ch.ID] != w {
			t.Errorf("child %s: delivery started at %s, want %s (the first record after the KCL checkpoint %s)", ch.ID, first[ch.ID], w, checkpoints[ch.ID])
		}
	}
	for _, st := range r.w.Stats() {
		if st.ShardID == parent.ID {
			t.Errorf("the ended parent %s was read again (%d Kinesis records)", parent.ID, st.KinesisRecords)
		}
	}

	// After the drain: the children's leases are free, checkpointed at
	// the last record delivered; the parent's lease was never taken (it is
	// as the KCL left it, or cleaned up now that its children started).
	ls := f.leases()
	for _, ch := range children {
		l, ok := ls[ch.ID]
		if !ok {
			t.Errorf("lease %s is gone", ch.ID)
			continue
		}
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %q after the drain", ch.ID, l.Owner)
		}
		if p, ok := last[ch.ID]; ok && l.Checkpoint != p {
			t.Errorf("lease %s checkpoint %s, want the last record delivered %s", ch.ID, l.Checkpoint, p)
		}
		if !slices.Equal(l.ParentShardIDs, []string{parent.ID}) {
			t.Errorf("lease %s parentShardId %v, want [%s]", ch.ID, l.ParentShardIDs, parent.ID)
		}
	}
	if l, ok := ls[parent.ID]; ok {
		if l.Owner != kclDeadWorker || l.Counter != parentCounter || l.Checkpoint.Seq != stream.ShardEnd {
			t.Errorf("parent lease %s, want it as the KCL left it (owner %s, counter %d, SHARD_END)", l.String(), kclDeadWorker, parentCounter)
		}
	}
}

// testContinuesKCLParent: the KCL worker died while reading the parent (its
// lease checkpointed part-way, held by the dead worker) after its shard sync
// had created the children's leases (TRIM_HORIZON, no owner). The parent is
// taken over once expired and read from its checkpoint to its end; only
// then are the children read, from their start.
func testContinuesKCLParent(t *testing.T) {
	f := newFixture(t, 1)
	ks := kclSplitStream(t, f, 0)
	parent, children := ks.parent, ks.children
	cp := ks.parentRecs[14].Position()
	var want []string
	for _, r := range ks.parentRecs[15:] {
		want = append(want, string(r.Data))
	}
	for _, c := range children {
		for _, r := range ks.childRecs[c.ID] {
			want = append(want, string(r.Data))
		}
	}

	kclCreateLeaseTable(t, f.dynamo, f.app)
	s := func(v string) dtypes.AttributeValue { return &dtypes.AttributeValueMemberS{Value: v} }
	n := func(v int64) dtypes.AttributeValue {
		return &dtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	items := []map[string]dtypes.AttributeValue{{
		"leaseKey":                     s(parent.ID),
		"leaseOwner":                   s(kclDeadWorker),
		"leaseCounter":                 n(77),
		"checkpoint":                   s(cp.Seq),
		"checkpointSubSequenceNumber":  n(0),
		"ownerSwitchesSinceCheckpoint": n(0),
		"startingHashKey":              s(parent.StartingHashKey),
		"endingHashKey":                s(parent.EndingHashKey),
	}}
	for _, c := range children {
		items = append(items, map[string]dtypes.AttributeValue{
			"leaseKey":                     s(c.ID),
			"leaseCounter":                 n(0),
			"checkpoint":                   s("TRIM_HORIZON"),
			"checkpointSubSequenceNumber":  n(0),
			"ownerSwitchesSinceCheckpoint": n(0),
			"parentShardId":                &dtypes.AttributeValueMemberSS{Value: []string{parent.ID}},
			"startingHashKey":              s(c.StartingHashKey),
			"endingHashKey":                s(c.EndingHashKey),
		})
	}
	kclPutItems(t, f, items)

	c := &collector{}
	const failover = 2 * time.Second
	began := time.Now()
	r := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.InitialPosition = stream.Latest // a checkpoint beats it; TRIM_HORIZON children too
		cfg.FailoverTime = failover
		cfg.ShardSyncInterval = time.Second
	})
	testwait.Until(t, time.Minute, "the first record", func() bool { return c.count() > 0 })
	if d := time.Since(began); d < failover {
		t.Errorf("first record after %s, want the dead worker's lease taken only once expired (failover time %s)", d, failover)
	}
	more := f.put(kclKeys, 10, 70, 0)
	want = append(want, more...)
	testwait.Until(t, time.Minute, fmt.Sprintf("%d records", len(want)), func() bool { return c.count() >= len(want) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	recs := c.snapshot()
	assertIDs(t, recs, want)
	checkOrder(t, recs)
	if recs[0].shard != parent.ID || recs[0].pos != ks.parentRecs[15].Position() {
		t.Errorf("first record delivered: %s at %s, want the parent's first after the KCL checkpoint %s: %s",
			recs[0].shard, recs[0].pos, cp, ks.parentRecs[15].Position())
	}
	lastParent, firstChild := -1, len(recs)
	for i, g := range recs {
		if g.shard == parent.ID {
			lastParent = i
		} else if i < firstChild {
			firstChild = i
		}
	}
	if lastParent > firstChild {
		t.Errorf("a child record delivered (at %d) before the parent's last (at %d)", firstChild, lastParent)
	}
	ls := f.leases()
	if l, ok := ls[parent.ID]; ok && l.Checkpoint.Seq != stream.ShardEnd {
		t.Errorf("parent lease %s, want SHARD_END (or cleaned up)", l.String())
	}
	for _, ch := range children {
		if l := ls[ch.ID]; l.Owner != "" || l.Checkpoint.IsSentinel() {
			t.Errorf("child lease %s, want released and checkpointed", l.String())
		}
	}
}

// kclPutItems writes lease items with the raw DynamoDB API.
func kclPutItems(t *testing.T, f *fixture, items []map[string]dtypes.AttributeValue) {
	t.Helper()
	for _, item := range items {
		if _, err := f.dynamo.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.app), Item: item}); err != nil {
			t.Fatalf("PutItem %v: %v", item["leaseKey"], err)
		}
	}
}

// kclKeys is the number of partition keys of every put in these tests, so
// that record ids ("key-k:n", n = i/kclKeys) never repeat.
const kclKeys = 8

// kclStream is a stream that had one shard, split at the midpoint: 30
// plain records on the parent, 40 on the children (aggregated if asked).
type kclStream struct {
	parent     shards.Shard
	children   []shards.Shard
	parentRecs []stream.Record
	childRecs  map[string][]stream.Record
}

func kclSplitStream(t *testing.T, f *fixture, aggregate int) kclStream {
	t.Helper()
	ctx := context.Background()

	// A 1-shard stream: 30 records, then a split at the midpoint, then 40
	// more, which land on the two children.
	f.put(kclKeys, 30, 0, 0)
	before := kclListShards(t, f)
	if len(before) != 1 {
		t.Fatalf("new stream has %d shards, want 1", len(before))
	}
	parent := before[0]
	lo, _ := new(big.Int).SetString(parent.StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(parent.EndingHashKey, 10)
	midKey := new(big.Int).Rsh(new(big.Int).Add(new(big.Int).Add(lo, hi), big.NewInt(1)), 1).String()
	if _, err := f.kinesis.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(f.stream), ShardToSplit: aws.String(parent.ID), NewStartingHashKey: aws.String(midKey),
	}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := standin.WaitStreamActive(waitCtx, f.kinesis, f.stream); err != nil {
		t.Fatal(err)
	}
	f.put(kclKeys, 40, 30, aggregate)

	list := kclListShards(t, f)
	var children []shards.Shard
	for _, s := range list {
		switch {
		case s.ID == parent.ID:
			if !s.Closed {
				t.Fatalf("parent %s is still open after the split", s.ID)
			}
			parent = s
		case slices.Equal(s.Parents, []string{parent.ID}):
			children = append(children, s)
		default:
			t.Fatalf("unexpected shard %+v after splitting %s", s, parent.ID)
		}
	}
	if len(children) != 2 {
		t.Fatalf("split of %s gave %d children, want 2: %+v", parent.ID, len(children), list)
	}

	// What is on the shards, read straight from Kinesis.
	parentRecs, ended := kclReadShard(t, f, parent)
	if !ended || len(parentRecs) != 30 {
		t.Fatalf("parent %s: %d records, ended %v; want 30 and ended", parent.ID, len(parentRecs), ended)
	}
	childRecs := map[string][]stream.Record{}
	total := 0
	for _, c := range children {
		recs, _ := kclReadShard(t, f, c)
		if len(recs) < 4 {
			t.Fatalf("child %s holds %d of the 40 records, want at least 4 on each child", c.ID, len(recs))
		}
		if aggregate > 0 && !recs[0].Aggregated {
			t.Fatalf("child %s: first record not from a KPL aggregate", c.ID)
		}
		childRecs[c.ID] = recs
		total += len(recs)
	}
	if total != 40 {
		t.Fatalf("children hold %d user records, want the 40 put after the split", total)
	}
	return kclStream{parent: parent, children: children, parentRecs: parentRecs, childRecs: childRecs}
}

// kclListShards lists the fixture's stream.
func kclListShards(t *testing.T, f *fixture) []shards.Shard {
	t.Helper()
	list, err := shards.List(context.Background(), f.kinesis, f.stream)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// kclReadShard reads a shard from TRIM_HORIZON until it has caught up (an
// empty answer) or ended, and returns its user records (de-aggregated, with
// the shard's hash range applied, as a consumer sees them).
func kclReadShard(t *testing.T, f *fixture, s shards.Shard) (recs []stream.Record, ended bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hr, err := kpl.ParseHashRange(s.StartingHashKey, s.EndingHashKey)
	if err != nil {
		t.Fatal(err)
	}
	it, err := f.kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(f.stream), ShardId: aws.String(s.ID), ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator %s: %v", s.ID, err)
	}
	iter := it.ShardIterator
	for iter != nil {
		out, err := f.kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatalf("GetRecords %s: %v", s.ID, err)
		}
		for i := range out.Records {
			recs, _ = kpl.Deaggregate(recs, s.ID, &out.Records[i], hr)
		}
		if out.NextShardIterator == nil {
			return recs, true
		}
		if len(out.Records) == 0 {
			return recs, false
		}
		iter = out.NextShardIterator
	}
	return recs, false
}

// kclAggregate returns the user records of the Kinesis record seq.
func kclAggregate(recs []stream.Record, seq string) []stream.Record {
	var out []stream.Record
	for _, r := range recs {
		if r.SequenceNumber == seq {
			out = append(out, r)
		}
	}
	return out
}

// kclCreateLeaseTable creates a lease table as the KCL does: hash key
// leaseKey (S), on-demand capacity.
func kclCreateLeaseTable(t *testing.T, db *dynamodb.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: dtypes.ScalarAttributeTypeS}},
		KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: dtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatalf("CreateTable %s: %v", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("lease table %s not ACTIVE: %v", name, err)
	}
}
