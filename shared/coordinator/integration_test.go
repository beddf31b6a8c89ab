package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

// fixture is one test's stream, lease table and clients.
type fixture struct {
	t       *testing.T
	stream  string
	app     string
	kinesis *kinesis.Client
	dynamo  *dynamodb.Client
}

func newFixture(t *testing.T, shards int) *fixture {
	t.Helper()
	kinesisEP, dynamoEP := needStandins(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	cl, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1", KinesisEndpoint: kinesisEP, DynamoDBEndpoint: dynamoEP})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		t: t, stream: standintest.NewStream(t, kinesisEP, shards), app: standintest.UniqueName(t),
		kinesis: cl.Kinesis, dynamo: cl.DynamoDB,
	}
}

// put sends n user records "key:counter" over keys partition keys,
// aggregated per aggregate (0: plain), numbering from start.
func (f *fixture) put(keys, n, start, aggregate int) []string {
	f.t.Helper()
	p, err := produce.New(context.Background(), f.kinesis, f.stream, aggregate)
	if err != nil {
		f.t.Fatal(err)
	}
	var recs []kpl.UserRecord
	var ids []string
	for i := start; i < start+n; i++ {
		key := fmt.Sprintf("key-%d", i%keys)
		id := fmt.Sprintf("%s:%d", key, i/keys)
		recs = append(recs, kpl.UserRecord{PartitionKey: key, Data: []byte(id)})
		ids = append(ids, id)
	}
	for len(recs) > 0 {
		k := min(len(recs), 5000)
		if err := p.Put(context.Background(), recs[:k]); err != nil {
			f.t.Fatalf("put: %v", err)
		}
		recs = recs[k:]
	}
	return ids
}

// got is one delivered record.
type got struct {
	shard string
	pos   stream.Position
	id    string
	agg   bool
}

// collector is a handler that remembers every record, and can be told to
// fail items.
type collector struct {
	mu      sync.Mutex
	records []got
	calls   int
	// fail, if set, is asked for each batch; it returns the indexes to
	// report in batchItemFailures (or an error).
	fail func(call int, ev events.KinesisEvent) ([]int, error)
}

func (c *collector) handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	var failed []int
	if c.fail != nil {
		var err error
		failed, err = c.fail(c.calls, ev)
		if err != nil {
			return events.KinesisEventResponse{}, err
		}
	}
	lowest := len(ev.Records)
	if len(failed) > 0 {
		lowest = slices.Min(failed)
	}
	for i, r := range ev.Records[:lowest] {
		_ = i
		shard, pos, agg, err := stream.ParseEventID(r.EventID)
		if err != nil {
			return events.KinesisEventResponse{}, err
		}
		c.records = append(c.records, got{shard: shard, pos: pos, id: string(r.Kinesis.Data), agg: agg})
	}
	var resp events.KinesisEventResponse
	for _, i := range failed {
		id := ev.Records[i].Kinesis.SequenceNumber
		if _, pos, agg, _ := stream.ParseEventID(ev.Records[i].EventID); agg {
			id = fmt.Sprintf("%s:%d", pos.Seq, pos.SubSeq)
		}
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: id})
	}
	return resp, nil
}

func (c *collector) snapshot() []got {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.records)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}

// running is a worker running in the background.
type running struct {
	w      *coordinator.Worker
	cancel context.CancelFunc
	done   chan error
}

func (f *fixture) start(h stream.Handler, mod func(*coordinator.Config)) *running {
	f.t.Helper()
	cfg := coordinator.Config{
		AppName: f.app, StreamName: f.stream, InitialPosition: stream.TrimHorizon,
		CheckpointInterval: 200 * time.Millisecond, FailoverTime: 3 * time.Second,
		Handler: h, MaxRetryAttempts: -1, Region: "us-east-1",
		Kinesis: f.kinesis, DynamoDB: f.dynamo, Logger: testLogger(f.t),
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := coordinator.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	f.t.Cleanup(func() { r.stop(f.t) })
	return r
}

// stop drains the worker and waits for Run to return.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("worker did not stop within 60s")
	}
	return nil
}

