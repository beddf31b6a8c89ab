package shardline

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/testwait"
)

// collector is an in-process handler that keeps what it is given, and
// fails the records whose data is in poison (reported as batch item
// failures).
type collector struct {
	mu     sync.Mutex
	got    []string // data, in delivery order
	poison map[string]bool
}

func (c *collector) handle(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range ev.Records {
		if c.poison[string(r.Kinesis.Data)] {
			return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{ItemFailure(r)}}, nil
		}
		c.got = append(c.got, string(r.Kinesis.Data))
	}
	return events.KinesisEventResponse{}, nil
}

func (c *collector) data() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// replayMain runs the command line of a binary built on the public API
// with c's handler as its own (no -handler).
func replayMain(t *testing.T, c *collector, args []string, vars map[string]string) mainResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	start := time.Now()
	go func() { done <- New(WithName("poller"), Handle(c.handle)).Main(args, env(vars), &stdout, &stderr) }()
	select {
	case code := <-done:
		return mainResult{code, stdout.String(), stderr.String(), time.Since(start)}
	case <-time.After(60 * time.Second):
		t.Fatalf("replay %q did not return within 60s", args)
	}
	return mainResult{}
}

// putRound puts n records over keys, "round:key:i" with a counter per
// key, packed in KPL aggregates by key.
func putRound(t *testing.T, kc *kinesis.Client, streamName, round string, keys, n int) []string {
	t.Helper()
	prod, err := produce.New(context.Background(), kc, streamName, 10)
	if err != nil {
		t.Fatal(err)
	}
	prod.ByKey = true
	var recs []kpl.UserRecord
	var ids []string
	for i := range n {
		k := fmt.Sprintf("key-%d", i%keys)
		id := fmt.Sprintf("%s:%s:%03d", round, k, i/keys)
		recs = append(recs, kpl.UserRecord{PartitionKey: k, Data: []byte(id)})
		ids = append(ids, id)
	}
	if err := prod.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return ids
}

// apart lets a second and a bit pass, so that the rounds put before and
// after it are at least 1 s clear of the time it returns (the middle).
func apart() time.Time {
	time.Sleep(1100 * time.Millisecond) // arrival times apart: not synchronisation
	mid := time.Now()
	time.Sleep(1100 * time.Millisecond)
	return mid
}

// inOrderPerKey checks that each key's records came in the order put.
func inOrderPerKey(t *testing.T, got []string) {
	t.Helper()
	last := map[string]string{}
	for _, id := range got {
		parts := strings.SplitN(id, ":", 3)
		key := parts[1]
		if prev, ok := last[key]; ok && prev >= id {
			t.Errorf("key %s: %s after %s", key, id, prev)
		}
		last[key] = id
	}
}

// TestReplayTimeWindowAcrossSplit: a replay of a time window delivers
// exactly the records put in it, in order per key, across a split of the
// stream's shard in the middle of the window (parents before children),
// with the program's own handler, a batch size and pacing off.
func TestReplayTimeWindowAcrossSplit(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 1)
	kc := standintest.KinesisClient(srv.Endpoint)
	putRound(t, kc, name, "a", 5, 100)
	from := apart()
	want := putRound(t, kc, name, "b", 5, 200)
	list, err := shards.List(context.Background(), kc, name)
	if err != nil {
		t.Fatal(err)
	}
	lo, _ := new(big.Int).SetString(list[0].StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(list[0].EndingHashKey, 10)
	midKey := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := kc.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: &name, ShardToSplit: aws.String(list[0].ID), NewStartingHashKey: aws.String(midKey.String())}); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 30*time.Second, "stream ACTIVE after the split", func() bool {
		out, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: &name})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == ktypes.StreamStatusActive
	})
	want = append(want, putRound(t, kc, name, "c", 5, 200)...)
	until := apart()
	putRound(t, kc, name, "d", 5, 100)

	var c collector
	res := replayMain(t, &c, []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint,
		"-from", from.UTC().Format(time.RFC3339Nano), "-until", until.UTC().Format(time.RFC3339Nano), "-batch-size", "33", "-read-share", "0"}, nil)
	if res.code != 0 {
		t.Fatalf("replay: exit %d\n%s", res.code, res.stderr)
	}
	got := c.data()
	sortedGot, sortedWant := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(sortedGot, sortedWant) {
		t.Errorf("replay delivered %d records, want exactly the %d put in the window (rounds b and c)", len(got), len(want))
	}
	inOrderPerKey(t, got)
	if !strings.Contains(res.stderr, "replay done") || !strings.Contains(res.stderr, "handled=400") || !strings.Contains(res.stderr, "shards=3") {
		t.Errorf("no summary with handled=400 and shards=3:\n%s", res.stderr)
	}
}

