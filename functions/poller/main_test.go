package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

var bootstrap string // the function, built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "poller-fn")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	bootstrap, err = lambdaemu.Build(context.Background(), dir, ".")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	standintest.Main(m)
}

// env is a stream with records, and the scheduled poller function hosted
// on the Lambda Runtime API with the function's deadline.
type env struct {
	stream, app string
	emu         *lambdaemu.Server
	out         *testwait.Buffer // the function's stdout: print handler lines and Lambda's log lines
	ddbEP       string
	kinesisEP   string
	put         func(n, from int)
}

func newEnv(t *testing.T, shards int, timeout time.Duration, extra ...string) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the stand-ins (run without -short)")
	}
	kin, _ := standintest.Both(t)
	return newEnvOn(t, standintest.NewStream(t, kin.Endpoint, shards), timeout, extra...)
}

// newEnvOn is newEnv on a stream that exists.
func newEnvOn(t *testing.T, stream string, timeout time.Duration, extra ...string) *env {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the stand-ins (run without -short)")
	}
	kin, ddb := standintest.Both(t)
	e := &env{stream: stream, app: standintest.UniqueName(t), out: &testwait.Buffer{}, ddbEP: ddb.Endpoint, kinesisEP: kin.Endpoint}
	vars := append([]string{
		"SHARDLINE_STREAM_NAME=" + e.stream, "SHARDLINE_APP_NAME=" + e.app, "SHARDLINE_HANDLER=print",
		"SHARDLINE_KINESIS_ENDPOINT=" + kin.Endpoint, "SHARDLINE_DYNAMODB_ENDPOINT=" + ddb.Endpoint,
		"SHARDLINE_INITIAL_POSITION=TRIM_HORIZON", "SHARDLINE_DEADLINE_MARGIN=1500ms", "SHARDLINE_FAILOVER_TIME=3s", "SHARDLINE_CHECKPOINT_INTERVAL=500ms",
	}, extra...)
	var err error
	e.emu, err = lambdaemu.Start(context.Background(), lambdaemu.Function{Name: "poller", Path: bootstrap, Env: vars, Timeout: timeout, Stdout: e.out, Stderr: e.out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.emu.Close() })
	prod, err := produce.New(context.Background(), standintest.KinesisClient(kin.Endpoint), e.stream, 10)
	if err != nil {
		t.Fatal(err)
	}
	e.put = func(n, from int) {
		var recs []kpl.UserRecord
		for i := from; i < from+n; i++ {
			recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint("k", i%50), Data: []byte(fmt.Sprint("r", i))})
		}
		if err := prod.Put(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// invoke runs the function with events/schedule.json and returns its summary.
func (e *env) invoke(t *testing.T) coordinator.Summary {
	t.Helper()
	ev, err := os.ReadFile("../../events/schedule.json")
	if err != nil {
		t.Fatal(err)
	}
	out, err := lambdaemu.Client(e.emu.Endpoint).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("poller"), Payload: ev})
	if err != nil {
		t.Fatal(err)
	}
	if out.FunctionError != nil {
		t.Fatalf("function error %s: %s\nlog:\n%s", *out.FunctionError, out.Payload, tail(e.out.String()))
	}
	var s coordinator.Summary
	if err := json.Unmarshal(out.Payload, &s); err != nil {
		t.Fatalf("summary %s: %v", out.Payload, err)
	}
	return s
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// printed counts the print handler's lines per record in the function's output.
func (e *env) printed() map[string]int {
	seen := map[string]int{}
	for _, line := range strings.Split(e.out.String(), "\n") {
		var p struct {
			Data     string `json:"data"`
			Sequence string `json:"sequenceNumber"`
		}
		if json.Unmarshal([]byte(line), &p) == nil && p.Sequence != "" {
			seen[p.Data]++
		}
	}
	return seen
}

