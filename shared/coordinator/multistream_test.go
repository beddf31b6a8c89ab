package coordinator_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/lease/leasetest"
	"github.com/shardline/shardline/shared/testwait"
)

// arnCollector remembers each record delivered by its stream's ARN.
type arnCollector struct {
	mu   sync.Mutex
	seen map[string]int // eventSourceARN + " " + data -> deliveries
	n    int
}

func (c *arnCollector) handle(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]int{}
	}
	for _, r := range ev.Records {
		c.seen[r.EventSourceArn+" "+string(r.Kinesis.Data)]++
		c.n++
	}
	return events.KinesisEventResponse{}, nil
}

func (c *arnCollector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestMultiStream (issue 19): one application reads three streams (KCL's
// multi-stream mode): leases keyed account:stream:creationEpoch:shardId
// with streamName and shardId; every record once, with its own stream's
// eventSourceARN; the shards of all streams spread over the workers. A
// stream taken out of the list has its lease left alone (no owner, logged
// once) for -former-stream-lease-retention, then deleted.
func TestMultiStream(t *testing.T) {
	f1, f2, f3 := newFixture(t, 2), newFixture(t, 2), newFixture(t, 1)
	arn := func(f *fixture) string {
		out, err := f.kinesis.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(f.stream)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.StreamDescriptionSummary.StreamARN)
	}
	want := map[string]bool{}
	for _, f := range []*fixture{f1, f2, f3} {
		a := arn(f)
		for _, id := range f.put(10, 60, 0, 0) {
			want[a+" "+id] = true
		}
	}
	c := &arnCollector{}
	list := f1.stream + "," + f2.stream + "," + f3.stream
	cfg := func(id, streams string, logs *testwait.Buffer) func(*coordinator.Config) {
		return func(cfg *coordinator.Config) {
			cfg.WorkerID, cfg.StreamName, cfg.FailoverTime, cfg.FormerStreamRetention = id, streams, 1500*time.Millisecond, 4*time.Second
			if logs != nil {
				logTo(logs)(cfg)
			}
		}
	}
	a := f1.start(c.handle, cfg("a", list, nil))
	b := f1.start(c.handle, cfg("b", list, nil))
	testwait.Until(t, time.Minute, fmt.Sprintf("%d records", len(want)), func() bool { return c.count() >= len(want) })
	testwait.Until(t, 30*time.Second, "5 shards of 3 streams spread 3 + 2", func() bool {
		n := counts(a, b)
		return n[0]+n[1] == 5 && n[0] >= 2 && n[1] >= 2
	})
	c.mu.Lock()
	for k, n := range c.seen {
		if !want[k] {
			t.Errorf("delivered %q, not put (or with another stream's ARN)", k)
		}
		if n > 1 {
			t.Errorf("delivered %q %d times", k, n)
		}
	}
	for k := range want {
		if c.seen[k] == 0 {
			t.Errorf("%q never delivered", k)
		}
	}
	c.mu.Unlock()

	table := lease.NewTable(f1.dynamo, f1.app).WithMultiStream()
	ls, err := table.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 5 {
		t.Fatalf("%d multi-stream leases, want 5", len(ls))
	}
	var f3Lease lease.Lease
	for _, l := range ls {
		parts := strings.Split(l.Key, ":")
		if len(parts) != 4 || l.StreamID != strings.Join(parts[:3], ":") || l.ShardID != parts[3] || !strings.HasPrefix(l.ShardID, "shardId-") {
			t.Errorf("lease key %q streamName %q shardId %q: want account:stream:creationEpoch:shardId with both attributes", l.Key, l.StreamID, l.ShardID)
		}
		if parts[1] == f3.stream {
			f3Lease = l
		}
	}
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}

	// The third stream out of the list: its lease is left alone, then
	// deleted after the retention.
	var logs testwait.Buffer
	began := time.Now()
	r := f1.start(c.handle, cfg("c", f1.stream+","+f2.stream, &logs))
	testwait.Until(t, 30*time.Second, "c holds the 4 shards of the two streams", func() bool { return len(r.w.Held()) == 4 })
	if l, ok, err := table.Get(context.Background(), f3Lease.Key); err != nil || !ok || l.Owner != "" {
		t.Fatalf("former stream's lease %s = %+v, %v, %v: want it left alone (no owner) during the retention", f3Lease.Key, l, ok, err)
	}
	testwait.Until(t, 30*time.Second, "the former stream's lease deleted", func() bool {
		_, ok, err := table.Get(context.Background(), f3Lease.Key)
		return err == nil && !ok
	})
	if d := time.Since(began); d < 4*time.Second {
		t.Errorf("former stream's lease deleted after %s, before the retention (4s)", d)
	}
	if n := lines(&logs, "leases of a stream not in -stream-name", f3.stream); n != 1 {
		t.Errorf("the former stream logged %d times, want once:\n%s", n, logs.String())
	}
}

