package shardline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// recorder is a handler that fails every batch holding a poison record
// while poisoned, and records what it handled, per shard and key in
// order.
type recorder struct {
	mu       sync.Mutex
	poisoned bool
	poison   func(data string) bool
	handled  map[string]int
	seen     map[string]bool // in any call, handled or not
	failed   map[string]bool // in a failed call
	byKey    map[string][]string
}

func newRecorder(poison func(string) bool) *recorder {
	return &recorder{poisoned: true, poison: poison, handled: map[string]int{}, seen: map[string]bool{}, failed: map[string]bool{}, byKey: map[string][]string{}}
}

func (r *recorder) handle(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	bad := false
	for _, e := range ev.Records {
		r.seen[string(e.Kinesis.Data)] = true
		bad = bad || r.poisoned && r.poison(string(e.Kinesis.Data))
	}
	if bad {
		for _, e := range ev.Records {
			r.failed[string(e.Kinesis.Data)] = true
		}
		return events.KinesisEventResponse{}, errors.New("poison")
	}
	for _, e := range ev.Records {
		d := string(e.Kinesis.Data)
		r.handled[d]++
		shard, _, _, _ := stream.ParseEventID(e.EventID)
		k := shard + "/" + e.Kinesis.PartitionKey
		r.byKey[k] = append(r.byKey[k], d)
	}
	return events.KinesisEventResponse{}, nil
}

func (r *recorder) heal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.poisoned = false
	r.handled, r.byKey = map[string]int{}, map[string][]string{}
}

// redriveEnv sets the variables every redrive test needs; SQS and S3 go to
// moto.
func redriveEnv(t *testing.T, motoEndpoint string) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	for _, kv := range standin.MotoEnv(motoEndpoint) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// putRecords puts n records on the stream: data rec-<i>, keys key-<i%5>;
// it returns the data put, in order.
func putRecords(t *testing.T, ctx context.Context, endpoint, streamName string, n int) []string {
	kc := standintest.KinesisClient(endpoint)
	var out []string
	for i := range n {
		d := fmt.Sprintf("rec-%03d", i)
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(streamName), Data: []byte(d), PartitionKey: aws.String(fmt.Sprintf("key-%d", i%5))}); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// poisonRun runs `run` over n records with a handler that fails the
// batches holding a poison record, with no retry, sending them to
// onFailure; it returns the handler and the records given up.
func poisonRun(t *testing.T, ctx context.Context, kinesisEndpoint, ddbEndpoint, onFailure string, n int) (*recorder, map[string]bool) {
	t.Helper()
	streamName := standintest.NewStream(t, kinesisEndpoint, 2)
	all := putRecords(t, ctx, kinesisEndpoint, streamName, n)
	rec := newRecorder(func(d string) bool {
		return strings.HasSuffix(d, "3") || strings.HasSuffix(d, "7") && !strings.HasSuffix(d, "07")
	})
	vars := map[string]string{
		"SHARDLINE_KINESIS_ENDPOINT": kinesisEndpoint, "SHARDLINE_DYNAMODB_ENDPOINT": ddbEndpoint,
		"SHARDLINE_APP_NAME": standintest.UniqueName(t), "SHARDLINE_STREAM_NAME": streamName, "SHARDLINE_LOG_FORMAT": "text",
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr testwait.Buffer
	done := make(chan error, 1)
	go func() {
		done <- New(WithName("poller"), Handle(rec.handle)).Run(runCtx, []string{"run", "-initial-position", "TRIM_HORIZON", "-batch-size", "4",
			"-max-retry-attempts", "0", "-on-failure", onFailure, "-checkpoint-interval", "100ms"}, func(k string) string { return vars[k] }, &stdout, &stderr)
	}()
	testwait.Until(t, time.Minute, fmt.Sprintf("all %d records seen by the poisoned handler", n), func() bool {
		select {
		case err := <-done:
			t.Fatalf("run ended early: %v\n%s", err, stderr.String())
		default:
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.seen) == n
	})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "parked") {
		t.Fatalf("a shard parked: the on-failure destination refused:\n%s", stderr.String())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	given := map[string]bool{}
	for _, d := range all {
		if rec.failed[d] && rec.handled[d] == 0 {
			given[d] = true
		}
		if rec.handled[d] == 0 && !rec.failed[d] {
			t.Fatalf("record %s neither handled nor given up", d)
		}
	}
	if len(given) == 0 {
		t.Fatal("nothing was given up")
	}
	return rec, given
}

// redriveCLI runs `poller redrive` in process with the App's own handler.
func redriveCLI(t *testing.T, ctx context.Context, h Handler, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := New(WithName("poller"), Handle(h)).Run(ctx, append([]string{"redrive", "-log-format", "text", "-quiet"}, args...),
		func(string) string { return "" }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// checkRedriven: every record given up was handled once, nothing else, in
// order per shard and key.
func checkRedriven(t *testing.T, rec *recorder, given map[string]bool) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for d := range given {
		if rec.handled[d] != 1 {
			t.Errorf("record %s given up was handled %d times by the redrive, want 1", d, rec.handled[d])
		}
	}
	if len(rec.handled) != len(given) {
		t.Errorf("the redrive handled %d records, want the %d given up", len(rec.handled), len(given))
	}
	for k, ds := range rec.byKey {
		for i := 1; i < len(ds); i++ {
			if ds[i] < ds[i-1] {
				t.Errorf("key %s: %s handled after %s", k, ds[i], ds[i-1])
			}
		}
	}
}

func queueName(t *testing.T) string {
	return strings.ReplaceAll(standintest.UniqueName(t), ".", "_")
}

// TestRedriveSQS: a run with poison records gives batches up to an SQS
// queue; healed, a redrive from it delivers each record given up once, in
// order per key, and empties the queue; a second redrive finds nothing.
func TestRedriveSQS(t *testing.T) {
	ks, ds := standintest.Both(t)
	moto := standintest.Moto(t)
	redriveEnv(t, moto.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := standintest.SQSClient(moto.Endpoint)
	q, err := sc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queueName(t))})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(q.QueueUrl)
	rec, given := poisonRun(t, ctx, ks.Endpoint, ds.Endpoint, url, 60)
	rec.heal()
	out, logs, err := redriveCLI(t, ctx, rec.handle, "-from", url, "-batch-size", "3")
	if err != nil {
		t.Fatalf("redrive: %v\n%s\n%s", err, out, logs)
	}
	checkRedriven(t, rec, given)
	if want := fmt.Sprintf("redrive: %d records handled, 0 given up again, 0 left in the source", len(given)); !strings.Contains(out, want) {
		t.Errorf("summary lacks %q:\n%s", want, out)
	}
	attrs, err := sc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	if v, nv := attrs.Attributes["ApproximateNumberOfMessages"], attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]; v != "0" || nv != "0" {
		t.Errorf("the queue holds %s messages (%s not visible), want none", v, nv)
	}
	rec.heal()
	out, _, err = redriveCLI(t, ctx, rec.handle, "-from", url)
	if err != nil || len(rec.handled) != 0 || !strings.Contains(out, "redrive: 0 records handled") {
		t.Errorf("a second redrive: %v, handled %v:\n%s", err, rec.handled, out)
	}
}

