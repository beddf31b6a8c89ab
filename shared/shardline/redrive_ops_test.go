package shardline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/shardline/shardline/shared/destination/filedest"
	"github.com/shardline/shardline/shared/destination/sqsdest"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/redrive"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/terminal/ptytest"
	"github.com/shardline/shardline/shared/testwait"
)

// opsStreamARN is the stream the on-failure records of these tests name.
const opsStreamARN = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"

// givenUp is a batch of n records of shard given up, their sequence
// numbers from first on (data <shard>/<seq>, keys key-<seq%3>).
func givenUp(shard string, first, n int) dispatch.Failure {
	f := dispatch.Failure{ShardID: shard, StreamARN: opsStreamARN, FunctionARN: "redrive-test", Attempts: 1,
		Reason: "RetryAttemptsExhausted", Condition: "RetryAttemptsExhausted", LastError: "poison", Time: time.Now()}
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for i := first; i < first+n; i++ {
		seq := fmt.Sprintf("4959%020d", i)
		f.Records = append(f.Records, stream.Record{ShardID: shard, SequenceNumber: seq, PartitionKey: fmt.Sprintf("key-%d", i%3),
			Data: []byte(shard + "/" + seq), ApproximateArrivalTimestamp: at.Add(time.Duration(i) * time.Millisecond)})
	}
	return f
}

// inOrder is a handler that keeps what it handled per shard, in order.
type inOrder struct {
	mu      sync.Mutex
	byShard map[string][]string
	count   map[string]int
	n       int
	// gate, when set, is called before each batch is handled (outside mu).
	gate func(handledSoFar int)
}

func newInOrder() *inOrder {
	return &inOrder{byShard: map[string][]string{}, count: map[string]int{}}
}

func (c *inOrder) handle(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	if c.gate != nil {
		c.gate(c.handled())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range ev.Records {
		shard, _, _, _ := stream.ParseEventID(e.EventID)
		c.byShard[shard] = append(c.byShard[shard], string(e.Kinesis.Data))
		c.count[string(e.Kinesis.Data)]++
		c.n++
	}
	return events.KinesisEventResponse{}, nil
}

func (c *inOrder) handled() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// check: every record of want handled once, nothing else, each shard's in
// sequence order.
func (c *inOrder) check(t *testing.T, want []dispatch.Failure) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, f := range want {
		for _, r := range f.Records {
			n++
			if got := c.count[string(r.Data)]; got != 1 {
				t.Errorf("record %s handled %d times, want once", r.Data, got)
			}
		}
	}
	if c.n != n {
		t.Errorf("%d records handled, want %d", c.n, n)
	}
	for shard, ds := range c.byShard {
		for i := 1; i < len(ds); i++ {
			if ds[i] <= ds[i-1] {
				t.Errorf("shard %s: %s handled after %s", shard, ds[i], ds[i-1])
				break
			}
		}
	}
}