func (e *env) leases(t *testing.T) []lease.Lease {
	t.Helper()
	ls, err := lease.NewTable(standintest.DynamoDBClient(e.ddbEP), e.app).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// TestScheduledInvocations: the function, invoked with the scheduled event,
// reads and checkpoints every record, returns its summary before the
// deadline and releases its leases; the next invocation takes them at once
// and goes on from the checkpoints. The gap between one invocation's last
// read and the next one's first is measured.
func TestScheduledInvocations(t *testing.T) {
	const timeout = 5 * time.Second
	e := newEnv(t, 2, timeout)
	e.put(300, 0)
	s1 := e.invoke(t)
	if s1.StoppedBecause != "deadline" || s1.Records != 300 || len(s1.Shards) != 2 {
		t.Fatalf("first summary %+v: want 300 records from 2 shards, stopped at the deadline", s1)
	}
	inv := e.emu.Invocations("poller")[0]
	if left := inv.Deadline.Sub(inv.End); inv.Status != lambdaemu.StatusSuccess || left <= 0 {
		t.Fatalf("invocation %s, %s before its deadline: want success before the deadline", inv.Status, left)
	} else {
		t.Logf("returned %s before its deadline (margin 1.5s)", left.Round(time.Millisecond))
	}
	for _, l := range e.leases(t) {
		if l.Owner != "" || l.Checkpoint.IsSentinel() {
			t.Errorf("after the invocation lease %s: owner %q checkpoint %s; want released at a record", l.Key, l.Owner, l.Checkpoint)
		}
	}
	e.put(200, 300)
	s2 := e.invoke(t)
	if s2.Records != 200 {
		t.Fatalf("second summary %+v: want the 200 new records only", s2)
	}
	for id, n := range e.printed() {
		if n != 1 {
			t.Errorf("record %s printed %d times, want once", id, n)
		}
	}
	if got := len(e.printed()); got != 500 {
		t.Fatalf("%d records printed, want 500", got)
	}
	invs := e.emu.Invocations("poller")
	gap := s2.FirstRead.Sub(s1.LastRead)
	t.Logf("invocation 1: %s, %d records; invocation 2 started %s after it ended; gap between last and first read: %s (start-up to first read %s)",
		invs[0].End.Sub(invs[0].Start).Round(time.Millisecond), s1.Records, invs[1].Start.Sub(invs[0].End).Round(time.Millisecond),
		gap.Round(time.Millisecond), s2.FirstRead.Sub(invs[1].Start).Round(time.Millisecond))
	if start := s2.FirstRead.Sub(invs[1].Start); start > 2*time.Second {
		t.Fatalf("second invocation's first read came %s after its start: the released leases were not taken at once", start)
	}
}

// TestConcurrentInvocationsSplitShards: two invocations at once share a
// 4-shard stream through the leases, and together read every record.
func TestConcurrentInvocationsSplitShards(t *testing.T) {
	e := newEnv(t, 4, 8*time.Second)
	e.put(400, 0)
	var wg sync.WaitGroup
	sums := make([]coordinator.Summary, 2)
	for i := range sums {
		wg.Go(func() { sums[i] = e.invoke(t) })
	}
	wg.Wait()
	// By the end they hold 2 shards each (which one read a shard first
	// depends on who started first: one may read all before the other
	// steals its share).
	held := map[string]int{}
	for i, s := range sums {
		if len(s.HeldAtStop) != 2 {
			t.Errorf("invocation %d held %v when it stopped: want 2 of the 4 shards", i, s.HeldAtStop)
		}
		for _, sh := range s.HeldAtStop {
			held[sh]++
		}
		t.Logf("invocation %d (%s) read %v (%d records), held %v at the end", i, s.WorkerID, s.Shards, s.Records, s.HeldAtStop)
	}
	if len(held) != 4 {
		t.Fatalf("together they held %d distinct shards at the end, want 4: %v", len(held), held)
	}
	if got := len(e.printed()); got != 400 {
		t.Fatalf("%d distinct records printed, want 400", got)
	}
}

// TestCrashedInvocation: an invocation killed mid-run leaves its leases
// owned; the next invocation takes them after SHARDLINE_FAILOVER_TIME and goes on
// from the checkpoints: nothing is lost.
func TestCrashedInvocation(t *testing.T) {
	e := newEnv(t, 1, 8*time.Second)
	e.put(100, 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = lambdaemu.Client(e.emu.Endpoint).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("poller"), Payload: []byte(`{"shardline":"poll"}`)})
	}()
	// Kill the function's process once it holds the lease and has read.
	testwait.Until(t, 30*time.Second, "the first invocation to read", func() bool { return len(e.printed()) >= 100 })
	testwait.Until(t, 10*time.Second, "the lease to be owned", func() bool {
		ls := e.leases(t)
		return len(ls) == 1 && ls[0].Owner != ""
	})
	for _, p := range e.emu.Processes("poller") {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	<-done
	e.put(50, 100)
	start := time.Now()
	s := e.invoke(t)
	if s.Records < 50 {
		t.Fatalf("summary %+v: want at least the 50 new records", s)
	}
	if wait := s.FirstRead.Sub(start); wait < 3*time.Second {
		t.Fatalf("the crashed invocation's lease was read again after %s, before SHARDLINE_FAILOVER_TIME (3s)", wait)
	} else {
		t.Logf("crashed invocation's lease taken; first read %s after the next invocation started", wait.Round(time.Millisecond))
	}
	if got := len(e.printed()); got != 150 {
		t.Fatalf("%d distinct records printed, want 150", got)
	}
}