// TestRedriveS3: the same from an S3 prefix: every object is moved to
// <prefix>-redriven/ once its records are handled.
func TestRedriveS3(t *testing.T) {
	ks, ds := standintest.Both(t)
	moto := standintest.Moto(t)
	redriveEnv(t, moto.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s3c := standintest.S3Client(moto.Endpoint)
	bucket := fmt.Sprintf("redrive-%08x", rand.Uint32())
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	rec, given := poisonRun(t, ctx, ks.Endpoint, ds.Endpoint, "s3://"+bucket+"/failed", 50)
	before := listKeys(t, ctx, s3c, bucket, "failed/")
	if len(before) == 0 {
		t.Fatal("no object under failed/")
	}
	rec.heal()
	out, logs, err := redriveCLI(t, ctx, rec.handle, "-from", "s3://"+bucket+"/failed")
	if err != nil {
		t.Fatalf("redrive: %v\n%s\n%s", err, out, logs)
	}
	checkRedriven(t, rec, given)
	if left := listKeys(t, ctx, s3c, bucket, "failed/"); len(left) != 0 {
		t.Errorf("objects left under failed/: %v", left)
	}
	moved := listKeys(t, ctx, s3c, bucket, "failed-redriven/")
	if len(moved) != len(before) {
		t.Errorf("%d objects under failed-redriven/, want the %d there were", len(moved), len(before))
	}
	for k := range before {
		if !moved["failed-redriven/"+strings.TrimPrefix(k, "failed/")] {
			t.Errorf("object %s not moved to failed-redriven/", k)
		}
	}
}

func listKeys(t *testing.T, ctx context.Context, c *s3.Client, bucket, prefix string) map[string]bool {
	t.Helper()
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	for _, o := range out.Contents {
		keys[aws.ToString(o.Key)] = true
	}
	return keys
}

// TestRedriveFile: the same from a file, left empty.
func TestRedriveFile(t *testing.T) {
	ks, ds := standintest.Both(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	rec, given := poisonRun(t, ctx, ks.Endpoint, ds.Endpoint, "file://"+path, 40)
	rec.heal()
	out, logs, err := redriveCLI(t, ctx, rec.handle, "-from", "file://"+path, "-dry-run")
	if err != nil || !strings.Contains(out, fmt.Sprintf("dry run: %d records", len(given))) || len(rec.handled) != 0 {
		t.Fatalf("dry run: %v, handled %v:\n%s\n%s", err, rec.handled, out, logs)
	}
	out, logs, err = redriveCLI(t, ctx, rec.handle, "-from", "file://"+path)
	if err != nil {
		t.Fatalf("redrive: %v\n%s\n%s", err, out, logs)
	}
	checkRedriven(t, rec, given)
	if b, err := os.ReadFile(path); err != nil || len(b) != 0 {
		t.Errorf("the file holds %q (%v), want nothing", b, err)
	}
}

// TestRedriveBadInput: a -from of the wrong form, -on-failure equal to
// -from, and settings out of range are one line naming the setting, exit
// 2; a queue, bucket or file that does not exist is one line, exit 1.
func TestRedriveBadInput(t *testing.T) {
	moto := standintest.Moto(t)
	redriveEnv(t, moto.Endpoint)
	s3c := standintest.S3Client(moto.Endpoint)
	bucket := fmt.Sprintf("redrive-%08x", rand.Uint32())
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	queue := moto.Endpoint + "/" + standin.MotoAccountID + "/nope-" + fmt.Sprint(rand.Uint32())
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-from", "sqs://orders", "-handler", "print"}, 2, `poller: -from "sqs://orders": allowed an SQS queue URL`},
		{[]string{"-from", "arn:aws:sns:us-east-1:123456789012:t", "-handler", "print"}, 2, "is an SNS topic, which cannot be read back"},
		{[]string{"-handler", "print"}, 2, "poller: -from (SHARDLINE_FROM) is required"},
		{[]string{"-from", "file:///tmp/x.jsonl"}, 2, "poller: -handler (SHARDLINE_HANDLER) or -target-function"},
		{[]string{"-from", "s3://" + bucket + "/p", "-handler", "print", "-on-failure", "s3://" + bucket + "/p"}, 2, "is where -from reads"},
		{[]string{"-from", "https://sqs.us-east-1.amazonaws.com/123456789012/q", "-handler", "print", "-on-failure", "arn:aws:sqs:us-east-1:123456789012:q"}, 2, "is where -from reads"},
		{[]string{"-from", "file:///tmp/x.jsonl", "-handler", "print", "-delete"}, 2, "-delete is for an S3 -from"},
		{[]string{"-from", "file:///tmp/x.jsonl", "-handler", "print", "-visibility-timeout", "1500ms"}, 2, "-visibility-timeout 1.5s: allowed whole seconds"},
		{[]string{"-from", "file:///tmp/x.jsonl", "-handler", "print", "-max-retry-attempts", "-1"}, 2, "-max-retry-attempts -1: allowed 0–10000"},
		{[]string{"-from", queue, "-handler", "print"}, 1, "poller: SQS queue " + queue + " does not exist"},
		{[]string{"-from", "s3://nope-" + bucket + "/p", "-handler", "print"}, 1, "poller: S3 bucket nope-" + bucket + " does not exist"},
		{[]string{"-from", "file:///nonexistent/failed.jsonl", "-handler", "print"}, 1, "poller: file /nonexistent/failed.jsonl does not exist"},
	} {
		var stdout, stderr bytes.Buffer
		code := New(WithName("poller")).Main(append([]string{"redrive", "-log-format", "text"}, tt.args...), func(string) string { return "" }, &stdout, &stderr)
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		last := lines[len(lines)-1]
		if code != tt.code || !strings.Contains(last, tt.want) {
			t.Errorf("redrive %q: exit %d, last line %q; want exit %d and %q\n%s", tt.args, code, last, tt.code, tt.want, stderr.String())
		}
		if tt.code == 2 && len(lines) != 1 {
			t.Errorf("redrive %q: %d lines on stderr, want 1:\n%s", tt.args, len(lines), stderr.String())
		}
	}
}

// TestRedriveJSONLogs: with -log-format json every line on stderr is a
// JSON object, the summary among them, and the summary table goes to
// stdout.
func TestRedriveJSONLogs(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	body := lambdaOnFailure("shardId-000000000000", "1", "2", 2, "arn:aws:kinesis:us-east-1:123456789012:stream/s")
	body = strings.Replace(body, `"KinesisBatchInfo"`, `"records":[{"sequenceNumber":"1","subSequenceNumber":0,"partitionKey":"k","approximateArrivalTimestamp":"2026-03-04T05:06:07.125Z","data":"aGk="}],"KinesisBatchInfo"`, 1)
	if err := os.WriteFile(path, []byte(body+"\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := New(WithName("poller")).Main([]string{"redrive", "-from", "file://" + path, "-handler", "wordcount", "-log-format", "json"},
		func(string) string { return "" }, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1 (a line that is not an on-failure record stays)", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", l)
		}
	}
	if !strings.Contains(stderr.String(), `"msg":"redrive summary"`) || !strings.Contains(stdout.String(), "redrive: 1 records handled") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if b, _ := os.ReadFile(path); string(b) != "not json\n" {
		t.Errorf("the file holds %q, want the line that is not a record alone", b)
	}
}
