package coordinator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// newFanOutFixture is newFixture with its Kinesis client behind a FanOut
// proxy (kinesis-mock's SubscribeToShard as AWS and the SDK have it).
func newFanOutFixture(t *testing.T, shards int) (*fixture, *standintest.FanOut) {
	t.Helper()
	kinesisEP, dynamoEP := needStandins(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	proxy := standintest.FanOutProxy(t, kinesisEP)
	cl, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1", KinesisEndpoint: proxy.URL, DynamoDBEndpoint: dynamoEP})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		t: t, stream: standintest.NewStream(t, kinesisEP, shards), app: standintest.UniqueName(t),
		kinesis: cl.Kinesis, dynamo: cl.DynamoDB,
	}, proxy
}

// TestFanOutRun (issue 18): a worker with a consumer name registers the
// consumer, reads every shard over SubscribeToShard (no GetRecords), and
// delivers 2,000 user records (KPL and plain) exactly once, in order, with
// each shard's mode "fan-out" and its subscriptions counted; the
// checkpoints end at each shard's last record.
func TestFanOutRun(t *testing.T) {
	f, proxy := newFanOutFixture(t, 2)
	want := f.put(40, 1500, 0, 25)
	want = append(want, f.put(40, 500, 1500, 0)...)
	c := &collector{}
	r := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.ConsumerName = f.app + "-efo"
		cfg.MetricsLevel = metrics.Detailed // the fetch stats are kept
	})
	testwait.Until(t, 90*time.Second, "2,000 records", func() bool { return c.count() >= len(want) })
	var modes []string
	var starts int64
	var getRecords int64
	for _, s := range r.w.Stats() {
		modes = append(modes, s.Mode)
		starts += s.Fetch.SubscriptionStarts
		getRecords += s.Fetch.GetRecords.Count
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := c.snapshot()
	if n := checkAtLeastOnce(t, recs, want); n != 0 {
		t.Errorf("%d records delivered twice in a clean run", n)
	}
	checkOrder(t, recs)
	for _, m := range modes {
		if m != fetch.ModeFanOut {
			t.Errorf("shard modes %q, want %q", modes, fetch.ModeFanOut)
			break
		}
	}
	if starts < 2 || getRecords != 0 || proxy.Subscriptions.Load() < 2 {
		t.Errorf("%d subscriptions started (%d through the proxy), %d GetRecords: want one per shard at least, and no GetRecords",
			starts, proxy.Subscriptions.Load(), getRecords)
	}
	out, err := f.kinesis.DescribeStreamConsumer(context.Background(), &kinesis.DescribeStreamConsumerInput{
		StreamARN: aws.String(streamARN(t, f)), ConsumerName: aws.String(f.app + "-efo")})
	if err != nil || out.ConsumerDescription.ConsumerStatus != "ACTIVE" {
		t.Errorf("the consumer: %v, %v; want it registered and ACTIVE", out, err)
	}
	last := map[string]stream.Position{}
	for _, g := range recs {
		if p, ok := last[g.shard]; !ok || g.pos.After(p) {
			last[g.shard] = g.pos
		}
	}
	for key, l := range f.leases() {
		if l.Reader != fetch.ModeFanOut {
			t.Errorf("shard %s's lease says its reader is %q, want %q (for status)", key, l.Reader, fetch.ModeFanOut)
		}
		if l.Checkpoint != last[key] {
			t.Errorf("shard %s checkpointed at %v, want its last record %v", key, l.Checkpoint, last[key])
		}
	}
}

// TestFanOutHandover (issue 18): two workers share the shards with
// subscriptions of their own; one drains and the other takes its shards
// over, subscribing from their checkpoints (meeting the old subscription's
// 5-second rule at most, and waiting it out): nothing lost, and the
// records after the handover come in order.
func TestFanOutHandover(t *testing.T) {
	f, _ := newFanOutFixture(t, 4)
	mod := func(cfg *coordinator.Config) {
		cfg.ConsumerName = f.app + "-efo"
		cfg.FailoverTime = 2 * time.Second
		cfg.ShardSyncInterval = time.Second
	}
	c := &collector{}
	a := f.start(c.handle, mod)
	b := f.start(c.handle, mod)
	want := f.put(40, 400, 0, 0)
	testwait.Until(t, 60*time.Second, "400 records", func() bool { return c.count() >= len(want) })
	testwait.Until(t, 30*time.Second, "both workers holding shards", func() bool {
		return len(a.w.Stats()) > 0 && len(b.w.Stats()) > 0
	})
	if err := a.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want = append(want, f.put(40, 400, 400, 0)...)
	testwait.Until(t, 90*time.Second, "800 records", func() bool { return len(distinctIDs(c.snapshot())) >= len(want) })
	if err := b.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkAtLeastOnce(t, c.snapshot(), want)
}

func streamARN(t *testing.T, f *fixture) string {
	t.Helper()
	out, err := f.kinesis.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(f.stream)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN)
}

// TestFanOutNoContinuationParks (issue 18): a subscription event with no
// continuation sequence number and no child shards parks the shard with
// that reason (status shows it), never ends it: the checkpoint stays at
// the last record handled, nothing is skipped.
func TestFanOutNoContinuationParks(t *testing.T) {
	f, proxy := newFanOutFixture(t, 1)
	want := f.put(5, 20, 0, 0)
	c := &collector{}
	r := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.ConsumerName = f.app + "-efo"
		cfg.ParkRetryWait = time.Hour
	})
	testwait.Until(t, 30*time.Second, "20 records", func() bool { return c.count() >= len(want) })
	proxy.NoContinuation.Store(true) // kinesis-mock's next event (a second on) breaks the rule
	testwait.Until(t, 60*time.Second, "the shard parked", func() bool {
		for _, l := range f.leases() {
			if l.Park != nil {
				return true
			}
		}
		return false
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for key, l := range f.leases() {
		if l.Park == nil || !strings.Contains(l.Park.Reason, "no continuation sequence number and no child shards") {
			t.Errorf("lease %s park %+v: want parked naming the missing continuation", key, l.Park)
		}
		if l.Checkpoint.IsSentinel() || l.Checkpoint.Seq == stream.ShardEnd {
			t.Errorf("lease %s checkpoint %v: want the last record handled, not an end", key, l.Checkpoint)
		}
	}
	checkAtLeastOnce(t, c.snapshot(), want)
}