// TestBadSettings: a missing setting fails the invocation with a one-line
// error naming it, as errorType UsageError.
func TestBadSettings(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the built function")
	}
	emu, err := lambdaemu.Start(context.Background(), lambdaemu.Function{Name: "poller", Path: bootstrap, Env: []string{"SHARDLINE_APP_NAME=my-app", "SHARDLINE_HANDLER=print", "AWS_REGION=us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	out, err := lambdaemu.Client(emu.Endpoint).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("poller"), Payload: []byte(`{"shardline":"poll"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ ErrorType, ErrorMessage string }
	_ = json.Unmarshal(out.Payload, &body)
	if out.FunctionError == nil || body.ErrorType != "UsageError" || !strings.Contains(body.ErrorMessage, "SHARDLINE_STREAM_NAME") {
		t.Fatalf("answer %s (function error %v): want a UsageError naming SHARDLINE_STREAM_NAME", out.Payload, aws.ToString(out.FunctionError))
	}
}

// TestParkedShardDoesNotFailInvocation: a shard that cannot go on (here a
// checkpoint that is not a sequence number of its shard) is parked; the
// invocation succeeds, reads the other shard and lists the parked one in
// its summary.
func TestParkedShardDoesNotFailInvocation(t *testing.T) {
	e := newEnv(t, 2, 5*time.Second)
	tbl := lease.NewTable(standintest.DynamoDBClient(e.ddbEP), e.app)
	if err := tbl.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	bad := "shardId-000000000000"
	if err := tbl.Create(context.Background(), lease.Lease{Key: bad, Checkpoint: stream.Position{Seq: "12345678901234567890"}}); err != nil {
		t.Fatal(err)
	}
	e.put(100, 0)
	s := e.invoke(t) // fails the test on a function error
	if s.StoppedBecause != "deadline" {
		t.Errorf("stopped because %q, want the deadline", s.StoppedBecause)
	}
	if len(s.Parked) != 1 || s.Parked[0].ShardID != bad || !strings.Contains(s.Parked[0].Reason, "poller reset") {
		t.Fatalf("summary parked = %+v, want %s with a reason naming poller reset", s.Parked, bad)
	}
	if s.Records == 0 {
		t.Errorf("the other shard was not read: %+v", s)
	}
}

// TestTargetStillRunningAtDeadline: an Invoke of the target function that
// is still running when the scheduled function nears its own deadline is
// cut half a margin before it: the function answers before its deadline,
// and the batch is left without a checkpoint for the next run.
func TestTargetStillRunningAtDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the stand-ins (run without -short)")
	}
	dir := t.TempDir()
	slow, err := lambdaemu.Build(context.Background(), dir, "../../shared/invoke/testdata/kinesisfn")
	if err != nil {
		t.Fatal(err)
	}
	target, err := lambdaemu.Start(context.Background(), lambdaemu.Function{Name: "slow", Path: slow, Timeout: time.Minute, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = target.Close() })
	e := newEnv(t, 1, 5*time.Second, "SHARDLINE_HANDLER=", "SHARDLINE_TARGET_FUNCTION=slow", "SHARDLINE_LAMBDA_ENDPOINT="+target.Endpoint,
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=us-east-1")
	prod, err := produce.New(context.Background(), standintest.KinesisClient(e.kinesisEP), e.stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := prod.Put(context.Background(), []kpl.UserRecord{{PartitionKey: "k", Data: []byte("sleep")}}); err != nil {
		t.Fatal(err)
	}
	s := e.invoke(t) // fails the test on a function error
	inv := e.emu.Invocations("poller")[0]
	if inv.Status != lambdaemu.StatusSuccess || !inv.End.Before(inv.Deadline) {
		t.Fatalf("invocation %s ended %s before its deadline; want success before it", inv.Status, inv.Deadline.Sub(inv.End))
	}
	t.Logf("answered %s before its deadline with the target still running (summary %+v)", inv.Deadline.Sub(inv.End).Round(time.Millisecond), s)
	for _, l := range e.leases(t) {
		if l.Checkpoint.Seq != stream.TrimHorizon || l.Owner != "" {
			t.Errorf("lease %s: checkpoint %s owner %q; want TRIM_HORIZON (the cut batch not checkpointed) and released", l.Key, l.Checkpoint, l.Owner)
		}
	}
	if n := len(target.Invocations("slow")); n != 1 {
		t.Errorf("the target was invoked %d times, want 1 (a cut call is not retried in the same run)", n)
	}
}

// TestTriggerSettings: the scheduled function takes the Kinesis trigger's
// settings from its environment as poller does: a filter (only orders are
// handled, the rest counted), a parallelization factor, and a tumbling
// window with the windowed wordcount (its per-window line printed).
func TestTriggerSettings(t *testing.T) {
	t.Run("filter and parallelization", func(t *testing.T) {
		e := newEnv(t, 1, 5*time.Second, `SHARDLINE_FILTER=[{"data":{"type":["order"]}}]`, "SHARDLINE_PARALLELIZATION_FACTOR=3")
		prod, err := produce.New(context.Background(), standintest.KinesisClient(e.kinesisEP), e.stream, 10)
		if err != nil {
			t.Fatal(err)
		}
		var recs []kpl.UserRecord
		for i := range 30 {
			typ := "other"
			if i%3 == 0 {
				typ = "order"
			}
			recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint("k", i%5), Data: []byte(fmt.Sprintf(`{"type":%q,"n":%d}`, typ, i))})
		}
		if err := prod.Put(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		s := e.invoke(t)
		if s.Handled != 10 || s.FilteredOut != 20 {
			t.Errorf("summary handled %d, filtered out %d; want 10 and 20", s.Handled, s.FilteredOut)
		}
		for data := range e.printed() {
			if !strings.Contains(data, "order") {
				t.Errorf("printed %q, which the filter drops", data)
			}
		}
	})
	t.Run("batching window longer than the run", func(t *testing.T) {
		// Issue 17: a 10 s window in a 5 s function delivered nothing, run
		// after run. Now each run delivers what it gathered before its
		// drain, and the function warns at start.
		for _, factor := range []string{"1", "3"} {
			e := newEnv(t, 1, 5*time.Second, "SHARDLINE_MAX_BATCHING_WINDOW=10s", "SHARDLINE_PARALLELIZATION_FACTOR="+factor)
			e.put(7, 0)
			s := e.invoke(t)
			if s.Handled != 7 {
				t.Errorf("factor %s: summary handled %d, want 7 (stopped because %q)", factor, s.Handled, s.StoppedBecause)
			}
			if len(e.printed()) != 7 {
				t.Errorf("factor %s: %d records printed, want 7", factor, len(e.printed()))
			}
			if !strings.Contains(e.out.String(), "SHARDLINE_MAX_BATCHING_WINDOW is not shorter than the run") {
				t.Errorf("factor %s: no warning about the window:\n%s", factor, tail(e.out.String()))
			}
			for _, l := range e.leases(t) {
				if l.Checkpoint.Seq == "TRIM_HORIZON" {
					t.Errorf("factor %s: lease %s still at TRIM_HORIZON after the run", factor, l.Key)
				}
			}
		}
	})
	t.Run("tumbling window", func(t *testing.T) {
		e := newEnv(t, 1, 6*time.Second, "SHARDLINE_HANDLER=wordcount", "SHARDLINE_TUMBLING_WINDOW=1s")
		prod, err := produce.New(context.Background(), standintest.KinesisClient(e.kinesisEP), e.stream, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := prod.Put(context.Background(), []kpl.UserRecord{{PartitionKey: "k", Data: []byte("1 2 2")}}); err != nil {
			t.Fatal(err)
		}
		e.invoke(t)
		var found bool
		for _, line := range strings.Split(e.out.String(), "\n") {
			if strings.Contains(line, `"counts"`) && strings.Contains(line, `"start"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no per-window counts line in the function's output:\n%s", tail(e.out.String()))
		}
	})
}

// TestScheduledInvocationsFanOut (issue 18): the scheduled function with
// SHARDLINE_CONSUMER_ARN (as the template's PollerFanOut gives it) reads
// over SubscribeToShard; the next invocation meets the last one's
// subscription on kinesis-mock (its 5-second rule), backs off, never
// fails, and reads on from the checkpoints. The gap between one
// invocation's last read and the next one's first is measured.
func TestScheduledInvocationsFanOut(t *testing.T) {
	const timeout = 8 * time.Second
	kin, _ := standintest.Both(t)
	kc := standintest.KinesisClient(kin.Endpoint)
	name := standintest.NewStream(t, kin.Endpoint, 2)
	sum, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := fetch.EnsureConsumer(context.Background(), kc, aws.ToString(sum.StreamDescriptionSummary.StreamARN), "poller-efo", fetch.ConsumerWait{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, name, timeout, "SHARDLINE_CONSUMER_ARN="+consumer)
	e.put(300, 0)
	s1 := e.invoke(t)
	if s1.Records != 300 || len(s1.Shards) != 2 {
		t.Fatalf("first summary %+v: want 300 records from 2 shards", s1)
	}
	e.put(200, 300)
	s2 := e.invoke(t)
	if s2.Records != 200 {
		t.Fatalf("second summary %+v: want the 200 new records only\n%s", s2, tail(e.out.String()))
	}
	for id, n := range e.printed() {
		if n != 1 {
			t.Errorf("record %s printed %d times, want once", id, n)
		}
	}
	if got := len(e.printed()); got != 500 {
		t.Fatalf("%d records printed, want 500", got)
	}
	if !strings.Contains(e.out.String(), "subscribed to the shard (enhanced fan-out)") || strings.Contains(e.out.String(), "GetRecords") {
		t.Errorf("the function did not read over subscriptions:\n%s", tail(e.out.String()))
	}
	invs := e.emu.Invocations("poller")
	t.Logf("fan-out: invocation 2 started %s after invocation 1 ended; gap between last and first read: %s (start-up to first read %s); %d refusals of the new subscription (ResourceInUse) waited out",
		invs[1].Start.Sub(invs[0].End).Round(time.Millisecond), s2.FirstRead.Sub(s1.LastRead).Round(time.Millisecond),
		s2.FirstRead.Sub(invs[1].Start).Round(time.Millisecond), strings.Count(e.out.String(), "another subscription for this consumer"))
}