// returned waits up to limit for Run to return (by itself, or after a
// cancel made by the caller) and returns its error; failing that, it
// fails the test saying what did not happen.
func (r *running) returned(t *testing.T, limit time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-r.done:
		close(r.done)
		return err
	case <-time.After(limit):
		t.Fatal(what)
	}
	return nil
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("SHARDLINE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// leases reads the lease table (empty before the worker created it).
func (f *fixture) leases() map[string]lease.Lease {
	f.t.Helper()
	ls, err := lease.NewTable(f.dynamo, f.app).List(context.Background())
	var nf *dtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return map[string]lease.Lease{}
	}
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]lease.Lease{}
	for _, l := range ls {
		m[l.Key] = l
	}
	return m
}

// checkOrder asserts that within each shard positions strictly increase and
// within each key counters increase.
func checkOrder(t *testing.T, recs []got) {
	t.Helper()
	last := map[string]stream.Position{}
	for _, r := range recs {
		if p, ok := last[r.shard]; ok && !r.pos.After(p) {
			t.Fatalf("shard %s: %s delivered after %s", r.shard, r.pos, p)
		}
		last[r.shard] = r.pos
	}
	lastN := map[string]int{}
	for _, r := range recs {
		key, n := splitID(t, r.id)
		if p, ok := lastN[key]; ok && n <= p {
			t.Fatalf("key %s: counter %d delivered after %d", key, n, p)
		}
		lastN[key] = n
	}
}

func splitID(t *testing.T, id string) (string, int) {
	t.Helper()
	i := strings.LastIndexByte(id, ':')
	var n int
	if i < 0 {
		t.Fatalf("record %q is not key:counter", id)
	}
	if _, err := fmt.Sscan(id[i+1:], &n); err != nil {
		t.Fatalf("record %q: %v", id, err)
	}
	return id[:i], n
}

// TestCleanRunExactlyOnce: 20,000 user records over 4 shards, mostly in KPL
// aggregates, each delivered once, in order per shard and per key.
func TestCleanRunExactlyOnce(t *testing.T) {
	f := newFixture(t, 4)
	want := f.put(200, 19000, 0, 100) // aggregated
	want = append(want, f.put(200, 1000, 19000, 0)...)
	c := &collector{}
	r := f.start(c.handle, nil)
	testwait.Until(t, 2*time.Minute, "20,000 records", func() bool { return c.count() >= len(want) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := c.snapshot()
	seen := map[string]int{}
	shardsSeen := map[string]bool{}
	aggregated := 0
	for _, g := range recs {
		seen[g.id]++
		shardsSeen[g.shard] = true
		if g.agg {
			aggregated++
		}
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Fatalf("record %s delivered %d times, want 1", id, seen[id])
		}
	}
	if got, wantN := len(recs), len(want); got != wantN {
		t.Fatalf("delivered %d records, want %d", got, wantN)
	}
	if len(shardsSeen) != 4 {
		t.Fatalf("records came from %d shards, want 4", len(shardsSeen))
	}
	if aggregated != 19000 {
		t.Fatalf("%d records came out of aggregates, want 19000", aggregated)
	}
	checkOrder(t, recs)
	// The final checkpoints name each shard's last record and no one owns
	// the leases after the drain.
	lastPos := map[string]stream.Position{}
	for _, g := range recs {
		lastPos[g.shard] = g.pos
	}
	for shard, l := range f.leases() {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %s after the drain", shard, l.Owner)
		}
		if l.Checkpoint != lastPos[shard] {
			t.Errorf("lease %s checkpoint %s, want the last record delivered %s", shard, l.Checkpoint, lastPos[shard])
		}
	}
}