// TestReplayGiveUp: a record the handler keeps failing, with no
// -on-failure, ends the replay with exit 1 naming the record and the
// -from to resume with; that -from resumes at it; with -on-failure it is
// sent there and the replay goes on to the end.
func TestReplayGiveUp(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 1)
	kc := standintest.KinesisClient(srv.Endpoint)
	ids := putRound(t, kc, name, "a", 3, 60)
	poison := ids[31]
	base := []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint, "-from", "TRIM_HORIZON", "-read-share", "0", "-max-retry-attempts", "1", "-batch-size", "10"}

	c := collector{poison: map[string]bool{poison: true}}
	res := replayMain(t, &c, base, nil)
	if res.code != 1 {
		t.Fatalf("replay with a poison record and no -on-failure: exit %d, want 1\n%s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
	last := lines[len(lines)-1]
	i := strings.Index(last, "-from ")
	if !strings.Contains(last, "gave up on records") || !strings.Contains(last, "resume with -shard shardId-000000000000 -from ") || i < 0 {
		t.Fatalf("last line %q does not name the records and the -from to resume with", last)
	}
	resume := strings.Fields(last[i+len("-from "):])[0]
	resume = strings.TrimSuffix(resume, ":")
	if slices.Contains(c.data(), poison) {
		t.Errorf("the poison record was handled")
	}
	// Every record before the poison one of its key was handled; none
	// after the poison record's batch.
	if n := len(c.data()); n < 1 || n > 31+10 {
		t.Errorf("%d records handled before the give-up", n)
	}

	// Resuming at the -from given, healed: the poison record first.
	var healed collector
	res = replayMain(t, &healed, []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint, "-shard", "shardId-000000000000", "-from", resume, "-read-share", "0"}, nil)
	if res.code != 0 {
		t.Fatalf("resume -from %s: exit %d\n%s", resume, res.code, res.stderr)
	}
	if got := healed.data(); len(got) == 0 || got[0] != poison {
		t.Errorf("resume -from %s starts at %v, want the poison record %s", resume, got[:min(3, len(got))], poison)
	}

	// With -on-failure the record goes there and the rest is delivered.
	dest := filepath.Join(t.TempDir(), "failed.jsonl")
	c = collector{poison: map[string]bool{poison: true}}
	res = replayMain(t, &c, append(slices.Clone(base), "-on-failure", "file://"+dest, "-batch-size", "1"), nil)
	if res.code != 0 {
		t.Fatalf("replay with -on-failure: exit %d\n%s", res.code, res.stderr)
	}
	if got := len(c.data()); got != len(ids)-1 {
		t.Errorf("with -on-failure: %d records handled, want %d", got, len(ids)-1)
	}
	b, err := os.ReadFile(dest)
	if err != nil || strings.Count(string(b), "\n") != 1 {
		t.Errorf("the destination file holds %q (%v), want the given-up record", b, err)
	}
	if !strings.Contains(res.stderr, "givenUp=1") {
		t.Errorf("summary without givenUp=1:\n%s", res.stderr)
	}
}

// TestReplayBadSettings: each bad setting is one line naming it, exit 2;
// a stream that does not exist is one line, exit 1.
func TestReplayBadSettings(t *testing.T) {
	awsEnv(t)
	srv := standintest.Kinesis(t)
	name := standintest.NewStream(t, srv.Endpoint, 2)
	kc := standintest.KinesisClient(srv.Endpoint)
	putRound(t, kc, name, "a", 4, 8)
	out, err := kc.GetShardIterator(context.Background(), &kinesis.GetShardIteratorInput{StreamName: &name, ShardId: aws.String("shardId-000000000000"), ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := kc.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: out.ShardIterator})
	if err != nil || len(recs.Records) == 0 {
		t.Fatalf("no record in shard 0: %v", err)
	}
	seq0 := aws.ToString(recs.Records[0].SequenceNumber)
	now := time.Now().UTC()
	base := []string{"replay", "-stream-name", name, "-kinesis-endpoint", srv.Endpoint}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no -from", nil, 2, "-from (SHARDLINE_FROM) is required"},
		{"from after until", []string{"-from", now.Add(-time.Minute).Format(time.RFC3339), "-until", now.Add(-2 * time.Minute).Format(time.RFC3339)}, 2, "is not before -until"},
		{"time in the future", []string{"-from", now.Add(time.Hour).Format(time.RFC3339)}, 2, "-from \"" + now.Add(time.Hour).Format(time.RFC3339) + "\" is in the future"},
		{"not a time", []string{"-from", "yesterday"}, 2, "-from \"yesterday\": allowed"},
		{"sequence number without -shard", []string{"-from", seq0}, 2, "needs exactly one -shard"},
		{"sequence number of another shard", []string{"-from", seq0, "-shard", "shardId-000000000001"}, 2, "-from " + seq0 + ": sequence number " + seq0 + " is not in shard shardId-000000000001"},
		{"no such shard", []string{"-from", "TRIM_HORIZON", "-shard", "shardId-000000000009"}, 2, "-shard shardId-000000000009: not a shard of stream"},
		{"from LATEST", []string{"-from", "LATEST"}, 2, "-from LATEST"},
		{"until TRIM_HORIZON", []string{"-from", "TRIM_HORIZON", "-until", "TRIM_HORIZON"}, 2, "-until TRIM_HORIZON"},
		{"read share", []string{"-from", "TRIM_HORIZON", "-read-share", "2"}, 2, "-read-share 2: allowed 0"},
		{"rate", []string{"-from", "TRIM_HORIZON", "-rate", "-1"}, 2, "-rate -1: allowed"},
		{"batch size as run checks it", []string{"-from", "TRIM_HORIZON", "-batch-size", "0"}, 2, "-batch-size 0: allowed 1–10000"},
		{"on-failure form", []string{"-from", "TRIM_HORIZON", "-on-failure", "ftp://x"}, 2, "-on-failure"},
		{"no such stream", []string{"-from", "TRIM_HORIZON", "-stream-name", "nope-" + name}, 1, "stream nope-" + name},
	}
	for _, tt := range tests {
		var c collector
		res := replayMain(t, &c, append(slices.Clone(base), tt.args...), nil)
		if res.code != tt.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tt.name, res.code, tt.code, res.stderr)
			continue
		}
		line := oneLine(t, tt.name, res.stderr)
		if !strings.Contains(line, tt.want) {
			t.Errorf("%s: %q, want it to contain %q", tt.name, line, tt.want)
		}
		if len(c.data()) != 0 {
			t.Errorf("%s: %d records handled", tt.name, len(c.data()))
		}
	}
}

