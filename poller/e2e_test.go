package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/shardline"
	"github.com/shardline/shardline/shared/testwait"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

// The test binary runs as the poller itself when this variable is set, so
// the tests start, signal and kill -9 a real poller process.
const childEnv = "SHARDLINE_TEST_BE_POLLER"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	code := standintest.Run(m)
	removeFakeKinesisBuild()
	os.Exit(code)
}

// env is one test's stand-ins, stream and app.
type testEnv struct {
	kinesisEP, dynamoEP, stream, app string
	clients                          *awsconf.Clients
	// env is more of the pollers' environment (AWS_CA_BUNDLE for the
	// fake Kinesis over TLS).
	env []string
}

func newEnv(t *testing.T, shards int) *testEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the stand-ins (run without -short)")
	}
	k, d := standintest.Both(t)
	e := &testEnv{kinesisEP: k.Endpoint, dynamoEP: d.Endpoint, app: standintest.UniqueName(t)}
	if shards > 0 {
		e.stream = standintest.NewStream(t, k.Endpoint, shards)
	}
	e.connect(t)
	return e
}

// connect sets the dummy credentials and builds the test's clients.
func (e *testEnv) connect(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	var err error
	e.clients, err = awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1", KinesisEndpoint: e.kinesisEP, DynamoDBEndpoint: e.dynamoEP})
	if err != nil {
		t.Fatal(err)
	}
}

// proc is a poller process.
type proc struct {
	cmd    *exec.Cmd
	out    *testwait.Buffer
	errOut *testwait.Buffer
	done   chan struct{}
}

// startPoller runs the poller with args and the stand-ins' settings in its
// environment; it is killed by PID at cleanup if still running.
func (e *testEnv) startPoller(t *testing.T, args ...string) *proc {
	t.Helper()
	return e.startPollerEnv(t, nil, args...)
}

// startPollerEnv is startPoller with more variables in the environment.
func (e *testEnv) startPollerEnv(t *testing.T, extra []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"SHARDLINE_KINESIS_ENDPOINT="+e.kinesisEP, "SHARDLINE_DYNAMODB_ENDPOINT="+e.dynamoEP,
		"SHARDLINE_APP_NAME="+e.app, "SHARDLINE_STREAM_NAME="+e.stream)
	cmd.Env = append(cmd.Env, e.env...)
	cmd.Env = append(cmd.Env, extra...)
	p := &proc{cmd: cmd, out: &testwait.Buffer{}, errOut: &testwait.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("poller %d stderr:\n%s", cmd.Process.Pid, tail(p.errOut.String(), 4000))
		}
	})
	return p
}

func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("poller did not exit within %s; stderr:\n%s", limit, tail(p.errOut.String(), 4000))
	}
	return -1
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// printed is one line of the print handler.
type printed struct {
	ShardID           string `json:"shardId"`
	SequenceNumber    string `json:"sequenceNumber"`
	SubSequenceNumber int64  `json:"subSequenceNumber"`
	Data              string `json:"data"`
}

// parsePrinted reads the print handler's lines; a last line without its
// newline (a live process in the middle of a write) is left for later.
func parsePrinted(t *testing.T, out string) []printed {
	t.Helper()
	out = out[:strings.LastIndexByte(out, '\n')+1]
	var recs []printed
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var p printed
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("print output line %q: %v", sc.Text(), err)
		}
		recs = append(recs, p)
	}
	return recs
}

func countLines(s string) int { return strings.Count(s, "\n") }