// TestRedriveFIFOQueue: a FIFO queue (moto) holding Shardline's on-failure
// records of two shards, one message group per shard, more messages per
// group than one receive returns: the redrive reads them in rounds (SQS
// holds a group's next messages back while earlier ones are in flight),
// delivers every record once in sequence order per shard, and deletes
// every message.
func TestRedriveFIFOQueue(t *testing.T) {
	moto := standintest.Moto(t)
	redriveEnv(t, moto.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := standintest.SQSClient(moto.Endpoint)
	q, err := sc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queueName(t) + ".fifo"),
		Attributes: map[string]string{"FifoQueue": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(q.QueueUrl)
	queue, err := sqsdest.ParseQueue(url)
	if err != nil {
		t.Fatal(err)
	}
	dest := sqsdest.New(queue, sc)
	var sent []dispatch.Failure
	for i := range 25 { // shard 0: 25 messages of 2 records; shard 1: 15
		for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
			if shard == "shardId-000000000001" && i >= 15 {
				continue
			}
			f := givenUp(shard, 2*i, 2)
			if err := dest.Send(ctx, f); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, f)
		}
	}
	c := newInOrder()
	// A dry run sees the first messages of each group only (it deletes
	// nothing): it says how many it could not list.
	out, logs, err := redriveCLI(t, ctx, c.handle, "-from", url, "-dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s\n%s", err, out, logs)
	}
	m := regexp.MustCompile(`in (\d+) messages of .* would be redriven; nothing was delivered or changed; about (\d+) more messages not listed: a FIFO queue holds a group's next messages back`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the dry run does not say it could not list every message of the FIFO queue:\n%s\n%s", out, logs)
	}
	if listed, unlisted := atoiT(t, m[1]), atoiT(t, m[2]); listed+unlisted != 40 || listed == 0 {
		t.Errorf("dry run: %d messages listed and %d not, want 40 in all", listed, unlisted)
	}
	if c.handled() != 0 {
		t.Fatalf("the dry run handled %d records", c.handled())
	}
	out, logs, err = redriveCLI(t, ctx, c.handle, "-from", url, "-batch-size", "3")
	if err != nil {
		t.Fatalf("redrive: %v\n%s\n%s", err, out, logs)
	}
	c.check(t, sent)
	if want := "redrive: 80 records handled, 0 given up again, 0 left in the source; 40 messages cleaned up, 0 kept\n"; !strings.Contains(out, want) {
		t.Errorf("summary lacks %q (a FIFO queue's rounds keep the order: no word of the memory bound):\n%s", want, out)
	}
	attrs, err := sc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	if v, nv := attrs.Attributes["ApproximateNumberOfMessages"], attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]; v != "0" || nv != "0" {
		t.Errorf("the queue holds %s messages (%s not visible), want none", v, nv)
	}
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRedriveDryRunReceiveLimit: every receive counts toward an SQS
// queue's maxReceiveCount. A dry run of a queue whose redrive policy's
// maxReceiveCount is DryRunReceiveWarn or less warns in one line before
// it receives; after a dry run that brought messages to the count it says
// how many would go to the dead-letter queue at their next receive (and
// moto moves them there then). A queue with a higher count, or none, gets
// no warning.
func TestRedriveDryRunReceiveLimit(t *testing.T) {
	moto := standintest.Moto(t)
	redriveEnv(t, moto.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := standintest.SQSClient(moto.Endpoint)
	name := queueName(t)
	dlq, err := sc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	dlqAttrs, err := sc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	dlqARN := dlqAttrs.Attributes["QueueArn"]
	queue := func(suffix, policy string) string {
		in := &sqs.CreateQueueInput{QueueName: aws.String(name + suffix)}
		if policy != "" {
			in.Attributes = map[string]string{"RedrivePolicy": policy}
		}
		q, err := sc.CreateQueue(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		url := aws.ToString(q.QueueUrl)
		qq, err := sqsdest.ParseQueue(url)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := sqsdest.New(qq, sc).Send(ctx, givenUp("shardId-000000000000", 2*i, 2)); err != nil {
				t.Fatal(err)
			}
		}
		return url
	}
	low := queue("-low", `{"deadLetterTargetArn":"`+dlqARN+`","maxReceiveCount":"2"}`)
	high := queue("-high", `{"deadLetterTargetArn":"`+dlqARN+`","maxReceiveCount":50}`)
	none := queue("-none", "")

	c := newInOrder()
	const warning = "has a redrive policy with maxReceiveCount"
	for _, url := range []string{high, none} {
		out, logs, err := redriveCLI(t, ctx, c.handle, "-from", url, "-dry-run")
		if err != nil || strings.Contains(logs, warning) || strings.Contains(out, "maxReceiveCount") || !strings.Contains(out, "dry run: 6 records") {
			t.Errorf("dry run of %s: %v; want 6 records and no warning:\n%s\n%s", url, err, out, logs)
		}
	}
	out, logs, err := redriveCLI(t, ctx, c.handle, "-from", low, "-dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s\n%s", err, out, logs)
	}
	var warned []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, warning) {
			warned = append(warned, l)
		}
	}
	want := "SQS queue " + low + " has a redrive policy with maxReceiveCount 2 (dead-letter queue " + dlqARN + ") and every receive counts"
	if len(warned) != 1 || !strings.Contains(warned[0], "level=WARN") || !strings.Contains(warned[0], want) {
		t.Errorf("want one WARN line with %q, got %q\n%s", want, warned, logs)
	}
	if !strings.Contains(out, "dry run: 6 records") || strings.Contains(out, "now received maxReceiveCount") {
		t.Errorf("first dry run (each message received once of 2):\n%s", out)
	}
	// A second dry run brings every message to 2 receives: it says so.
	out, logs, err = redriveCLI(t, ctx, c.handle, "-from", low, "-dry-run")
	if err != nil || !strings.Contains(out, "; 3 messages now received maxReceiveCount (2) times: their next receive moves them to the dead-letter queue") {
		t.Errorf("second dry run: %v; want it to name the 3 messages at the limit:\n%s\n%s", err, out, logs)
	}
	// And so it is: the redrive finds nothing, the dead-letter queue holds them.
	out, logs, err = redriveCLI(t, ctx, c.handle, "-from", low)
	if err != nil || c.handled() != 0 {
		t.Errorf("redrive after the dry runs: %v, %d records handled; want none (moto moved them to the dead-letter queue):\n%s\n%s", err, c.handled(), out, logs)
	}
	attrs, err := sc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	if err != nil {
		t.Fatal(err)
	}
	if n := attrs.Attributes["ApproximateNumberOfMessages"]; n != "3" {
		t.Errorf("the dead-letter queue holds %s messages, want the 3", n)
	}
}

