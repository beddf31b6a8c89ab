package coordinator_test

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/lease/leasetest"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// kclNextWorker is the live KCL worker a graceful handoff names as the
// next owner.
const kclNextWorker = "ip-10-0-0-2.ec2.internal:4d5e6f"

// TestKCL35SingleTable (issue 19): two Shardline workers run beside a
// lease table as KCL 3.5.1 leaves it in single-table mode: the leader
// lock, the migration states and two workers' metrics (no leaseCounter,
// told apart by entityType), a multi-stream application's lease, and the
// four shards' leases, one of them mid-handoff (leaseOwner the next owner,
// checkpointOwner the dead holder, with a prepared checkpoint). The
// workers never change the other items and never take the multi-stream
// lease (logged once each); they take the other leases once expired and
// read them from their checkpoints; the lease mid-handoff only once the
// handoff timeout and the failover time have passed, and then without
// its checkpointOwner, its prepared checkpoint kept; renewals and
// checkpoints write throughputKBps.
func TestKCL35SingleTable(t *testing.T) {
	f := newFixture(t, 4)
	want := f.put(kclKeys, 40, 0, 0)
	list := kclListShards(t, f)
	if len(list) != 4 {
		t.Fatalf("stream has %d shards, want 4", len(list))
	}
	kclCreateLeaseTable(t, f.dynamo, f.app)
	items := leasetest.KCL351Entities(kclDeadWorker, kclDeadWorker, kclNextWorker)
	multi := leasetest.KCLLease{
		Key:        "123456789012:" + f.stream + ":1767366245:" + list[0].ID,
		StreamName: "123456789012:" + f.stream + ":1767366245", ShardID: list[0].ID,
		Owner: kclDeadWorker, Counter: 9, Checkpoint: stream.TrimHorizon,
	}
	items[multi.Key] = multi.Item()
	handoff := list[1].ID
	for i, sh := range list {
		l := leasetest.KCLLease{
			Key: sh.ID, Counter: int64(100 * (i + 1)), Checkpoint: stream.TrimHorizon,
			StartingHashKey: sh.StartingHashKey, EndingHashKey: sh.EndingHashKey, ThroughputKBps: "1.4921875",
		}
		switch i {
		case 0:
			l.Owner = kclDeadWorker
		case 1: // mid-handoff, its holder dead
			l.Owner, l.CheckpointOwner = kclNextWorker, kclDeadWorker
			l.PendingCheckpoint, l.PendingState = "49590338271490256608559692540925702759324208523137515618", []byte("app state")
		case 2: // unowned
		case 3: // as KCL 2.x wrote it: no entityType
			l.Owner = kclDeadWorker
		}
		item := l.Item()
		if i == 3 {
			delete(item, "entityType")
		}
		items[sh.ID] = item
	}
	for _, item := range items {
		if _, err := f.dynamo.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.app), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	raw := func(key string) map[string]dtypes.AttributeValue {
		t.Helper()
		out, err := f.dynamo.GetItem(context.Background(), &dynamodb.GetItemInput{
			TableName: aws.String(f.app), ConsistentRead: aws.Bool(true),
			Key: map[string]dtypes.AttributeValue{"leaseKey": &dtypes.AttributeValueMemberS{Value: key}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	// The leader lock is shared: a Shardline worker takes it once KCL's
	// leader has not renewed it for its lease duration, as a KCL worker
	// would, and deletes it when it stops (checked below).
	untouchable := []string{"Migration3.0", "TableMigration3.5", kclDeadWorker, kclNextWorker, multi.Key}
	before := map[string]map[string]dtypes.AttributeValue{}
	for _, k := range untouchable {
		before[k] = raw(k) // as DynamoDB keeps them (numbers normalised)
	}
	pending := raw(handoff)
	checkUntouched := func(when string) {
		t.Helper()
		for _, k := range untouchable {
			if got := raw(k); !reflect.DeepEqual(got, before[k]) {
				t.Errorf("%s: item %s changed:\n got %#v\nwant %#v", when, k, got, before[k])
			}
		}
	}

	const failover, handoffTimeout = 2 * time.Second, 3 * time.Second
	c := &collector{}
	logs := []*testwait.Buffer{{}, {}}
	var workers []*running
	began := time.Now()
	for _, buf := range logs {
		workers = append(workers, f.start(c.handle, func(cfg *coordinator.Config) {
			cfg.FailoverTime, cfg.HandoffTimeout = failover, handoffTimeout
			cfg.ShardSyncInterval = time.Second
			cfg.Logger = slog.New(slog.NewTextHandler(buf, nil))
		}))
	}
	ours := func(owner string) bool { return owner == workers[0].w.WorkerID() || owner == workers[1].w.WorkerID() }

	// The other leases are taken and read while the handoff's time runs.
	testwait.Until(t, time.Minute, "the three leases not mid-handoff taken", func() bool {
		ls := f.leases()
		return ours(ls[list[0].ID].Owner) && ours(ls[list[2].ID].Owner) && ours(ls[list[3].ID].Owner)
	})
	testwait.Until(t, time.Minute, "the lease mid-handoff taken", func() bool {
		item := raw(handoff)
		owner, _ := item["leaseOwner"].(*dtypes.AttributeValueMemberS)
		if owner == nil || !ours(owner.Value) {
			if _, ok := item["checkpointOwner"]; !ok {
				t.Fatalf("lease %s lost its checkpointOwner without a take: %#v", handoff, item)
			}
			return false
		}
		if d := time.Since(began); d < handoffTimeout+failover {
			t.Errorf("lease %s taken mid-handoff after %s, want not before the handoff timeout and the failover time (%s)", handoff, d, handoffTimeout+failover)
		}
		if co, ok := item["checkpointOwner"]; ok {
			t.Errorf("lease %s taken with checkpointOwner %#v kept, want it removed", handoff, co)
		}
		return true
	})
	want = append(want, f.put(kclKeys, 20, 40, 0)...)
	testwait.Until(t, time.Minute, fmt.Sprintf("%d records", len(want)), func() bool { return c.count() >= len(want) })
	checkUntouched("while the workers run")
	testwait.Until(t, 30*time.Second, "Shardline's throughputKBps on every lease", func() bool {
		for _, sh := range list {
			if n, ok := raw(sh.ID)["throughputKBps"].(*dtypes.AttributeValueMemberN); !ok || n.Value == "1.4921875" {
				return false
			}
		}
		return true
	})
	lock := raw("Leader")
	if et, _ := lock["entityType"].(*dtypes.AttributeValueMemberS); et == nil || et.Value != "LEADER" {
		t.Errorf("leader lock %#v: want entityType LEADER kept", lock)
	}
	if o, _ := lock["ownerName"].(*dtypes.AttributeValueMemberS); o == nil || !ours(o.Value) {
		t.Errorf("leader lock %#v: want it taken by a Shardline worker once KCL's expired", lock)
	}
	for i, r := range workers {
		if err := r.stop(t); err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	checkUntouched("after the drain")
	if lock := raw("Leader"); len(lock) != 0 {
		t.Errorf("leader lock %#v after the drain: want it released (deleted)", lock)
	}

	recs := c.snapshot()
	assertIDs(t, recs, want)
	checkOrder(t, recs)
	item := raw(handoff)
	for _, a := range []string{"pendingCheckpoint", "pendingCheckpointSubSequenceNumber", "pendingCheckpointState"} {
		if !reflect.DeepEqual(item[a], pending[a]) {
			t.Errorf("lease %s %s = %#v, want the prepared checkpoint kept (%#v)", handoff, a, item[a], pending[a])
		}
	}
	for _, sh := range list {
		item := raw(sh.ID)
		if n, ok := item["throughputKBps"].(*dtypes.AttributeValueMemberN); !ok || n.Value == "1.4921875" {
			t.Errorf("lease %s throughputKBps %#v, want Shardline's", sh.ID, item["throughputKBps"])
		}
	}
	// The leader reads the table: the lease is logged once by each worker
	// that led.
	said := 0
	for i, buf := range logs {
		n := strings.Count(buf.String(), multi.Key)
		if n > 1 {
			t.Errorf("worker %d logged the multi-stream lease %d times, want once at most:\n%s", i, n, buf.String())
		}
		said += n
		for _, k := range append([]string{"Leader"}, untouchable[:4]...) {
			if strings.Contains(buf.String(), "shard="+k+" ") {
				t.Errorf("worker %d logged the item %s as a shard's", i, k)
			}
		}
	}
	if said == 0 {
		t.Errorf("no worker logged the multi-stream lease, want the leader to")
	}
}