// TestKill9Resume: kill -9 a poller mid-stream and start it again: nothing
// is lost, it resumes from its checkpoint, and the records delivered twice
// are only those after that checkpoint, within one checkpoint interval's
// worth of reading.
func TestKill9Resume(t *testing.T) {
	e := newEnv(t, 4)
	const total, rate = 16000, 2000 // user records, per second
	prodErr := make(chan error, 1)
	go func() { prodErr <- e.produce(total, rate, 50) }()

	args := []string{"run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-checkpoint-interval", "1s", "-worker-id", "w1"}
	p1 := e.startPoller(t, args...)
	// Kill in the steady state: records flowing and every shard
	// checkpointed at least once.
	testwait.Until(t, time.Minute, "4,000 records printed and every shard checkpointed", func() bool {
		if countLines(p1.out.String()) < 4000 {
			return false
		}
		ls := leasesOf(t, e)
		for _, l := range ls {
			if l.Checkpoint.IsSentinel() {
				return false
			}
		}
		return len(ls) == 4
	})
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.wait(t, 10*time.Second)
	before := parsePrinted(t, p1.out.String())
	checkpoints := map[string]stream.Position{}
	leases, err := lease.NewTable(e.clients.DynamoDB, e.app).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		checkpoints[l.Key] = l.Checkpoint
	}

	p2 := e.startPoller(t, args...)
	if err := <-prodErr; err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 2*time.Minute, "every record", func() bool {
		return len(uniqueIDs(parsePrinted(t, p2.out.String()), before)) >= total
	})
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p2.wait(t, time.Minute); code != 0 {
		t.Fatalf("poller exit code after SIGTERM = %d, want 0", code)
	}
	after := parsePrinted(t, p2.out.String())

	if n := len(uniqueIDs(after, before)); n != total {
		t.Fatalf("%d distinct records delivered, want %d", n, total)
	}
	inBefore := map[string]bool{}
	for _, r := range before {
		inBefore[r.Data] = true
	}
	dups := 0
	for _, r := range after {
		if !inBefore[r.Data] {
			continue
		}
		dups++
		pos := stream.Position{Seq: r.SequenceNumber, SubSeq: r.SubSequenceNumber}
		if cp := checkpoints[r.ShardID]; !cp.IsSentinel() && !pos.After(cp) {
			t.Fatalf("record %s at %s of %s delivered again, but the checkpoint at the kill was %s", r.Data, pos, r.ShardID, cp)
		}
	}
	// The checkpoint is at most one interval (1s) behind; the reader may
	// be up to one more read ahead. At 2,000 records/s that is 4,000.
	t.Logf("kill -9 after %d records: %d delivered again after the restart", len(before), dups)
	if dups > 2*rate {
		t.Fatalf("%d records delivered twice, want at most %d (one checkpoint interval's worth)", dups, 2*rate)
	}
	checkShardOrder(t, after)
	for _, l := range leasesOf(t, e) {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %s after SIGTERM", l.Key, l.Owner)
		}
	}
}

func leasesOf(t *testing.T, e *testEnv) []lease.Lease {
	t.Helper()
	ls, err := lease.NewTable(e.clients.DynamoDB, e.app).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func uniqueIDs(lists ...[]printed) map[string]bool {
	m := map[string]bool{}
	for _, l := range lists {
		for _, r := range l {
			m[r.Data] = true
		}
	}
	return m
}

func checkShardOrder(t *testing.T, recs []printed) {
	t.Helper()
	last := map[string]stream.Position{}
	for _, r := range recs {
		pos := stream.Position{Seq: r.SequenceNumber, SubSeq: r.SubSequenceNumber}
		if p, ok := last[r.ShardID]; ok && !pos.After(p) {
			t.Fatalf("shard %s: %s printed after %s", r.ShardID, pos, p)
		}
		last[r.ShardID] = pos
	}
}

// produce puts total records "key-i:n" at rate per second, aggregated.
func (e *testEnv) produce(total, rate, aggregate int) error {
	ctx := context.Background()
	p, err := produce.New(ctx, e.clients.Kinesis, e.stream, aggregate)
	if err != nil {
		return err
	}
	const tick = 100 * time.Millisecond
	per := rate / 10
	start := time.Now()
	for sent, i := 0, 0; sent < total; i++ {
		var recs []kpl.UserRecord
		for j := 0; j < per && sent < total; j++ {
			key := fmt.Sprintf("key-%d", sent%100)
			recs = append(recs, kpl.UserRecord{PartitionKey: key, Data: []byte(fmt.Sprintf("%s:%d", key, sent/100))})
			sent++
		}
		if err := p.Put(ctx, recs); err != nil {
			return err
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * tick))) // pacing, not synchronisation
	}
	return nil
}