// TestMultiStreamRefusesASingleStreamTable: a list of streams given an
// application whose table holds single-stream leases is refused at
// start, naming the way out.
func TestMultiStreamRefusesASingleStreamTable(t *testing.T) {
	f1, f2 := newFixture(t, 1), newFixture(t, 1)
	c := &collector{}
	r := f1.start(c.handle, nil)
	testwait.Until(t, 30*time.Second, "a single-stream lease", func() bool { return len(f1.leases()) == 1 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	w, err := coordinator.New(coordinator.Config{
		AppName: f1.app, StreamName: f1.stream + "," + f2.stream, Handler: c.handle,
		Kinesis: f1.kinesis, DynamoDB: f1.dynamo, MaxRetryAttempts: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "single-stream leases") || !strings.Contains(err.Error(), "-app-name") {
		t.Fatalf("Check = %v, want a refusal naming the single-stream leases and a new -app-name", err)
	}
}

// TestStreamNames: the list's bad forms are refused naming the value.
func TestStreamNames(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"a,,b", "an empty name"},
		{"a,b,a", "a is named twice"},
		{strings.Repeat("s,", 50) + "x", "named twice"},
	} {
		if _, err := coordinator.StreamNames(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("StreamNames(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
	var many []string
	for i := range 51 {
		many = append(many, fmt.Sprintf("s%d", i))
	}
	if _, err := coordinator.StreamNames(strings.Join(many, ",")); err == nil || !strings.Contains(err.Error(), "at most 50") {
		t.Errorf("51 streams: %v, want refused (at most 50)", err)
	}
	if names, err := coordinator.StreamNames("orders,"); err != nil || len(names) != 1 || !coordinator.MultiStream("orders,") || coordinator.MultiStream("orders") {
		t.Errorf(`"orders," = %v, %v: want one stream in multi-stream mode`, names, err)
	}
}

// TestContinuesKCLMultiStreamTable (issue 19): a table written by a KCL
// multi-stream application (leases keyed account:stream:creationEpoch:
// shardId, with streamName and shardId, checkpointed mid-shard, owned by a
// dead KCL worker) is continued by Shardline given the same streams: each
// shard resumes after its checkpoint, nothing before it is delivered
// again, nothing after it is lost; and Shardline's leases keep KCL's keys
// and attributes, so KCL could continue them in turn.
func TestContinuesKCLMultiStreamTable(t *testing.T) {
	f1, f2 := newFixture(t, 1), newFixture(t, 1)
	kclCreateLeaseTable(t, f1.dynamo, f1.app)
	var want []string
	var items []map[string]dtypes.AttributeValue
	ids := map[string]string{}
	for _, f := range []*fixture{f1, f2} {
		ids[f.stream] = mustStreamID(t, f)
		put := f.put(5, 40, 0, 0)
		sh := kclListShards(t, f)[0]
		recs, _ := kclReadShard(t, f, sh)
		if len(recs) != 40 {
			t.Fatalf("stream %s: read %d records, want 40", f.stream, len(recs))
		}
		// KCL checkpointed the 15th record; the 25 after it are to come.
		for _, r := range recs[15:] {
			want = append(want, f.stream+" "+string(r.Data))
		}
		_ = put
		items = append(items, leasetest.KCLLease{
			Key: ids[f.stream] + ":" + sh.ID, StreamName: ids[f.stream], ShardID: sh.ID,
			Owner: kclDeadWorker, Counter: 42, Checkpoint: recs[14].SequenceNumber,
			StartingHashKey: sh.StartingHashKey, EndingHashKey: sh.EndingHashKey,
		}.Item())
	}
	kclPutItems(t, f1, items)
	c := &arnCollector{}
	f1.start(c.handle, func(cfg *coordinator.Config) {
		cfg.StreamName, cfg.FailoverTime = f1.stream+","+f2.stream, 1500*time.Millisecond
	})
	testwait.Until(t, time.Minute, fmt.Sprintf("%d records", len(want)), func() bool { return c.count() >= len(want) })
	c.mu.Lock()
	got := map[string]int{}
	for k, n := range c.seen {
		arn, data, _ := strings.Cut(k, " ")
		name := arn[strings.LastIndex(arn, "/")+1:]
		got[name+" "+data] += n
	}
	c.mu.Unlock()
	for _, k := range want {
		if got[k] != 1 {
			t.Errorf("%s delivered %d times, want once", k, got[k])
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("%s delivered, at or before KCL's checkpoint", k)
	}
	ls, err := lease.NewTable(f1.dynamo, f1.app).WithMultiStream().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("%d leases, want KCL's 2 continued (no new keys)", len(ls))
	}
	for _, l := range ls {
		if l.Key != ids[strings.Split(l.StreamID, ":")[1]]+":"+l.ShardID || l.Owner == kclDeadWorker {
			t.Errorf("lease %+v: want KCL's key kept and taken over", l)
		}
	}
}

func mustStreamID(t *testing.T, f *fixture) string {
	t.Helper()
	id, err := coordinator.StreamID(context.Background(), f.kinesis, f.stream)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
