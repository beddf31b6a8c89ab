package coordinator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/destination/filedest"
	"github.com/shardline/shardline/shared/filter"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// logTo returns a JSON logger writing to buf, and sets it on cfg.
func logTo(buf *testwait.Buffer) func(*coordinator.Config) {
	return func(c *coordinator.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

// lines counts the log lines that contain every part.
func lines(buf *testwait.Buffer, parts ...string) int {
	n := 0
	for _, l := range strings.Split(buf.String(), "\n") {
		ok := l != ""
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			n++
		}
	}
	return n
}

func fastPark(c *coordinator.Config) {
	c.ParkRetryWait = 300 * time.Millisecond
	c.MaxParkRetryWait = time.Second
}

func parkedLeases(ls map[string]lease.Lease) []lease.Lease {
	var out []lease.Lease
	for _, l := range ls {
		if l.Park != nil {
			out = append(out, l)
		}
	}
	return out
}

func noReturn(t *testing.T, rs ...*running) {
	t.Helper()
	for i, r := range rs {
		select {
		case err := <-r.done:
			t.Fatalf("worker %d stopped: %v; a failing shard must never stop a worker", i, err)
		default:
		}
	}
}

// TestPoisonRecordParksOnlyItsShard: with two workers and a record that the
// handler always fails (retries exhausted, no destination), its shard is
// parked with the reason in the lease, both workers keep running, the other
// shard keeps being read, the park is retried with back-off with one ERROR
// line in all, nothing passes the poison record, and once the handler
// heals every record is delivered and the park is gone.
func TestPoisonRecordParksOnlyItsShard(t *testing.T) {
	f := newFixture(t, 2)
	want := f.put(10, 40, 0, 0)
	poison := want[13]
	var healed atomic.Bool
	c := &collector{fail: func(call int, ev events.KinesisEvent) ([]int, error) {
		for _, r := range ev.Records {
			if string(r.Kinesis.Data) == poison && !healed.Load() {
				return nil, errors.New("poison record")
			}
		}
		return nil, nil
	}}
	var logs testwait.Buffer
	mod := func(cfg *coordinator.Config) {
		cfg.MaxRetryAttempts = 1
		fastPark(cfg)
		logTo(&logs)(cfg)
	}
	r1 := f.start(c.handle, func(cfg *coordinator.Config) { mod(cfg); cfg.WorkerID = "w1" })
	r2 := f.start(c.handle, func(cfg *coordinator.Config) { mod(cfg); cfg.WorkerID = "w2" })

	var parked lease.Lease
	testwait.Until(t, time.Minute, "the poisoned shard parked and retried twice", func() bool {
		p := parkedLeases(f.leases())
		if len(p) == 1 && p[0].Park.Count >= 3 {
			parked = p[0]
			return true
		}
		return false
	})
	noReturn(t, r1, r2)
	if !strings.Contains(parked.Park.Reason, "gave up") || !strings.Contains(parked.Park.Reason, "poison record") {
		t.Errorf("park reason %q: want the give-up and the handler's error", parked.Park.Reason)
	}
	for _, g := range c.snapshot() {
		if g.id == poison {
			t.Fatal("the poison record was reported handled")
		}
	}
	if n := lines(&logs, `"level":"ERROR"`, "shard parked"); n != 1 {
		t.Errorf("%d ERROR lines for the park, want 1 (retries log at INFO):\n%s", n, logs.String())
	}
	// The other shard goes on.
	other := func() int {
		n := 0
		for _, g := range c.snapshot() {
			if g.shard != parked.Key {
				n++
			}
		}
		return n
	}
	before := other()
	more := f.put(10, 40, 40, 0)
	testwait.Until(t, time.Minute, "the healthy shard reads new records while the other is parked", func() bool { return other() > before })
	noReturn(t, r1, r2)

	healed.Store(true)
	testwait.Until(t, time.Minute, "every record once the handler heals", func() bool {
		seen := map[string]bool{}
		for _, g := range c.snapshot() {
			seen[g.id] = true
		}
		for _, id := range append(append([]string{}, want...), more...) {
			if !seen[id] {
				return false
			}
		}
		return true
	})
	testwait.Until(t, 30*time.Second, "the park cleared by the next checkpoint", func() bool { return len(parkedLeases(f.leases())) == 0 })
	// Two workers balance: a stolen shard's old owner may deliver a batch
	// again (at least once), so order is checked on first deliveries.
	checkOrder(t, firstDeliveries(c.snapshot()))
}

// vanishedLease writes a lease for a shard the stream does not know, with
// a checkpoint, and returns its key.
func (f *fixture) vanishedLease() string {
	f.t.Helper()
	table := lease.NewTable(f.dynamo, f.app)
	if err := table.Ensure(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	gone := "shardId-000000000077"
	if err := table.Create(context.Background(), lease.Lease{Key: gone, Checkpoint: stream.Position{Seq: "49590338271490256608559692538361571095921575989136588898"}}); err != nil {
		f.t.Fatal(err)
	}
	return gone
}

// TestVanishedShardEnds: a lease for a shard the stream does not know
// (ResourceNotFoundException) is treated as ended, with a WARN line; the
// worker and the other shards go on.
func TestVanishedShardEnds(t *testing.T) {
	f := newFixture(t, 1)
	gone := f.vanishedLease()
	want := f.put(2, 10, 0, 0)
	c := &collector{}
	var logs testwait.Buffer
	r := f.start(c.handle, logTo(&logs))
	testwait.Until(t, time.Minute, "the vanished shard's lease at SHARD_END (or, ended, cleaned up)", func() bool {
		l, ok := f.leases()[gone]
		return !ok || l.Checkpoint.Seq == stream.ShardEnd
	})
	testwait.Until(t, time.Minute, "the real shard's records", func() bool { return c.count() >= len(want) })
	noReturn(t, r)
	if lines(&logs, `"level":"WARN"`, "no longer exists", gone) != 1 {
		t.Errorf("want one WARN line naming %s:\n%s", gone, logs.String())
	}
}

// TestUnreadableCheckpointsPark: a checkpoint that is not a sequence number
// of its shard, and an AT_TIMESTAMP checkpoint without a time, park their
// shard with a reason that says what to do; the other shard is read.
func TestUnreadableCheckpointsPark(t *testing.T) {
	f := newFixture(t, 3)
	table := lease.NewTable(f.dynamo, f.app)
	if err := table.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	mk := func(key string, cp string) {
		if err := table.Create(context.Background(), lease.Lease{Key: key, Checkpoint: stream.Position{Seq: cp}}); err != nil {
			t.Fatal(err)
		}
	}
	mk("shardId-000000000000", "12345678901234567890")
	mk("shardId-000000000001", stream.AtTimestamp)
	want := f.put(30, 60, 0, 0)
	c := &collector{}
	var logs testwait.Buffer
	r := f.start(c.handle, func(cfg *coordinator.Config) { fastPark(cfg); logTo(&logs)(cfg) })
	testwait.Until(t, time.Minute, "both bad shards parked", func() bool { return len(parkedLeases(f.leases())) == 2 })
	ls := f.leases()
	if r0 := ls["shardId-000000000000"].Park; r0 == nil || !strings.Contains(r0.Reason, "poller reset") {
		t.Errorf("shard 0 park = %+v, want a reason naming poller reset", r0)
	}
	if r1 := ls["shardId-000000000001"].Park; r1 == nil || !strings.Contains(r1.Reason, "-initial-timestamp") {
		t.Errorf("shard 1 park = %+v, want a reason naming -initial-timestamp", r1)
	}
	testwait.Until(t, time.Minute, "shard 2's records", func() bool {
		n := 0
		for _, g := range c.snapshot() {
			if g.shard == "shardId-000000000002" {
				n++
			}
		}
		return n > 0
	})
	noReturn(t, r)
	if ls["shardId-000000000000"].Checkpoint.Seq != "12345678901234567890" {
		t.Errorf("parked checkpoint moved to %s", ls["shardId-000000000000"].Checkpoint)
	}
	_ = want
}

// TestAtTimestampKeptInLease: a lease created at AT_TIMESTAMP keeps its
// time, so a worker without -initial-timestamp resumes it.
func TestAtTimestampKeptInLease(t *testing.T) {
	f := newFixture(t, 1)
	f.put(1, 5, 0, 0)
	from := time.Now()
	want := f.put(1, 5, 5, 0)
	c1 := &collector{}
	hold := make(chan struct{})
	c1.fail = func(int, events.KinesisEvent) ([]int, error) { <-hold; return nil, errors.New("not now") }
	r1 := f.start(c1.handle, func(cfg *coordinator.Config) {
		cfg.InitialPosition, cfg.InitialTimestamp = stream.AtTimestamp, from
	})
	testwait.Until(t, time.Minute, "the lease", func() bool { return len(f.leases()) == 1 })
	if l := f.leases()["shardId-000000000000"]; l.Checkpoint.Seq != stream.AtTimestamp || !l.Timestamp.Equal(from.Truncate(0)) && l.Timestamp.Sub(from).Abs() > time.Millisecond {
		t.Fatalf("lease %s timestamp %v, want AT_TIMESTAMP %v", l.Checkpoint, l.Timestamp, from)
	}
	close(hold)
	r1.stop(t)
	c2 := &collector{}
	f.start(c2.handle, func(cfg *coordinator.Config) { cfg.InitialPosition = stream.TrimHorizon })
	testwait.Until(t, time.Minute, "the records from the lease's time", func() bool { return c2.count() >= len(want) })
	assertIDs(t, c2.snapshot(), want)
}

// TestLatestLosesNothing: a lease at LATEST that has delivered nothing is
// released (a restart, the next scheduled invocation); what was written
// meanwhile is delivered by the next owner.
func TestLatestLosesNothing(t *testing.T) {
	f := newFixture(t, 1)
	f.put(1, 5, 0, 0) // before the application started: not delivered
	c1 := &collector{}
	var logs testwait.Buffer
	r1 := f.start(c1.handle, func(cfg *coordinator.Config) { cfg.InitialPosition = stream.Latest; logTo(&logs)(cfg) })
	testwait.Until(t, time.Minute, "the shard started", func() bool { return lines(&logs, "shard started") > 0 })
	r1.stop(t)
	if c1.count() != 0 {
		t.Fatalf("LATEST delivered %d records written before the start", c1.count())
	}
	want := f.put(1, 10, 5, 0) // while no one reads
	c2 := &collector{}
	f.start(c2.handle, func(cfg *coordinator.Config) { cfg.InitialPosition = stream.Latest })
	testwait.Until(t, time.Minute, "the records written between the two workers", func() bool { return c2.count() >= len(want) })
	assertIDs(t, c2.snapshot(), want)
}

// TestMalformedLeaseItems: an item with a string counter affects only its
// shard (logged once, not read); an item without a counter is repaired and
// read; the third shard is read as usual.
func TestMalformedLeaseItems(t *testing.T) {
	f := newFixture(t, 3)
	table := lease.NewTable(f.dynamo, f.app)
	if err := table.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := func(v string) dtypes.AttributeValue { return &dtypes.AttributeValueMemberS{Value: v} }
	for key, item := range map[string]map[string]dtypes.AttributeValue{
		"shardId-000000000000": {"leaseCounter": s("3"), "checkpoint": s(stream.TrimHorizon)},
		"shardId-000000000001": {"checkpoint": s(stream.TrimHorizon)},
	} {
		item["leaseKey"] = s(key)
		if _, err := f.dynamo.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.app), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	f.put(30, 60, 0, 0)
	c := &collector{}
	var logs testwait.Buffer
	r := f.start(c.handle, logTo(&logs))
	shardsRead := func() map[string]bool {
		m := map[string]bool{}
		for _, g := range c.snapshot() {
			m[g.shard] = true
		}
		return m
	}
	testwait.Until(t, time.Minute, "shards 1 (repaired) and 2 read", func() bool {
		m := shardsRead()
		return m["shardId-000000000001"] && m["shardId-000000000002"]
	})
	testwait.Until(t, 10*time.Second, "three lease rounds", func() bool { return lines(&logs, "cannot be read") > 0 })
	noReturn(t, r)
	if shardsRead()["shardId-000000000000"] {
		t.Error("the shard with the unreadable lease item was read")
	}
	if n := lines(&logs, `"level":"ERROR"`, "cannot be read", "shardId-000000000000", "leaseCounter"); n != 1 {
		t.Errorf("%d ERROR lines for the unreadable item, want 1:\n%s", n, logs.String())
	}
	if n := lines(&logs, "repaired", "shardId-000000000001"); n != 1 {
		t.Errorf("%d lines for the repair, want 1", n)
	}
}

// TestDuplicateWorkerID: a second process with a worker id already in use
// says so and stops with *DuplicateWorkerError; the first keeps its leases.
func TestDuplicateWorkerID(t *testing.T) {
	f := newFixture(t, 2)
	f.put(4, 8, 0, 0)
	c := &collector{}
	r1 := f.start(c.handle, func(cfg *coordinator.Config) { cfg.WorkerID = "same" })
	testwait.Until(t, time.Minute, "the first worker holds both leases", func() bool { return len(r1.w.Held()) == 2 })
	r2 := f.start(c.handle, func(cfg *coordinator.Config) { cfg.WorkerID = "same" })
	err := r2.returned(t, 30*time.Second, "the second process with the same worker id did not stop")
	var dup *coordinator.DuplicateWorkerError
	if !errors.As(err, &dup) || dup.WorkerID != "same" || !strings.Contains(err.Error(), `"same"`) {
		t.Fatalf("Run = %v, want a *DuplicateWorkerError naming the id", err)
	}
	noReturn(t, r1)
	if got := len(r1.w.Held()); got != 2 {
		t.Errorf("the first worker holds %d leases, want 2", got)
	}
}

// TestHungHandlerDrain: a handler that never returns does not hang the
// drain: Run returns a *DrainError after DrainTimeout, the lease is
// released and the checkpoint has not passed the hung batch.
func TestHungHandlerDrain(t *testing.T) {
	f := newFixture(t, 1)
	f.put(1, 20, 0, 0)
	entered := make(chan struct{}, 1)
	block := make(chan struct{})
	defer close(block)
	c := &collector{}
	var calls atomic.Int64
	hung := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if calls.Add(1) == 2 {
			entered <- struct{}{}
			<-block // ignores its context
		}
		return c.handle(ctx, ev)
	}
	r := f.start(hung, func(cfg *coordinator.Config) { cfg.BatchSize = 10; cfg.DrainTimeout = time.Second })
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("no second batch")
	}
	first := c.snapshot()
	began := time.Now()
	r.cancel()
	err := r.returned(t, 20*time.Second, "Run hung on a handler that never returns")
	var de *coordinator.DrainError
	if !errors.As(err, &de) || len(de.Shards) != 1 {
		t.Fatalf("Run = %v, want a *DrainError naming the shard", err)
	}
	t.Logf("Run returned %v after the drain began", time.Since(began).Round(time.Millisecond))
	l := f.leases()["shardId-000000000000"]
	if l.Owner != "" {
		t.Errorf("lease still owned by %q after the drain gave up", l.Owner)
	}
	if len(first) != 10 || l.Checkpoint.Seq != first[9].pos.Seq {
		t.Errorf("checkpoint %s, want the end of the first batch %s (not past the hung one)", l.Checkpoint, first[len(first)-1].pos)
	}
}