// TestStartErrors: a stream that does not exist and an endpoint that does
// not answer give one clear line and exit code 1.
func TestStartErrors(t *testing.T) {
	e := newEnv(t, 0)
	e.stream = "no-such-stream"
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing stream", nil, "stream no-such-stream: does not exist"},
		{"dead kinesis endpoint", []string{"-kinesis-endpoint", "http://127.0.0.1:1"}, "endpoint http://127.0.0.1:1 does not answer"},
		{"dead dynamodb endpoint", []string{"-stream-name", standintest.NewStream(t, e.kinesisEP, 1), "-dynamodb-endpoint", "http://127.0.0.1:1"}, "endpoint http://127.0.0.1:1 does not answer"},
		{"DynamoDB Local as the Kinesis endpoint", []string{"-kinesis-endpoint", e.dynamoEP}, "cannot start: stream no-such-stream: endpoint " + e.dynamoEP + " does not answer as Kinesis: it does not know DescribeStreamSummary (InvalidAction)"},
		{"kinesis-mock as the DynamoDB endpoint", []string{"-stream-name", standintest.NewStream(t, e.kinesisEP, 1), "-dynamodb-endpoint", e.kinesisEP},
			"endpoint " + e.kinesisEP + " does not answer as DynamoDB: its answer to DescribeTable (HTTP 404) is not a DynamoDB answer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := e.startPoller(t, append([]string{"run", "-handler", "print"}, c.args...)...)
			if code := p.wait(t, time.Minute); code != 1 {
				t.Fatalf("exit code %d, want 1; stderr:\n%s", code, p.errOut.String())
			}
			stderr := strings.TrimSpace(p.errOut.String())
			if strings.Count(stderr, "\n") != 0 {
				t.Fatalf("stderr has %d lines, want 1:\n%s", strings.Count(stderr, "\n")+1, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Fatalf("stderr = %q, want it to contain %q", stderr, c.want)
			}
		})
	}
}

// TestProduceThenPrint: `poller produce -count -aggregate` puts the word
// lines as KPL aggregates and prints the totals; `poller run -handler
// print` prints each of them as one JSON line.
func TestProduceThenPrint(t *testing.T) {
	e := newEnv(t, 2)
	prod := e.startPoller(t, "produce", "-rate", "2000", "-numbers", "5", "-aggregate", "50", "-count", "1000")
	if code := prod.wait(t, time.Minute); code != 0 {
		t.Fatalf("produce exit code %d; stderr:\n%s", code, prod.errOut.String())
	}
	if !strings.Contains(prod.out.String(), "sent 1000 lines (5000 numbers) in") {
		t.Fatalf("produce output lacks the summary:\n%s", prod.out.String())
	}
	var total int64
	for _, line := range strings.Split(strings.SplitN(prod.out.String(), "totals of the numbers sent:\n", 2)[1], "\n") {
		var n, c int64
		if _, err := fmt.Sscan(line, &n, &c); err == nil {
			total += c
		}
	}
	if total != 5000 {
		t.Fatalf("totals of the numbers sent add up to %d, want 5000", total)
	}
	p := e.startPoller(t, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON")
	testwait.Until(t, time.Minute, "1000 printed records", func() bool { return countLines(p.out.String()) >= 1000 })
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("poller exit code %d after SIGINT", code)
	}
	recs := parsePrinted(t, p.out.String())
	if len(recs) != 1000 {
		t.Fatalf("printed %d records, want 1000", len(recs))
	}
	keys := map[string]bool{}
	subs := 0
	for _, r := range recs {
		if len(strings.Fields(r.Data)) != 5 {
			t.Fatalf("record data %q: want 5 numbers", r.Data)
		}
		keys[r.Data+r.SequenceNumber+fmt.Sprint(r.SubSequenceNumber)] = true
		if r.SubSequenceNumber > 0 {
			subs++
		}
	}
	if subs == 0 {
		t.Fatal("no record has a sub-sequence number: the lines were not aggregated")
	}
	checkShardOrder(t, recs)
}

// TestSecondSignalExitsAtOnce: the first SIGTERM drains (here a batch is
// stuck in a function that never answers), the second exits at once.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	e := newEnv(t, 1)
	called := make(chan struct{}, 100)
	hang := make(chan struct{})
	defer close(hang)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- struct{}{}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	e.put(t, 10)
	p := e.startPoller(t, "run", "-target-function", "stuck", "-lambda-endpoint", "http://"+l.Addr().String(), "-initial-position", "TRIM_HORIZON")
	select {
	case <-called:
	case <-time.After(time.Minute):
		t.Fatalf("the function was never invoked; stderr:\n%s", p.errOut.String())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	testwait.Until(t, 10*time.Second, "the drain message", func() bool { return strings.Contains(p.errOut.String(), "draining") })
	select {
	case <-p.done:
		t.Fatal("the poller exited on the first signal with a batch in flight")
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 5*time.Second); code != 130 {
		t.Fatalf("exit code after the second signal = %d, want 130", code)
	}
}

// put writes n plain records to the test's stream.
func (e *testEnv) put(t *testing.T, n int) {
	t.Helper()
	p, err := produce.New(context.Background(), e.clients.Kinesis, e.stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	var recs []kpl.UserRecord
	for i := range n {
		recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint(i), Data: []byte(fmt.Sprint(i))})
	}
	if err := p.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// TestStatusAndReset: `status -json` shows each shard's owner, checkpoint,
