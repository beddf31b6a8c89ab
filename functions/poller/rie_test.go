package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/testwait"
)

// rieFn is one instance of the scheduled poller function under AWS's
// runtime interface emulator: one emulator process, one invocation at a
// time, as one Lambda execution environment.
type rieFn struct {
	srv *standin.Server
	out *testwait.Buffer
}

// newRIEEnv is newEnv's stream, records and settings, with the function
// started under n emulators (n instances) instead of lambdaemu.
func newRIEEnv(t *testing.T, shards, n int, timeout time.Duration) (*env, []*rieFn) {
	t.Helper()
	e := newEnv(t, shards, timeout) // skips under -short; its lambdaemu host stays unused
	// The same settings as the lambdaemu host gets.
	vars := []string{
		"SHARDLINE_STREAM_NAME=" + e.stream, "SHARDLINE_APP_NAME=" + e.app, "SHARDLINE_HANDLER=print",
		"SHARDLINE_KINESIS_ENDPOINT=" + e.kinesisEP, "SHARDLINE_DYNAMODB_ENDPOINT=" + e.ddbEP,
		"SHARDLINE_INITIAL_POSITION=TRIM_HORIZON", "SHARDLINE_DEADLINE_MARGIN=1500ms", "SHARDLINE_FAILOVER_TIME=3s", "SHARDLINE_CHECKPOINT_INTERVAL=500ms",
	}
	var fns []*rieFn
	for range n {
		f := &rieFn{out: e.out} // one log for all: printed() counts across instances
		srv, err := standin.StartRIE(context.Background(), standin.RIEConfig{Bootstrap: bootstrap, Name: "PollerFunction", Env: vars, Timeout: timeout, Log: f.out})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Stop() })
		f.srv = srv
		fns = append(fns, f)
	}
	return e, fns
}

// invoke calls the instance with the scheduled event through the SDK
// (FunctionName "function", the one name the emulator serves) and returns
// the summary and how long the call took.
func (f *rieFn) invoke(t *testing.T, e *env) (coordinator.Summary, time.Duration) {
	t.Helper()
	start := time.Now()
	out, err := lambdaemu.Client(f.srv.Endpoint).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(scheduleEvent(t))})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("invoke: %v\nlog:\n%s", err, tail(e.out.String()))
	}
	var s coordinator.Summary
	var fail struct{ ErrorType, ErrorMessage string }
	_ = json.Unmarshal(out.Payload, &fail)
	if out.FunctionError != nil || fail.ErrorType != "" { // the emulator sets no X-Amz-Function-Error
		t.Fatalf("function error %s: %s\nlog:\n%s", aws.ToString(out.FunctionError), out.Payload, tail(e.out.String()))
	}
	if err := json.Unmarshal(out.Payload, &s); err != nil {
		t.Fatalf("summary %s: %v", out.Payload, err)
	}
	return s, took
}

func scheduleEvent(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../events/schedule.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScheduledUnderRIE: under the emulator, the scheduled function reads
// and checkpoints every record, answers before its timeout and releases
// its leases; a second invocation of the same (warm) instance goes on from
// the checkpoints.
func TestScheduledUnderRIE(t *testing.T) {
	const timeout = 5 * time.Second
	e, fns := newRIEEnv(t, 2, 1, timeout)
	e.put(300, 0)
	s1, took := fns[0].invoke(t, e)
	if s1.StoppedBecause != "deadline" || s1.Records != 300 || len(s1.Shards) != 2 {
		t.Fatalf("first summary %+v: want 300 records from 2 shards, stopped at the deadline", s1)
	}
	if took >= timeout {
		t.Fatalf("the invocation took %s, not less than its timeout %s", took, timeout)
	}
	t.Logf("answered after %s of %s (margin 1.5s)", took.Round(time.Millisecond), timeout)
	for _, l := range e.leases(t) {
		if l.Owner != "" || l.Checkpoint.IsSentinel() {
			t.Errorf("after the invocation lease %s: owner %q checkpoint %s; want released at a record", l.Key, l.Owner, l.Checkpoint)
		}
	}
	e.put(200, 300)
	if s2, _ := fns[0].invoke(t, e); s2.Records != 200 {
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
	// The emulator writes its REPORT line after it has answered.
	testwait.Until(t, 5*time.Second, "2 REPORT lines", func() bool { return strings.Count(e.out.String(), "REPORT RequestId") == 2 })
}

// TestTwoRIEInstancesSplitShards: two emulators (two execution
// environments) invoked at once share a 4-shard stream through the leases.
func TestTwoRIEInstancesSplitShards(t *testing.T) {
	e, fns := newRIEEnv(t, 4, 2, 8*time.Second)
	e.put(400, 0)
	var wg sync.WaitGroup
	sums := make([]coordinator.Summary, 2)
	for i, f := range fns {
		wg.Go(func() { sums[i], _ = f.invoke(t, e) })
	}
	wg.Wait()
	held := map[string]int{}
	for i, s := range sums {
		if len(s.HeldAtStop) != 2 {
			t.Errorf("instance %d held %v when it stopped: want 2 of the 4 shards", i, s.HeldAtStop)
		}
		for _, sh := range s.HeldAtStop {
			held[sh]++
		}
		t.Logf("instance %d (%s) read %v (%d records), held %v at the end", i, s.WorkerID, s.Shards, s.Records, s.HeldAtStop)
	}
	if len(held) != 4 {
		t.Fatalf("together they held %d distinct shards at the end, want 4: %v", len(held), held)
	}
	if got := len(e.printed()); got != 400 {
		t.Fatalf("%d distinct records printed, want 400", got)
	}
}

// TestKilledRIEInstance: an instance killed mid-invocation (the emulator
// and the function, SIGKILL) leaves its lease owned; another instance
// takes it after SHARDLINE_FAILOVER_TIME and goes on from the checkpoint.
func TestKilledRIEInstance(t *testing.T) {
	e, fns := newRIEEnv(t, 1, 2, 8*time.Second)
	e.put(100, 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = lambdaemu.Client(fns[0].srv.Endpoint).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("function"), Payload: []byte(`{"shardline":"poll"}`)})
	}()
	testwait.Until(t, 30*time.Second, "the first instance to read", func() bool { return len(e.printed()) >= 100 })
	testwait.Until(t, 10*time.Second, "the lease to be owned", func() bool {
		ls := e.leases(t)
		return len(ls) == 1 && ls[0].Owner != ""
	})
	_ = syscall.Kill(-fns[0].srv.PID, syscall.SIGKILL) // its process group: the emulator and the function
	<-done
	<-fns[0].srv.Done()
	e.put(50, 100)
	start := time.Now()
	s, _ := fns[1].invoke(t, e)
	if s.Records < 50 {
		t.Fatalf("summary %+v: want at least the 50 new records", s)
	}
	if wait := s.FirstRead.Sub(start); wait < 3*time.Second {
		t.Fatalf("the killed instance's lease was read again after %s, before SHARDLINE_FAILOVER_TIME (3s)", wait)
	} else {
		t.Logf("killed instance's lease taken; first read %s after the other instance's invocation started", wait.Round(time.Millisecond))
	}
	if got := len(e.printed()); got != 150 {
		t.Fatalf("%d distinct records printed, want 150", got)
	}
}