// TestDroppedOutOfRangeCounted: user records of an aggregate whose hash
// keys lie outside the shard are dropped as KCL drops them, counted in the
// lease and logged at WARN; with DeliverOutOfRange (-out-of-range deliver)
// every one is delivered and none counted.
func TestDroppedOutOfRangeCounted(t *testing.T) {
	for _, deliver := range []bool{false, true} {
		t.Run(fmt.Sprintf("deliver=%v", deliver), func(t *testing.T) {
			f := newFixture(t, 2)
			var users []kpl.UserRecord
			for i := range 10 {
				ehk := "1"
				if i%2 == 1 {
					ehk = "340282366920938463463374607431768211000" // shard 1's range
				}
				users = append(users, kpl.UserRecord{PartitionKey: "k", ExplicitHashKey: ehk, Data: []byte{byte(i)}})
			}
			data, err := kpl.Aggregate(users)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.kinesis.PutRecord(context.Background(), &kinesis.PutRecordInput{
				StreamName: &f.stream, PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("1"), Data: data,
			}); err != nil {
				t.Fatal(err)
			}
			c := &collector{}
			var logs testwait.Buffer
			f.start(c.handle, func(cfg *coordinator.Config) { logTo(&logs)(cfg); cfg.DeliverOutOfRange = deliver })
			if deliver {
				testwait.Until(t, time.Minute, "all 10 records", func() bool { return c.count() >= 10 })
				testwait.Until(t, 30*time.Second, "the checkpoint at the aggregate's last user record", func() bool {
					return f.leases()["shardId-000000000000"].Checkpoint.SubSeq == 9
				})
				if n := f.leases()["shardId-000000000000"].DroppedOutOfRange; n != 0 || c.count() != 10 {
					t.Errorf("%d records delivered, %d counted as dropped; want 10 and 0", c.count(), n)
				}
				return
			}
			testwait.Until(t, time.Minute, "the 5 records in range", func() bool { return c.count() >= 5 })
			testwait.Until(t, 30*time.Second, "5 dropped records counted in the lease", func() bool {
				return f.leases()["shardId-000000000000"].DroppedOutOfRange == 5
			})
			testwait.Until(t, 10*time.Second, "a WARN line with the count", func() bool {
				return lines(&logs, `"level":"WARN"`, "outside the shard's hash range", `"count":5`) == 1
			})
		})
	}
}

