package sqsdest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

func TestMain(m *testing.M) {
	standintest.Main(m)
}

func TestParseQueue(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Queue // zero: an error is wanted
	}{
		{"https://sqs.eu-west-1.amazonaws.com/123456789012/failed",
			Queue{URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/failed", Region: "eu-west-1", Name: "failed"}},
		{"https://sqs.cn-north-1.amazonaws.com.cn/123456789012/failed.fifo",
			Queue{URL: "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/failed.fifo", Region: "cn-north-1", Name: "failed.fifo", FIFO: true}},
		{"https://eu-west-1.queue.amazonaws.com/123456789012/failed",
			Queue{URL: "https://eu-west-1.queue.amazonaws.com/123456789012/failed", Region: "eu-west-1", Name: "failed"}},
		{"https://queue.amazonaws.com/123456789012/failed",
			Queue{URL: "https://queue.amazonaws.com/123456789012/failed", Region: "us-east-1", Name: "failed"}},
		{"http://127.0.0.1:4566/000000000000/local_q-1",
			Queue{URL: "http://127.0.0.1:4566/000000000000/local_q-1", Name: "local_q-1"}},
		{"arn:aws:sqs:us-east-2:123456789012:dlq",
			Queue{ARN: "arn:aws:sqs:us-east-2:123456789012:dlq", URL: "https://sqs.us-east-2.amazonaws.com/123456789012/dlq", Region: "us-east-2", Name: "dlq"}},
		{"arn:aws-cn:sqs:cn-north-1:123456789012:dlq.fifo",
			Queue{ARN: "arn:aws-cn:sqs:cn-north-1:123456789012:dlq.fifo", URL: "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/dlq.fifo",
				Region: "cn-north-1", Name: "dlq.fifo", FIFO: true}},
		{"https://sqs.eu-west-1.amazonaws.com/123456789012", Queue{}},
		{"https://sqs.eu-west-1.amazonaws.com/12345/failed", Queue{}},
		{"https://sqs.eu-west-1.amazonaws.com/123456789012/fail/ed", Queue{}},
		{"https://sqs.eu-west-1.amazonaws.com/123456789012/bad%20name", Queue{}},
		{"https://sqs.eu-west-1.amazonaws.com/123456789012/" + strings.Repeat("q", 81), Queue{}},
		{"https://sqs.eu-west-1.amazonaws.com/123456789012/q?x=1", Queue{}},
		{"ftp://sqs.eu-west-1.amazonaws.com/123456789012/q", Queue{}},
		{"arn:aws:sqs:us-east-2:123456789012", Queue{}},
		{"arn:aws:sqs::123456789012:dlq", Queue{}},
		{"arn:aws:sns:us-east-2:123456789012:dlq", Queue{}},
		{"arn:aws-iso:sqs:us-iso-east-1:123456789012:dlq", Queue{}},
	} {
		got, err := ParseQueue(tt.in)
		if tt.want == (Queue{}) {
			if err == nil || !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseQueue(%q) = %+v, %v; want an error naming the value", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseQueue(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

const shard = "shardId-000000000002"

func failure(n, size int) dispatch.Failure {
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	f := dispatch.Failure{ShardID: shard, StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s",
		FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:f", RequestID: "r-1", Attempts: 3,
		Reason: dispatch.ReasonRetriesExhausted, Condition: dispatch.ConditionRetriesExhausted, FunctionError: "Unhandled", Time: time.Now()}
	for i := range n {
		f.Records = append(f.Records, stream.Record{ShardID: shard, SequenceNumber: fmt.Sprintf("4966%052d", i/2), SubSequenceNumber: int64(i % 2),
			Aggregated: true, PartitionKey: fmt.Sprintf("pk-%d", i), Data: bytes.Repeat([]byte{byte(i)}, size), ApproximateArrivalTimestamp: at})
	}
	return f
}

func newQueue(t *testing.T, c *sqs.Client, fifo bool) string {
	t.Helper()
	name := standintest.UniqueName(t)
	in := &sqs.CreateQueueInput{QueueName: aws.String(name)}
	if fifo {
		in.QueueName = aws.String(name + ".fifo")
		in.Attributes = map[string]string{"FifoQueue": "true"}
	}
	out, err := c.CreateQueue(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// receive reads n messages (all there are), in the order SQS gives them.
func receive(t *testing.T, c *sqs.Client, url string, n int) []types.Message {
	t.Helper()
	ctx := context.Background()
	var got []types.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.Messages...)
	}
	if len(got) != n {
		t.Fatalf("%d messages in the queue, want %d", len(got), n)
	}
	return got
}

// items reads the records back from messages, parts in order.
func items(t *testing.T, msgs []types.Message) (record.Record, []record.Item) {
	t.Helper()
	parts := map[int]record.Record{}
	for _, m := range msgs {
		body := aws.ToString(m.Body)
		if len(body) > record.MaxMessageBytes {
			t.Errorf("a message of %d bytes, over %d", len(body), record.MaxMessageBytes)
		}
		var r record.Record
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		if _, dup := parts[r.Part]; dup {
			t.Fatalf("part %d twice", r.Part)
		}
		parts[r.Part] = r
	}
	var all []record.Item
	var head record.Record
	for i := range len(parts) {
		p := i + 1
		if len(parts) == 1 {
			p = 0
		}
		r, ok := parts[p]
		if !ok {
			t.Fatalf("part %d of %d missing", p, len(parts))
		}
		if r.Parts != 0 && r.Parts != len(parts) {
			t.Errorf("part %d says %d parts, want %d", p, r.Parts, len(parts))
		}
		if i == 0 {
			head = r
		}
		all = append(all, r.Records...)
	}
	return head, all
}

func check(t *testing.T, f dispatch.Failure, head record.Record, got []record.Item) {
	t.Helper()
	if head.KinesisBatchInfo.ShardID != f.ShardID || head.KinesisBatchInfo.BatchSize != len(f.Records) ||
		head.RequestContext.Condition != "RetryAttemptsExhausted" || head.RequestContext.ApproximateInvokeCount != f.Attempts {
		t.Errorf("record = %+v", head)
	}
	if len(got) != len(f.Records) {
		t.Fatalf("%d records, want %d", len(got), len(f.Records))
	}
	for i, it := range got {
		r := f.Records[i]
		if it.SequenceNumber != r.SequenceNumber || it.SubSequenceNumber != r.SubSequenceNumber || it.PartitionKey != r.PartitionKey || !bytes.Equal(it.Data, r.Data) {
			t.Fatalf("record %d = %s/%d %s, want %s/%d %s", i, it.SequenceNumber, it.SubSequenceNumber, it.PartitionKey, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey)
		}
	}
}

// TestSendStandard: a batch that fits is one message holding the record;
// a queue named by its ARN is sent to without a GetQueueUrl.
func TestSendStandard(t *testing.T) {
	moto := standintest.Moto(t)
	c := standintest.SQSClient(moto.Endpoint)
	url := newQueue(t, c, false)
	name := url[strings.LastIndex(url, "/")+1:]
	for _, raw := range []string{url, "arn:aws:sqs:us-east-1:" + standin.MotoAccountID + ":" + name} {
		q, err := ParseQueue(raw)
		if err != nil {
			t.Fatal(err)
		}
		f := failure(3, 100)
		if err := New(q, c).Send(context.Background(), f); err != nil {
			t.Fatalf("Send to %s: %v", raw, err)
		}
		msgs := receive(t, c, url, 1)
		want, _ := record.Marshal(record.New(f))
		if aws.ToString(msgs[0].Body) != string(want) {
			t.Errorf("sent to %s: message body\n%s\nwant\n%s", raw, aws.ToString(msgs[0].Body), want)
		}
		if _, err := c.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSendSplit500: 500 records of 1 KB go in several messages, none over
// 256 KiB; every part arrives and the records come back whole, in order.
func TestSendSplit500(t *testing.T) {
	moto := standintest.Moto(t)
	c := standintest.SQSClient(moto.Endpoint)
	url := newQueue(t, c, false)
	q, _ := ParseQueue(url)
	f := failure(500, 1000)
	if err := New(q, c).Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	want, _ := record.Split(record.New(f), record.MaxMessageBytes)
	if len(want) < 2 {
		t.Fatalf("the batch fits one message: no test of splitting")
	}
	head, got := items(t, receive(t, c, url, len(want)))
	check(t, f, head, got)
}

// TestSendFIFO: a FIFO queue gets the parts in order in the shard's
// message group, each with a deduplication id.
func TestSendFIFO(t *testing.T) {
	moto := standintest.Moto(t)
	c := standintest.SQSClient(moto.Endpoint)
	url := newQueue(t, c, true)
	q, _ := ParseQueue(url)
	if !q.FIFO {
		t.Fatalf("%s not seen as FIFO", url)
	}
	f := failure(400, 1000)
	if err := New(q, c).Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	split, err := record.Split(record.New(f), record.MaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	n := len(split)
	msgs := receive(t, c, url, n)
	for i, m := range msgs {
		var r record.Record
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
			t.Fatal(err)
		}
		if r.Part != i+1 {
			t.Errorf("message %d is part %d: out of order", i+1, r.Part)
		}
		if g := m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]; g != shard {
			t.Errorf("message group %q, want %q", g, shard)
		}
		if d := m.Attributes[string(types.MessageSystemAttributeNameMessageDeduplicationId)]; d != record.DeduplicationID(f, i+1, n) {
			t.Errorf("deduplication id %q, want %q", d, record.DeduplicationID(f, i+1, n))
		}
	}
	head, got := items(t, msgs)
	check(t, f, head, got)
}

// TestRefuses: a queue that does not exist is a Send error naming it.
func TestRefuses(t *testing.T) {
	moto := standintest.Moto(t)
	c := standintest.SQSClient(moto.Endpoint)
	for _, raw := range []string{
		moto.Endpoint + "/" + standin.MotoAccountID + "/no-such-queue",
		"arn:aws:sqs:us-east-1:" + standin.MotoAccountID + ":no-such-queue",
	} {
		q, err := ParseQueue(raw)
		if err != nil {
			t.Fatal(err)
		}
		err = New(q, c).Send(context.Background(), failure(2, 10))
		t.Logf("%s: %v", raw, err)
		if err == nil || !strings.Contains(err.Error(), "SQS queue "+raw) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("Send to a missing queue: %v, want an error naming it", err)
		}
	}
	q, _ := ParseQueue("arn:aws:sqs:us-east-1:123456789012:q")
	if err := New(q, nil).Send(context.Background(), failure(1, 1)); err == nil || !strings.Contains(err.Error(), "no SQS client") {
		t.Errorf("Send without a client: %v", err)
	}
}
