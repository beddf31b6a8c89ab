package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// TestRedriveKill9: a redrive from SQS killed with -9 midway, then run
// again once its messages show again, hands no record over more than
// twice and loses none; the queue ends empty.
func TestRedriveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs moto_server (run without -short)")
	}
	moto := standintest.Moto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sc := standintest.SQSClient(moto.Endpoint)
	q, err := sc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(strings.ReplaceAll(standintest.UniqueName(t), ".", "_"))})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(q.QueueUrl)
	// 300 batches of 3 records, on 2 shards, as -on-failure writes them.
	const batches, per = 300, 3
	pad := strings.Repeat("x", 200)
	want := map[string]bool{}
	for b := range batches {
		shard := fmt.Sprintf("shardId-00000000000%d", b%2)
		f := dispatch.Failure{ShardID: shard, StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/kill", Reason: dispatch.ReasonRetriesExhausted, Attempts: 1, Time: time.Now()}
		for i := range per {
			n := b*per + i
			data := fmt.Sprintf("kill-%04d-%s", n, pad)
			want[data[:9]] = true
			f.Records = append(f.Records, stream.Record{ShardID: shard, SequenceNumber: fmt.Sprintf("4966%052d", n), PartitionKey: fmt.Sprintf("key-%d", n%5),
				Data: []byte(data), ApproximateArrivalTimestamp: time.Now()})
		}
		body, err := record.Marshal(record.New(f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body))}); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), childEnv+"=1", "AWS_EC2_METADATA_DISABLED=true", "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local")
	env = append(env, standin.MotoEnv(moto.Endpoint)...)
	args := []string{"redrive", "-from", url, "-handler", "print", "-batch-size", "1", "-visibility-timeout", "2s", "-log-format", "json"}

	// The first redrive prints into a pipe that the test stops reading
	// after 100 lines: the redrive blocks a pipe's buffer later, midway,
	// and is killed there.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	var errOut testwait.Buffer
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, pw, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("first redrive's stderr:\n%s", errOut.String())
		}
	})
	counts := map[string]int{}
	r := bufio.NewReader(pr)
	first := 0
	for first < 100 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the first redrive's output ended after %d lines: %v\n%s", first, err, errOut.String())
		}
		count(t, counts, line)
		first++
	}
	// Midway: some messages deleted (their records all handled), the
	// redrive blocked on the pipe with the rest held.
	total := func() int {
		a, err := sc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			return -1
		}
		var v, nv int
		fmt.Sscan(a.Attributes["ApproximateNumberOfMessages"], &v)
		fmt.Sscan(a.Attributes["ApproximateNumberOfMessagesNotVisible"], &nv)
		return v + nv
	}
	testwait.Until(t, 30*time.Second, "the first redrive deleting messages", func() bool { n := total(); return n >= 0 && n < batches })
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	// What it printed before it died is still in the pipe.
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break // a line cut by the kill is not a record handled
		}
		if err != nil {
			t.Fatal(err)
		}
		count(t, counts, line)
		first++
	}
	if first == 0 || first >= len(want) {
		t.Fatalf("the first redrive handled %d of %d records before the kill: want it killed midway", first, len(want))
	}
	left := total()
	t.Logf("the first redrive handled %d of %d records before kill -9, and left %d of %d messages", first, len(want), left, batches)
	if left <= 0 || left >= batches {
		t.Errorf("%d messages left after the kill, want some deleted and some not", left)
	}

	// Its messages show again after their visibility timeout.
	testwait.Until(t, 30*time.Second, "the killed redrive's messages visible again", func() bool {
		a, err := sc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		return err == nil && a.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
	})
	second := exec.Command(os.Args[0], args...)
	second.Env = env
	var out, errs testwait.Buffer
	second.Stdout, second.Stderr = &out, &errs
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(second.Process.Pid, syscall.SIGKILL) })
	if err := second.Wait(); err != nil {
		t.Fatalf("second redrive: %v\n%s", err, errs.String())
	}
	again := 0
	for _, line := range strings.SplitAfter(out.String(), "\n") {
		if strings.HasPrefix(line, "{") {
			count(t, counts, line)
			again++
		}
	}
	twice := 0
	for d := range want {
		switch n := counts[d]; {
		case n == 0:
			t.Errorf("record %s lost: never handled", d)
		case n > 2:
			t.Errorf("record %s handled %d times, want at most twice", d, n)
		case n == 2:
			twice++
		}
	}
	if len(counts) != len(want) {
		t.Errorf("%d distinct records handled, want %d", len(counts), len(want))
	}
	t.Logf("the second redrive handled %d; %d records were handled twice", again, twice)
	a, err := sc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Attributes["ApproximateNumberOfMessages"] != "0" || a.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Errorf("the queue still holds messages: %v", a.Attributes)
	}
}

// count adds one print line's record to counts.
func count(t *testing.T, counts map[string]int, line string) {
	t.Helper()
	var p struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal([]byte(line), &p); err != nil {
		t.Fatalf("not a print line: %q: %v", line, err)
	}
	if len(p.Data) < 9 {
		t.Fatalf("print line with data %q", p.Data)
	}
	counts[p.Data[:9]]++
}