// noAWS leaves the test with no AWS region and no credentials anywhere
// the SDK looks (variables, config and credentials files), and no
// instance metadata.
func noAWS(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		t.Setenv(k, "")
		os.Unsetenv(k) // restored by Setenv's cleanup
	}
}

// writeFailures appends fs to the file at path as -on-failure
// file:///path does.
func writeFailures(t *testing.T, path string, fs ...dispatch.Failure) {
	t.Helper()
	d := filedest.New(path)
	for _, f := range fs {
		if err := d.Send(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRedriveFileNoAWS: a file -from, an in-process handler and a file
// -on-failure use nothing of AWS: the redrive needs no region and no
// credentials (there are none) and delivers every record; a Lambda
// metadata-only record in the file, which would need the stream, stays
// in the file with a line that says what to give.
func TestRedriveFileNoAWS(t *testing.T) {
	noAWS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "failed.jsonl")
	sent := []dispatch.Failure{givenUp("shardId-000000000000", 0, 3), givenUp("shardId-000000000001", 0, 2), givenUp("shardId-000000000000", 3, 3)}
	writeFailures(t, path, sent...)
	c := newInOrder()
	out, logs, err := redriveCLI(t, ctx, c.handle, "-from", "file://"+path, "-on-failure", "file://"+filepath.Join(dir, "again.jsonl"))
	if err != nil {
		t.Fatalf("redrive with no AWS region or credentials: %v\n%s\n%s", err, out, logs)
	}
	c.check(t, sent)
	if b, err := os.ReadFile(path); err != nil || len(b) != 0 {
		t.Errorf("the file holds %q (%v), want nothing", b, err)
	}
	// Lambda's metadata-only record: its records are in the stream.
	lambda := lambdaOnFailure("shardId-000000000000", "1", "2", 2, opsStreamARN)
	if err := os.WriteFile(path, []byte(lambda+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, logs, err = redriveCLI(t, ctx, c.handle, "-from", "file://"+path)
	var left *redrive.LeftError
	if !errors.As(err, &left) || !strings.Contains(err.Error(), "no AWS region: give -region") {
		t.Errorf("redrive of a Lambda metadata record with no region: %v; want it left in the file, saying a region is needed\n%s\n%s", err, out, logs)
	}
	if b, _ := os.ReadFile(path); string(b) != lambda+"\n" {
		t.Errorf("the file holds %q, want the Lambda record kept", b)
	}
}

// gatedRedrive is a redrive of 12 records of one shard (4 messages of 3,
// in a file) to an in-process handler called with 3 at a time, whose
// third call waits until release is called: a redrive held with 6
// records handled.
type gatedRedrive struct {
	c       *inOrder
	sent    []dispatch.Failure
	release func()
	done    chan error
}

func startGatedRedrive(t *testing.T, stdout, stderr io.Writer, args ...string) *gatedRedrive {
	t.Helper()
	noAWS(t)
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	g := &gatedRedrive{c: newInOrder(), done: make(chan error, 1)}
	for i := range 4 {
		g.sent = append(g.sent, givenUp("shardId-000000000000", 3*i, 3))
	}
	writeFailures(t, path, g.sent...)
	gate := make(chan struct{})
	g.release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(g.release)
	g.c.gate = func(handled int) {
		if handled >= 6 {
			<-gate
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	go func() {
		g.done <- New(WithName("poller"), Handle(g.c.handle)).Run(ctx, append([]string{"redrive", "-from", "file://" + path, "-batch-size", "3"}, args...),
			func(string) string { return "" }, stdout, stderr)
	}()
	return g
}

// wait releases the handler and waits for the redrive's end: every
// record handled once, in order.
func (g *gatedRedrive) wait(t *testing.T) {
	t.Helper()
	g.release()
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("redrive: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the redrive did not end")
	}
	g.c.check(t, g.sent)
}

var (
	redriveServing   = regexp.MustCompile(`msg="serving /metrics, /healthz and /readyz" addr=(127\.0\.0\.1:\d+)`)
	redriveProcessed = regexp.MustCompile(`(?m)^shardline_records_processed_total\{[^}]*shard_id="shardId-000000000000"[^}]*\} (\d+)$`)
)

// TestRedriveMetricsAddr: with -metrics-addr the endpoint answers while
// the redrive runs, and counts the records redriven as they are handled
// (6 while the handler holds the third batch), not only when a shard's
// delivery ends.
func TestRedriveMetricsAddr(t *testing.T) {
	var stdout, stderr testwait.Buffer
	g := startGatedRedrive(t, &stdout, &stderr, "-log-format", "text", "-quiet", "-metrics-addr", "127.0.0.1:0")
	var base string
	testwait.Until(t, 30*time.Second, "the redrive to say where /metrics listens", func() bool {
		if m := redriveServing.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
		}
		return base != ""
	})
	var page string
	testwait.Until(t, 30*time.Second, "6 records processed on /metrics", func() bool {
		_, page = get(t, base+"/metrics")
		m := redriveProcessed.FindStringSubmatch(page)
		return m != nil && m[1] == "6"
	})
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz answered %d, want 200", code)
	}
	if !strings.Contains(page, `shardline_polled_event_count_total{`) {
		t.Errorf("/metrics lacks the records gathered (polled_event_count):\n%s", grepLines(page, "shardline_"))
	}
	g.wait(t)
	if !strings.Contains(stdout.String(), "redrive: 12 records handled, 0 given up again, 0 left in the source") {
		t.Errorf("summary:\n%s\n%s", stdout.String(), stderr.String())
	}
}

// TestRedriveProgressLine: on a terminal (a pseudo-terminal) the redrive
// keeps a progress line that counts the records handled while it runs,
// then erases it and prints the summary.
func TestRedriveProgressLine(t *testing.T) {
	tty, screen := ptytest.Open(t)
	g := startGatedRedrive(t, tty, tty, "-log-format", "text")
	testwait.Until(t, 30*time.Second, "the progress line to show 6 records handled", func() bool {
		return strings.Contains(screen.String(), "redrive: 4 messages, 12 records gathered, 6 handled")
	})
	g.wait(t)
	testwait.Until(t, 10*time.Second, "the summary on the terminal", func() bool {
		return strings.Contains(screen.String(), "redrive: 12 records handled, 0 given up again, 0 left in the source")
	})
}
