package lease_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/lease/leasetest"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

func TestMain(m *testing.M) { standintest.Main(m) }

// newTable creates a lease table of its own on DynamoDB Local.
func newTable(t *testing.T) (*lease.Table, *dynamodb.Client) {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	db := standintest.DynamoDBClient(standintest.DynamoDB(t).Endpoint)
	tbl := lease.NewTable(db, standintest.UniqueName(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := tbl.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	return tbl, db
}

func putRaw(t *testing.T, db *dynamodb.Client, table string, item map[string]types.AttributeValue) {
	t.Helper()
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// TestScanMalformedItems: an item whose counter is a string, or that has
// none, affects only its own shard; the missing counter is repaired.
func TestScanMalformedItems(t *testing.T) {
	tbl, db := newTable(t)
	ctx := context.Background()
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	for _, k := range []string{"shardId-000000000000", "shardId-000000000003"} {
		if err := tbl.Create(ctx, lease.Lease{Key: k, Checkpoint: stream.Position{Seq: stream.TrimHorizon}}); err != nil {
			t.Fatal(err)
		}
	}
	putRaw(t, db, tbl.Name(), map[string]types.AttributeValue{"leaseKey": s("shardId-000000000001"), "leaseCounter": s("5"), "checkpoint": s(stream.TrimHorizon)})
	putRaw(t, db, tbl.Name(), map[string]types.AttributeValue{"leaseKey": s("shardId-000000000002"), "checkpoint": s(stream.TrimHorizon)})

	sc, err := tbl.Scan(ctx)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	leases, bad := sc.Leases, sc.Bad
	if len(leases) != 2 {
		t.Errorf("Scan gave %d good leases, want 2", len(leases))
	}
	byKey := map[string]lease.BadItem{}
	for _, b := range bad {
		byKey[b.Key] = b
	}
	if b, ok := byKey["shardId-000000000001"]; !ok || b.MissingCounter || !strings.Contains(b.Problem, "leaseCounter") {
		t.Errorf("bad item 1 = %+v, want one naming leaseCounter, not repairable", b)
	}
	b, ok := byKey["shardId-000000000002"]
	if !ok || !b.MissingCounter {
		t.Fatalf("bad item 2 = %+v, want a missing counter", b)
	}
	if err := tbl.RepairCounter(ctx, b.Key); err != nil {
		t.Fatalf("RepairCounter: %v", err)
	}
	sc, err = tbl.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leases, bad = sc.Leases, sc.Bad
	if len(leases) != 3 || len(bad) != 1 {
		t.Fatalf("after repair: %d leases, %d bad; want 3 and 1", len(leases), len(bad))
	}
	// The repaired lease can be taken.
	for _, l := range leases {
		if l.Key == "shardId-000000000002" {
			if _, err := tbl.Take(ctx, l, "w1"); err != nil {
				t.Errorf("take the repaired lease: %v", err)
			}
		}
	}
}

// TestParkResume: a parked lease has no owner, keeps its checkpoint and
// reason; Resume clears the park without touching owner or counter; a
// checkpoint past the park clears it too.
func TestParkResume(t *testing.T) {
	tbl, _ := newTable(t)
	ctx := context.Background()
	key := "shardId-000000000000"
	if err := tbl.Create(ctx, lease.Lease{Key: key, Checkpoint: stream.Position{Seq: stream.TrimHorizon}}); err != nil {
		t.Fatal(err)
	}
	get := func() lease.Lease {
		t.Helper()
		l, ok, err := tbl.Get(ctx, key)
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		return l
	}
	l, err := tbl.WithNonce("n1").Take(ctx, get(), "w1")
	if err != nil {
		t.Fatal(err)
	}
	if l.Nonce != "n1" {
		t.Errorf("nonce = %q, want n1", l.Nonce)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	pos := stream.Position{Seq: "49590338271490256608559692538361571095921575989136588898", SubSeq: 2}
	p := lease.Park{Reason: "gave up", Since: now, Until: now.Add(time.Hour), Count: 1}
	if err := tbl.Park(ctx, l, &pos, p); err != nil {
		t.Fatalf("Park: %v", err)
	}
	got := get()
	if got.Owner != "" || got.Checkpoint != pos || got.Park == nil || got.Park.Reason != "gave up" || !got.Park.Until.Equal(p.Until) || !got.Parked(now) {
		t.Fatalf("after Park: %+v park %+v", got, got.Park)
	}
	if err := tbl.Resume(ctx, key); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got2 := get()
	if got2.Park != nil || got2.Counter != got.Counter {
		t.Errorf("after Resume: park %+v counter %d, want none and %d", got2.Park, got2.Counter, got.Counter)
	}
	if err := tbl.Resume(ctx, key); !errors.Is(err, lease.ErrNotParked) {
		t.Errorf("Resume again = %v, want ErrNotParked", err)
	}

	// Park again, take it back, and checkpoint: the park is gone.
	l, err = tbl.Take(ctx, got2, "w2")
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Park(ctx, l, nil, p); err != nil {
		t.Fatal(err)
	}
	l, err = tbl.Take(ctx, get(), "w2")
	if err != nil {
		t.Fatal(err)
	}
	if l.Park == nil {
		t.Fatal("a taken parked lease lost its park before any progress")
	}
	l, err = tbl.Checkpoint(ctx, l, stream.Position{Seq: pos.Seq, SubSeq: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Park != nil {
		t.Errorf("after a checkpoint the lease is still parked: %+v", l.Park)
	}
}

// TestTimestampAndDropped: AT_TIMESTAMP keeps its time in the item; the
// dropped-record count adds up over renewals.
func TestTimestampAndDropped(t *testing.T) {
	tbl, _ := newTable(t)
	ctx := context.Background()
	key := "shardId-000000000000"
	ts := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	if err := tbl.Create(ctx, lease.Lease{Key: key, Checkpoint: stream.Position{Seq: stream.AtTimestamp}, Timestamp: ts}); err != nil {
		t.Fatal(err)
	}
	l, _, err := tbl.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Timestamp.Equal(ts) {
		t.Fatalf("timestamp = %v, want %v", l.Timestamp, ts)
	}
	if l, err = tbl.Take(ctx, l, "w"); err != nil {
		t.Fatal(err)
	}
	ts2 := ts.Add(time.Minute)
	if l, err = tbl.CheckpointAt(ctx, l, ts2); err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint.Seq != stream.AtTimestamp || !l.Timestamp.Equal(ts2) {
		t.Errorf("after CheckpointAt: %s %v, want AT_TIMESTAMP %v", l.Checkpoint, l.Timestamp, ts2)
	}
	for range 2 {
		if l, err = tbl.Renew(ctx, l, lease.Progress{Time: time.Now(), MillisBehindLatest: 5, DroppedOutOfRange: 7, RecordsHandled: 100}); err != nil {
			t.Fatal(err)
		}
	}
	if l.DroppedOutOfRange != 14 || l.MillisBehindLatest != 5 || l.RecordsHandled != 200 {
		t.Errorf("dropped %d behind %d handled %d, want 14, 5 and 200", l.DroppedOutOfRange, l.MillisBehindLatest, l.RecordsHandled)
	}
	if l, err = tbl.Checkpoint(ctx, l, stream.Position{Seq: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	if !l.Timestamp.IsZero() {
		t.Errorf("a sequence-number checkpoint kept the timestamp %v", l.Timestamp)
	}
	// reset to AT_TIMESTAMP without a time is refused.
	if _, err := tbl.SetCheckpoint(ctx, l, stream.Position{Seq: stream.AtTimestamp}, time.Time{}); err == nil {
		t.Error("SetCheckpoint AT_TIMESTAMP without a time succeeded")
	}
	if l, err = tbl.SetCheckpoint(ctx, l, stream.Position{Seq: stream.AtTimestamp}, ts); err != nil || !l.Timestamp.Equal(ts) || l.Owner != "" {
		t.Errorf("SetCheckpoint AT_TIMESTAMP: %+v %v", l, err)
	}
}

const (
	kclSeqA = "49590338271490256608559692538361571095921575989136588898"
	kclSeqB = "49590338271490256608559692540925702759324208523137515618"
)

func rawItem(t *testing.T, db *dynamodb.Client, table, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// TestKCL35SingleTable: in a table KCL 3.5.1 shares with its other
// entities (leader lock, migration states, worker metrics; no leaseCounter)
// and a multi-stream application's lease, Scan finds only the leases,
// reports the multi-stream key apart and nothing as unreadable; Get and
// RepairCounter leave the other items alone.
func TestKCL35SingleTable(t *testing.T) {
	tbl, db := newTable(t)
	ctx := context.Background()
	others := leasetest.KCL351Entities("ip-10-0-0-1.ec2.internal:1a2b3c", "ip-10-0-0-1.ec2.internal:1a2b3c", "ip-10-0-0-2.ec2.internal:4d5e6f")
	for _, item := range others {
		putRaw(t, db, tbl.Name(), item)
	}
	multi := leasetest.KCLLease{
		Key: "123456789012:orders:1767366245:shardId-000000000000", StreamName: "123456789012:orders:1767366245", ShardID: "shardId-000000000000",
		Counter: 7, Owner: "ip-10-0-0-2.ec2.internal:4d5e6f", Checkpoint: stream.TrimHorizon,
	}
	putRaw(t, db, tbl.Name(), multi.Item())
	putRaw(t, db, tbl.Name(), leasetest.KCLLease{Key: "shardId-000000000000", Counter: 3, Checkpoint: stream.TrimHorizon, ThroughputKBps: "1.0E-4"}.Item())
	before := map[string]map[string]types.AttributeValue{}
	for _, k := range []string{"Leader", "Migration3.0", "TableMigration3.5", "ip-10-0-0-1.ec2.internal:1a2b3c", "ip-10-0-0-2.ec2.internal:4d5e6f", multi.Key} {
		before[k] = rawItem(t, db, tbl.Name(), k)
	}

	sc, err := tbl.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Leases) != 1 || sc.Leases[0].Key != "shardId-000000000000" || sc.Leases[0].ThroughputKBps != 1e-4 {
		t.Errorf("Scan leases %v, want shardId-000000000000 alone (throughputKBps 1e-4)", sc.Leases)
	}
	if len(sc.Bad) != 0 {
		t.Errorf("Scan bad items %+v, want none", sc.Bad)
	}
	if !slices.Equal(sc.MultiStream, []string{multi.Key}) {
		t.Errorf("Scan multi-stream keys %v, want [%s]", sc.MultiStream, multi.Key)
	}
	for k := range before {
		if _, ok, err := tbl.Get(ctx, k); ok || err != nil {
			t.Errorf("Get %s = ok %v, %v; want not a lease, no error", k, ok, err)
		}
		if err := tbl.RepairCounter(ctx, k); err != nil {
			t.Errorf("RepairCounter %s: %v", k, err)
		}
	}
	for k, item := range before {
		if got := rawItem(t, db, tbl.Name(), k); !reflect.DeepEqual(got, item) {
			t.Errorf("item %s changed:\n got %#v\nwant %#v", k, got, item)
		}
	}
}

// TestKCLHandoff: a lease mid-handoff (KCL 3.x: leaseOwner the next owner,
// checkpointOwner the holder) reads with its holder; a take ends the
// handoff; fenced writes fail once a checkpointOwner appears that was not
// read; KCL's prepared checkpoint is never touched; renewals and
// checkpoints write throughputKBps.
func TestKCLHandoff(t *testing.T) {
	tbl, db := newTable(t)
	ctx := context.Background()
	key := "shardId-000000000001"
	putRaw(t, db, tbl.Name(), leasetest.KCLLease{
		Key: key, Owner: "kcl-next", CheckpointOwner: "kcl-old", Counter: 41, OwnerSwitches: 1, Checkpoint: kclSeqA,
		ThroughputKBps: "12.5", PendingCheckpoint: kclSeqB, PendingSubSeq: 2, PendingState: []byte("app state"),
	}.Item())
	pending := func() []types.AttributeValue {
		item := rawItem(t, db, tbl.Name(), key)
		return []types.AttributeValue{item["pendingCheckpoint"], item["pendingCheckpointSubSequenceNumber"], item["pendingCheckpointState"]}
	}
	wantPending := pending()

	l, ok, err := tbl.Get(ctx, key)
	if err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	if l.Holder() != "kcl-old" || !l.MidHandoff() || l.Owner != "kcl-next" {
		t.Fatalf("read %s, want held by kcl-old, handing off to kcl-next", l.String())
	}
	stale := l
	stale.CheckpointOwner = ""
	if _, err := tbl.Take(ctx, stale, "w"); !errors.Is(err, lease.ErrLeaseLost) {
		t.Errorf("take without the checkpointOwner read = %v, want ErrLeaseLost", err)
	}
	l, err = tbl.Take(ctx, l, "w")
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	if _, ok := rawItem(t, db, tbl.Name(), key)["checkpointOwner"]; ok || l.CheckpointOwner != "" || l.Owner != "w" || l.OwnerSwitchesSinceCheckpoint != 2 {
		t.Errorf("after Take: %s (switches %d), checkpointOwner in the item %v; want w's, switches 2, none", l.String(), l.OwnerSwitchesSinceCheckpoint, ok)
	}
	if l, err = tbl.Renew(ctx, l, lease.Progress{Time: time.Now(), ThroughputKBps: 3.14159}); err != nil {
		t.Fatal(err)
	}
	if got := rawItem(t, db, tbl.Name(), key)["throughputKBps"]; !reflect.DeepEqual(got, leasetest.N("3.142")) {
		t.Errorf("throughputKBps after Renew = %#v, want 3.142", got)
	}
	if l, err = tbl.Checkpoint(ctx, l, stream.Position{Seq: kclSeqA, SubSeq: 1}, nil, lease.Progress{Time: time.Now(), ThroughputKBps: 0}); err != nil {
		t.Fatal(err)
	}
	if got := rawItem(t, db, tbl.Name(), key)["throughputKBps"]; !reflect.DeepEqual(got, leasetest.N("0")) {
		t.Errorf("throughputKBps after Checkpoint = %#v, want 0", got)
	}
	if l, err = tbl.Renew(ctx, l, lease.Progress{Time: time.Now(), ThroughputKBps: -1}); err != nil {
		t.Fatal(err)
	}
	if got := rawItem(t, db, tbl.Name(), key)["throughputKBps"]; !reflect.DeepEqual(got, leasetest.N("0")) {
		t.Errorf("throughputKBps after a Renew without a measure = %#v, want 0 kept", got)
	}

	// KCL's leader begins a handoff (its condition: leaseOwner as read,
	// no checkpointOwner; the counter unchanged). Here it names the same
	// next owner, so that only the checkpointOwner condition fails the
	// writes read before it.
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(tbl.Name()), Key: map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: key}},
		UpdateExpression:          aws.String("SET checkpointOwner = :w"),
		ConditionExpression:       aws.String("leaseOwner = :w AND attribute_not_exists(checkpointOwner)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":w": &types.AttributeValueMemberS{Value: "w"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.Renew(ctx, l, lease.Progress{Time: time.Now(), ThroughputKBps: -1}); !errors.Is(err, lease.ErrLeaseLost) {
		t.Errorf("Renew after a handoff began = %v, want ErrLeaseLost", err)
	}
	if _, err := tbl.Checkpoint(ctx, l, stream.Position{Seq: kclSeqA, SubSeq: 2}, nil); !errors.Is(err, lease.ErrLeaseLost) {
		t.Errorf("Checkpoint after a handoff began = %v, want ErrLeaseLost", err)
	}
	if err := tbl.Release(ctx, l, nil); !errors.Is(err, lease.ErrLeaseLost) {
		t.Errorf("Release after a handoff began = %v, want ErrLeaseLost", err)
	}
	// Read again, the writes go on; another worker's take ends the
	// handoff, and its release frees the lease.
	l, _, _ = tbl.Get(ctx, key)
	if _, err = tbl.Renew(ctx, l, lease.Progress{Time: time.Now(), ThroughputKBps: -1}); err != nil {
		t.Errorf("Renew of the lease as read mid-handoff: %v", err)
	}
	l, _, _ = tbl.Get(ctx, key)
	if l, err = tbl.Take(ctx, l, "w2"); err != nil || l.CheckpointOwner != "" {
		t.Fatalf("Take mid-handoff: %s, %v", l.String(), err)
	}
	if err := tbl.Release(ctx, l, &stream.Position{Seq: kclSeqA, SubSeq: 3}); err != nil {
		t.Errorf("Release: %v", err)
	}
	if got := pending(); !reflect.DeepEqual(got, wantPending) {
		t.Errorf("pendingCheckpoint* after Shardline's writes = %#v, want %#v untouched", got, wantPending)
	}
}