// TestRefusingDestinationParks: records given up go to the on-failure
// destination; one that refuses them parks the shard (nothing is skipped)
// and the reason names the destination's error.
func TestRefusingDestinationParks(t *testing.T) {
	f := newFixture(t, 1)
	f.put(1, 5, 0, 0)
	dir := t.TempDir() // a directory: the file destination cannot append to it
	c := &collector{fail: func(int, events.KinesisEvent) ([]int, error) { return nil, errors.New("always") }}
	r := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.MaxRetryAttempts = 0
		cfg.OnFailure = filedest.New(dir)
		cfg.ParkRetryWait = time.Hour
	})
	testwait.Until(t, time.Minute, "the shard parked", func() bool { return len(parkedLeases(f.leases())) == 1 })
	noReturn(t, r)
	l := f.leases()["shardId-000000000000"]
	if !strings.Contains(l.Park.Reason, "on-failure destination") || !strings.Contains(l.Park.Reason, dir) {
		t.Errorf("park reason %q: want the destination's refusal", l.Park.Reason)
	}
	if l.Checkpoint.Seq != stream.TrimHorizon {
		t.Errorf("checkpoint moved to %s past records the destination refused", l.Checkpoint)
	}
}

// TestBatchingWindowByteLimit: a batching window stops filling a batch at
// the byte limit, so a long window cannot hold more than MaxBatchBytes of
// a shard's records: with a 60 s window and records already there, the
// first batch comes at once.
func TestBatchingWindowByteLimit(t *testing.T) {
	f := newFixture(t, 1)
	p, err := produce.New(context.Background(), f.kinesis, f.stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	var recs []kpl.UserRecord
	for i := range 200 {
		recs = append(recs, kpl.UserRecord{PartitionKey: "k", Data: []byte(strings.Repeat("x", 1000) + fmt.Sprint(i))})
	}
	if err := p.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	var mu sync.Mutex
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		n := 0
		for _, r := range ev.Records {
			n += len(r.Kinesis.Data)
		}
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
		return events.KinesisEventResponse{}, nil
	}
	f.start(h, func(cfg *coordinator.Config) {
		cfg.MaxBatchingWindow = time.Minute
		cfg.BatchSize = 10000
		cfg.MaxBatchBytes = 50_000
	})
	testwait.Until(t, 30*time.Second, "a batch before the 60 s window ends", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sizes) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if sizes[0] > 60_000 {
		t.Errorf("first batch holds %d bytes of data, want about the 50,000 byte limit", sizes[0])
	}
}