// TestReplayLeavesTheApplicationAlone: a replay while the application's
// pollers run delivers its range, and the pollers lose nothing of what is
// put meanwhile; a replay given the application's name and DynamoDB
// endpoint changes nothing in its lease table, item for item.
func TestReplayLeavesTheApplicationAlone(t *testing.T) {
	awsEnv(t)
	ks, ds := standintest.Both(t)
	name := standintest.NewStream(t, ks.Endpoint, 2)
	kc := standintest.KinesisClient(ks.Endpoint)
	app := standintest.UniqueName(t)
	a := putRound(t, kc, name, "a", 6, 120)
	until := apart()

	var poller collector
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		var out bytes.Buffer
		ran <- New(WithName("poller"), Handle(poller.handle)).Run(ctx, []string{"run", "-app-name", app, "-stream-name", name,
			"-kinesis-endpoint", ks.Endpoint, "-dynamodb-endpoint", ds.Endpoint, "-initial-position", "TRIM_HORIZON",
			"-checkpoint-interval", "200ms", "-failover-time", "3s", "-quiet"}, env(nil), &out, &out)
	}()
	var replayed collector
	replayDone := make(chan mainResult, 1)
	go func() {
		replayDone <- replayMain(t, &replayed, []string{"replay", "-stream-name", name, "-kinesis-endpoint", ks.Endpoint,
			"-from", "TRIM_HORIZON", "-until", until.UTC().Format(time.RFC3339Nano), "-batch-size", "25"}, nil)
	}()
	b := putRound(t, kc, name, "b", 6, 120)
	res := <-replayDone
	if res.code != 0 {
		t.Fatalf("replay beside the pollers: exit %d\n%s", res.code, res.stderr)
	}
	if got := slices.Sorted(slices.Values(replayed.data())); !slices.Equal(got, slices.Sorted(slices.Values(a))) {
		t.Errorf("replay beside the pollers delivered %d records, want exactly the %d before -until", len(got), len(a))
	}
	all := append(slices.Clone(a), b...)
	testwait.Until(t, 30*time.Second, "the pollers handle every record", func() bool { return len(poller.data()) >= len(all) })
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
	seen := map[string]bool{}
	for _, id := range poller.data() {
		seen[id] = true
	}
	for _, id := range all {
		if !seen[id] {
			t.Errorf("the pollers lost %s", id)
		}
	}

	dc := standintest.DynamoDBClient(ds.Endpoint)
	scan := func() []map[string]dtypes.AttributeValue {
		out, err := dc.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(app), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		key := func(m map[string]dtypes.AttributeValue) string {
			if s, ok := m["leaseKey"].(*dtypes.AttributeValueMemberS); ok {
				return s.Value
			}
			return ""
		}
		slices.SortFunc(out.Items, func(x, y map[string]dtypes.AttributeValue) int { return strings.Compare(key(x), key(y)) })
		return out.Items
	}
	before := scan()
	if len(before) != 2 {
		t.Fatalf("lease table holds %d items, want 2", len(before))
	}
	var again collector
	res = replayMain(t, &again, []string{"replay", "-stream-name", name, "-kinesis-endpoint", ks.Endpoint, "-from", "TRIM_HORIZON", "-read-share", "0"},
		map[string]string{"SHARDLINE_APP_NAME": app, "SHARDLINE_DYNAMODB_ENDPOINT": ds.Endpoint})
	if res.code != 0 || len(again.data()) != len(all) {
		t.Fatalf("replay of everything: exit %d, %d records (want %d)\n%s", res.code, len(again.data()), len(all), res.stderr)
	}
	if after := scan(); !reflect.DeepEqual(before, after) {
		t.Errorf("the lease table changed under a replay:\nbefore %v\nafter  %v", before, after)
	}
}
