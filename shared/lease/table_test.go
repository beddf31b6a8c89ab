package lease_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/shardline/shared/lease"
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

	leases, bad, err := tbl.Scan(ctx)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
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
	leases, bad, err = tbl.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
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