// TestHungHandlerTimesOut: a handler call that outlives HandlerTimeout
// (and ignores its context) is a failed attempt: the batch is retried and
// every record is delivered; the timeout is counted.
func TestHungHandlerTimesOut(t *testing.T) {
	f := newFixture(t, 1)
	want := f.put(1, 10, 0, 0)
	block := make(chan struct{})
	defer close(block)
	c := &collector{}
	var calls atomic.Int64
	var sawDeadline atomic.Bool
	hung := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if _, ok := ctx.Deadline(); ok {
			sawDeadline.Store(true)
		}
		if calls.Add(1) == 1 {
			<-block
		}
		return c.handle(ctx, ev)
	}
	r := f.start(hung, func(cfg *coordinator.Config) { cfg.HandlerTimeout = 500 * time.Millisecond })
	testwait.Until(t, time.Minute, "every record after the timed-out call", func() bool { return c.count() >= len(want) })
	assertIDs(t, c.snapshot(), want)
	if !sawDeadline.Load() {
		t.Error("the handler's context had no deadline")
	}
	testwait.Until(t, 10*time.Second, "the batch counted", func() bool { return r.w.Totals().Handled >= int64(len(want)) })
	if got := r.w.Totals().Timeouts; got != 1 {
		t.Errorf("Totals().Timeouts = %d, want 1 (%+v)", got, r.w.Totals())
	}
}