// lag and last renewal while a poller runs; the table form has a row per
// shard; `reset -to TRIM_HORIZON` makes the next run read everything again.
func TestStatusAndReset(t *testing.T) {
	e := newEnv(t, 2)
	e.put(t, 30)
	p := e.startPoller(t, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-worker-id", "w-status", "-failover-time", "1500ms")
	testwait.Until(t, time.Minute, "30 records", func() bool { return countLines(p.out.String()) >= 30 })
	var rows []shardline.ShardStatus
	testwait.Until(t, 30*time.Second, "status with renewals and checkpoints", func() bool {
		s := e.startPoller(t, "status", "-json")
		if s.wait(t, time.Minute) != 0 {
			t.Fatalf("status failed: %s", s.errOut.String())
		}
		rows = nil
		if err := json.Unmarshal([]byte(s.out.String()), &rows); err != nil {
			t.Fatalf("status -json: %v\n%s", err, s.out.String())
		}
		for _, r := range rows {
			if r.LastRenewal == nil || r.Checkpoint == "" || stream.IsSentinelSeq(r.Checkpoint) {
				return false
			}
		}
		return len(rows) == 2
	})
	for _, r := range rows {
		if r.Owner != "w-status" || r.State != "open" || !r.HasLease {
			t.Errorf("row %+v: want owner w-status, state open, a lease", r)
		}
		if r.MillisBehindLatest == nil || *r.MillisBehindLatest < 0 {
			t.Errorf("row %s: lag %v, want a reading", r.ShardID, r.MillisBehindLatest)
		}
		if age := time.Since(*r.LastRenewal); age > time.Minute || age < -time.Minute {
			t.Errorf("row %s: last renewal %s ago", r.ShardID, age)
		}
	}
	tbl := e.startPoller(t, "status")
	tbl.wait(t, time.Minute)
	lines := strings.Split(strings.TrimSpace(tbl.out.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SHARD") || !strings.Contains(lines[1], "w-status") || !strings.HasPrefix(lines[3], "2 shards | 1 owners | max lag ") || !strings.HasSuffix(lines[3], " | 0 parked") {
		t.Fatalf("status table:\n%s\nwant a header, 2 rows owned by w-status and the summary row", tbl.out.String())
	}

	// Bare FORCE and JSON (a shell's, a Lambda environment's) are not
	// settings: status still prints its table, reset still refuses.
	bare := []string{"FORCE=1", "JSON=yes"}
	tbl = e.startPollerEnv(t, bare, "status")
	if code := tbl.wait(t, time.Minute); code != 0 || !strings.HasPrefix(tbl.out.String(), "SHARD") {
		t.Fatalf("status with JSON=yes: exit %d, stdout %q, stderr %q; want the table", code, tbl.out.String(), tbl.errOut.String())
	}
	// reset refuses owned leases; after a drain it moves the checkpoints.
	r := e.startPollerEnv(t, bare, "reset", "-to", "TRIM_HORIZON")
	if code := r.wait(t, time.Minute); code != 1 || !strings.Contains(r.errOut.String(), "owned by w-status") {
		t.Fatalf("reset of owned leases with FORCE=1: exit %d, stderr %q; want 1 and a refusal naming the owner", code, r.errOut.String())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t, time.Minute)
	r = e.startPoller(t, "reset", "-to", "TRIM_HORIZON")
	if code := r.wait(t, time.Minute); code != 0 {
		t.Fatalf("reset exit %d: %s", code, r.errOut.String())
	}
	again := e.startPoller(t, "run", "-handler", "print", "-initial-position", "LATEST")
	testwait.Until(t, time.Minute, "the 30 records again", func() bool { return countLines(again.out.String()) >= 30 })
}

// TestResetPositions: reset checks the stream and the sequence number
// against Kinesis before it writes: a sequence number of another shard is
// refused in one line and nothing moves; one of the shard, or a time, is
// written.
func TestResetPositions(t *testing.T) {
	e := newEnv(t, 2)
	ctx := context.Background()
	seqs := map[string]string{} // shard -> a sequence number in it
	for i := 0; len(seqs) < 2 && i < 100; i++ {
		out, err := e.clients.Kinesis.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(e.stream), PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		seqs[aws.ToString(out.ShardId)] = aws.ToString(out.SequenceNumber)
	}
	const s0, s1 = "shardId-000000000000", "shardId-000000000001"
	if seqs[s0] == "" || seqs[s1] == "" {
		t.Fatalf("records landed on %v, want both shards", seqs)
	}
	tbl := lease.NewTable(e.clients.DynamoDB, e.app)
	if err := tbl.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{s0, s1} {
		if err := tbl.Create(ctx, lease.Lease{Key: id, Checkpoint: stream.Position{Seq: stream.TrimHorizon}}); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint := func(id string) string {
		l, ok, err := tbl.Get(ctx, id)
		if err != nil || !ok {
			t.Fatalf("lease %s: %v (found %v)", id, err, ok)
		}
		return l.Checkpoint.String()
	}
	fails := func(want string, args ...string) {
		t.Helper()
		r := e.startPoller(t, append([]string{"reset"}, args...)...)
		if code := r.wait(t, time.Minute); code != 1 {
			t.Fatalf("reset %q: exit %d, want 1; stderr %q", args, code, r.errOut.String())
		}
		stderr := strings.TrimSpace(r.errOut.String())
		if strings.Contains(stderr, "\n") || !strings.Contains(stderr, want) {
			t.Fatalf("reset %q: stderr %q, want one line containing %q", args, stderr, want)
		}
	}
	fails("stream no-such-stream: does not exist", "-stream-name", "no-such-stream", "-to", "LATEST")
	fails("sequence number "+seqs[s1]+" is not in shard "+s0, "-shard", s0, "-to", seqs[s1])
	fails("no lease for shard shardId-000000000007", "-shard", "shardId-000000000007", "-to", seqs[s1])
	if got := checkpoint(s0); got != stream.TrimHorizon {
		t.Fatalf("after refused resets, %s's checkpoint is %s, want it untouched (TRIM_HORIZON)", s0, got)
	}

	ok := func(args ...string) string {
		t.Helper()
		r := e.startPoller(t, append([]string{"reset"}, args...)...)
		if code := r.wait(t, time.Minute); code != 0 {
			t.Fatalf("reset %q: exit %d; stderr %q", args, code, r.errOut.String())
		}
		return r.out.String()
	}
	ok("-shard", s1, "-to", seqs[s1])
	if got := checkpoint(s1); got != seqs[s1] {
		t.Errorf("%s's checkpoint is %s, want %s", s1, got, seqs[s1])
	}
	at := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	out := ok("-to", "AT_TIMESTAMP", "-timestamp", at)
	for _, id := range []string{s0, s1} {
		if got := checkpoint(id); got != stream.AtTimestamp {
			t.Errorf("%s's checkpoint is %s, want AT_TIMESTAMP", id, got)
		}
		if !strings.Contains(out, id+": checkpoint ") || !strings.Contains(out, "-> AT_TIMESTAMP "+at) {
			t.Errorf("reset printed %q, want each shard moved to AT_TIMESTAMP %s", out, at)
		}
	}
}

// TestJSONLinesOnly: with -log-format json every line on stderr is a JSON
// object — the signal's line and the error a run ends with too — and a
// stop that was asked for (SIGINT) logs no WARN.
func TestJSONLinesOnly(t *testing.T) {
	e := newEnv(t, 2)
	e.put(t, 20)
	p := e.startPoller(t, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-log-format", "json")
	testwait.Until(t, time.Minute, "20 records printed", func() bool { return len(parsePrinted(t, p.out.String())) >= 20 })
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit code %d after SIGINT", code)
	}
	checkJSONLines := func(stderr string) []map[string]any {
		t.Helper()
		var lines []map[string]any
		for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Errorf("a line that is not JSON: %q", l)
				continue
			}
			lines = append(lines, m)
		}
		return lines
	}
	drain := false
	for _, m := range checkJSONLines(p.errOut.String()) {
		if m["level"] == "WARN" || m["level"] == "ERROR" {
			t.Errorf("a %s line on a clean stop: %v", m["level"], m)
		}
		if msg, _ := m["msg"].(string); strings.Contains(msg, "interrupt: draining") {
			drain = true
		}
	}
	if !drain {
		t.Errorf("no JSON line for the signal:\n%s", p.errOut.String())
	}
	// A run that fails ends with a JSON line too.
	bad := e.startPoller(t, "run", "-handler", "print", "-log-format", "json", "-batch-size", "0")
	if code := bad.wait(t, 30*time.Second); code != 2 {
		t.Fatalf("exit code %d for -batch-size 0, want 2", code)
	}
	lines := checkJSONLines(bad.errOut.String())
	if len(lines) != 1 || lines[0]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(lines[0]["msg"]), "-batch-size 0") || lines[0]["exitCode"] != float64(2) {
		t.Errorf("bad setting: %q, want one JSON ERROR line naming -batch-size with exitCode 2", bad.errOut.String())
	}
}