// firstDeliveries keeps each record's first delivery, in delivery order.
func firstDeliveries(recs []got) []got {
	seen := map[string]bool{}
	var out []got
	for _, r := range recs {
		if !seen[r.id] {
			seen[r.id] = true
			out = append(out, r)
		}
	}
	return out
}

// TestParallelizationWithKPL: with a factor of 5, user records of KPL
// aggregates are handled up to 5 batches at once, by their own partition
// keys, each key in order, each record once; the checkpoint ends at the
// last record.
func TestParallelizationWithKPL(t *testing.T) {
	f := newFixture(t, 1)
	want := f.put(40, 2000, 0, 100) // 20 aggregates of 100 user records, 40 keys
	c := &collector{}
	h, most := slowCounted(c.handle)
	r := f.start(h, func(cfg *coordinator.Config) { cfg.ParallelizationFactor = 5; cfg.BatchSize = 20 })
	testwait.Until(t, time.Minute, "2,000 records", func() bool { return c.count() >= len(want) })
	assertIDs(t, c.snapshot(), want)
	checkKeyOrder(t, c.snapshot())
	if m := most.Load(); m < 2 || m > 5 {
		t.Errorf("at most %d calls in flight, want 2–5", m)
	}
	last := c.snapshot()[0].pos
	for _, g := range c.snapshot() {
		if g.pos.After(last) {
			last = g.pos
		}
	}
	testwait.Until(t, 10*time.Second, "the checkpoint at the last record", func() bool {
		return f.leases()["shardId-000000000000"].Checkpoint == last
	})
	r.stop(t)
}

// slowCounted is h made slow (5 ms a call, so that lanes overlap), with
// the most calls it had in flight at once.
func slowCounted(h stream.Handler) (stream.Handler, *atomic.Int64) {
	var inFlight, most atomic.Int64
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond) // a slow handler, so lanes overlap
		return h(ctx, ev)
	}, &most
}

// TestFilterCriteria: records the filter does not match, plain or inside
// KPL aggregates, are never passed to the handler, are counted, and the
// checkpoint passes them (up to the read's last record, filtered or not).
func TestFilterCriteria(t *testing.T) {
	f := newFixture(t, 1)
	p, err := produce.New(context.Background(), f.kinesis, f.stream, 10)
	if err != nil {
		t.Fatal(err)
	}
	var recs []kpl.UserRecord
	var want []string
	for i := range 60 {
		typ := "other"
		if i%3 == 0 {
			typ = "order"
			want = append(want, fmt.Sprint(i))
		}
		recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint("k", i%4), Data: []byte(fmt.Sprintf(`{"type":%q,"n":%d}`, typ, i))})
	}
	recs = append(recs, kpl.UserRecord{PartitionKey: "k0", Data: []byte("not json")}) // last: filtered out
	if err := p.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	flt, err := filter.Parse([]string{`{"data":{"type":["order"]}}`})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ev.Records {
			var v struct{ N int }
			if err := json.Unmarshal(r.Kinesis.Data, &v); err != nil {
				t.Errorf("record %q passed the filter", r.Kinesis.Data)
			}
			got = append(got, fmt.Sprint(v.N))
		}
		return events.KinesisEventResponse{}, nil
	}
	r := f.start(h, func(cfg *coordinator.Config) { cfg.Filter = flt })
	testwait.Until(t, time.Minute, "the 20 orders and the checkpoint past the last (filtered) record", func() bool {
		cp := f.leases()["shardId-000000000000"].Checkpoint
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(want) && !cp.IsSentinel() && cp.SubSeq == 0 && r.w.Totals().FilteredOut == 41 && lastAggregateEnd(t, f, cp)
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

// lastAggregateEnd reports whether cp is the stream's last record (the
// plain "not json" one).
func lastAggregateEnd(t *testing.T, f *fixture, cp stream.Position) bool {
	t.Helper()
	it, err := f.kinesis.GetShardIterator(context.Background(), &kinesis.GetShardIteratorInput{
		StreamName: &f.stream, ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "TRIM_HORIZON"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.kinesis.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	n := len(out.Records)
	return n > 0 && aws.ToString(out.Records[n-1].SequenceNumber) == cp.Seq
}

// TestTumblingWindows: with a tumbling window the handler gets windowed
// events with the state it returned last, a final invoke once the window
// has passed (the shard caught up), and the checkpoint moves only then.
func TestTumblingWindows(t *testing.T) {
	f := newFixture(t, 1)
	want := f.put(2, 6, 0, 3)
	var mu sync.Mutex
	var calls []events.KinesisTimeWindowEvent
	var cpAtFirstCall stream.Position
	wh := func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(calls) == 0 {
			cpAtFirstCall = f.leases()["shardId-000000000000"].Checkpoint
		}
		calls = append(calls, ev)
		return countInState(ev), nil
	}
	r := f.start(nil, func(cfg *coordinator.Config) {
		cfg.TumblingWindow = time.Second
		cfg.WindowHandler = wh
		cfg.BatchSize = 4
	})
	testwait.Until(t, time.Minute, "a final invoke", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range calls {
			if c.IsFinalInvokeForWindow {
				return true
			}
		}
		return false
	})
	mu.Lock()
	total, finalState := 0, ""
	for _, c := range calls {
		total += len(c.Records)
		if c.IsFinalInvokeForWindow {
			finalState = c.State["n"]
			if len(c.Records) != 0 || !c.Window.End.After(c.Window.Start.Time) {
				t.Errorf("final invoke %+v: want no records and its window", c.TimeWindowProperties)
			}
		}
	}
	first := cpAtFirstCall
	mu.Unlock()
	if !first.IsSentinel() {
		t.Errorf("checkpoint at the first windowed call = %s, want none yet (records are done when their window closes)", first)
	}
	if total < len(want) || finalState == "" {
		t.Errorf("records in windowed calls %d, final state n=%q; want %d and a count", total, finalState, len(want))
	}
	testwait.Until(t, 10*time.Second, "the checkpoint after the final invoke", func() bool {
		return !f.leases()["shardId-000000000000"].Checkpoint.IsSentinel()
	})
	r.stop(t)
}

// countInState answers a windowed call as a counting handler does: the
// state's n plus the call's records, and an empty state at the final
// invoke.
func countInState(ev events.KinesisTimeWindowEvent) events.KinesisTimeWindowEventResponse {
	n, _ := strconv.Atoi(ev.State["n"])
	state := map[string]string{"n": strconv.Itoa(n + len(ev.Records))}
	if ev.IsFinalInvokeForWindow {
		state = map[string]string{}
	}
	return events.KinesisTimeWindowEventResponse{TimeWindowEventResponseProperties: events.TimeWindowEventResponseProperties{State: state}}
}

// TestDrainEndsTheBatchingWindow (issue 17): a batching window longer than
// the run delivers what it gathered when the drain begins (as Lambda
// invokes with what it has when its window ends), and the checkpoint
// moves past it: a scheduled run with a 10 s window in a 5 s function
// delivered nothing before.
func TestDrainEndsTheBatchingWindow(t *testing.T) {
	for _, factor := range []int{1, 3} {
		t.Run(fmt.Sprintf("parallelization-factor=%d", factor), func(t *testing.T) { drainEndsTheWindow(t, factor) })
	}
}

func drainEndsTheWindow(t *testing.T, factor int) {
	f := newFixture(t, 1)
	want := f.put(4, 10, 0, 0)
	c := &collector{}
	r := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.MaxBatchingWindow = 5 * time.Minute
		cfg.BatchSize = 1000
		cfg.ParallelizationFactor = factor
	})
	// The records are read (the lag is known) while the window waits.
	testwait.Until(t, 30*time.Second, "the records read, waiting for the window", func() bool {
		s := r.w.Snapshot()
		return len(s.Shards) == 1 && s.Shards[0].UserRecords == int64(len(want))
	})
	if n := c.count(); n != 0 {
		t.Fatalf("%d records delivered before the window or the drain", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if n := c.count(); n != len(want) {
		t.Fatalf("%d records delivered at the drain, want %d", n, len(want))
	}
	if l := f.leases()["shardId-000000000000"]; l.Checkpoint.Seq == stream.TrimHorizon || l.Owner != "" {
		t.Errorf("after the drain: checkpoint %s, owner %q; want past the records, released", l.Checkpoint, l.Owner)
	}
}

// TestEndedLeaseWithoutChildrenCleanedUp (issue 17): the lease of a shard
// that vanished (ended with no children) is deleted once the stream does
// not list it, as ended leases with children are once their children
// started; it used to stay for ever.
func TestEndedLeaseWithoutChildrenCleanedUp(t *testing.T) {
	f := newFixture(t, 1)
	gone := f.vanishedLease()
	c := &collector{}
	f.start(c.handle, func(cfg *coordinator.Config) { cfg.FailoverTime = 900 * time.Millisecond })
	testwait.Until(t, time.Minute, "the vanished shard's lease deleted", func() bool {
		_, ok := f.leases()[gone]
		return !ok
	})
	if _, ok := f.leases()["shardId-000000000000"]; !ok {
		t.Error("the real shard's lease is gone too")
	}
}
