package snsdest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

func TestMain(m *testing.M) {
	standintest.Main(m)
}

func TestParseTopic(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Topic
	}{
		{"arn:aws:sns:eu-west-1:123456789012:failed", Topic{ARN: "arn:aws:sns:eu-west-1:123456789012:failed", Region: "eu-west-1", Name: "failed"}},
		{"arn:aws-cn:sns:cn-north-1:123456789012:f.fifo", Topic{ARN: "arn:aws-cn:sns:cn-north-1:123456789012:f.fifo", Region: "cn-north-1", Name: "f.fifo", FIFO: true}},
		{"arn:aws:sns:eu-west-1:123456789012", Topic{}},
		{"arn:aws:sns::123456789012:failed", Topic{}},
		{"arn:aws:sns:eu-west-1:1234:failed", Topic{}},
		{"arn:aws:sqs:eu-west-1:123456789012:failed", Topic{}},
		{"arn:aws:sns:eu-west-1:123456789012:bad name", Topic{}},
		{"arn:aws:sns:eu-west-1:123456789012:failed:sub-id", Topic{}},
	} {
		got, err := ParseTopic(tt.in)
		if tt.want == (Topic{}) {
			if err == nil || !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseTopic(%q) = %+v, %v; want an error naming the value", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

const shard = "shardId-000000000004"

func failure(n, size int) dispatch.Failure {
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	f := dispatch.Failure{ShardID: shard, StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s",
		FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:f", Attempts: 1,
		Reason: dispatch.ReasonRecordAge, Condition: dispatch.ConditionRecordAge, Time: time.Now()}
	for i := range n {
		f.Records = append(f.Records, stream.Record{ShardID: shard, SequenceNumber: fmt.Sprintf("4966%052d", i), PartitionKey: fmt.Sprintf("pk-%d", i),
			Data: bytes.Repeat([]byte{byte(i)}, size), ApproximateArrivalTimestamp: at})
	}
	return f
}

// subscribed makes a topic (FIFO or not) and a queue subscribed to it with
// raw delivery, and returns the topic's ARN and the queue's URL.
func subscribed(t *testing.T, endpoint string, fifo bool) (string, string) {
	t.Helper()
	ctx := context.Background()
	name := standintest.UniqueName(t)
	tin := &sns.CreateTopicInput{Name: aws.String(name)}
	qin := &sqs.CreateQueueInput{QueueName: aws.String(name)}
	if fifo {
		tin.Name, qin.QueueName = aws.String(name+".fifo"), aws.String(name+".fifo")
		tin.Attributes = map[string]string{"FifoTopic": "true"}
		qin.Attributes = map[string]string{"FifoQueue": "true"}
	}
	sc, qc := standintest.SNSClient(endpoint), standintest.SQSClient(endpoint)
	topic, err := sc.CreateTopic(ctx, tin)
	if err != nil {
		t.Fatal(err)
	}
	q, err := qc.CreateQueue(ctx, qin)
	if err != nil {
		t.Fatal(err)
	}
	qa, err := qc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint: aws.String(qa.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]), Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	return aws.ToString(topic.TopicArn), aws.ToString(q.QueueUrl)
}

// readBack reads n messages from the queue and the records they carry,
// in the order they came, or by part number when byPart (a standard
// queue does not keep the order).
func readBack(t *testing.T, c *sqs.Client, url string, n int, byPart bool) ([]record.Record, []record.Item) {
	t.Helper()
	var recs []record.Record
	var items []record.Item
	deadline := time.Now().Add(30 * time.Second)
	for len(recs) < n && time.Now().Before(deadline) {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			var r record.Record
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &r); err != nil {
				t.Fatalf("%v: %.200s", err, aws.ToString(m.Body))
			}
			recs = append(recs, r)
		}
	}
	if len(recs) != n {
		t.Fatalf("%d messages, want %d", len(recs), n)
	}
	if byPart {
		slices.SortStableFunc(recs, func(a, b record.Record) int { return a.Part - b.Part })
	}
	for _, r := range recs {
		items = append(items, r.Records...)
	}
	return recs, items
}

func check(t *testing.T, f dispatch.Failure, items []record.Item) {
	t.Helper()
	if len(items) != len(f.Records) {
		t.Fatalf("%d records back, want %d", len(items), len(f.Records))
	}
	for i, it := range items {
		r := f.Records[i]
		if it.SequenceNumber != r.SequenceNumber || it.PartitionKey != r.PartitionKey || !bytes.Equal(it.Data, r.Data) {
			t.Fatalf("record %d = %s %s, want %s %s", i, it.SequenceNumber, it.PartitionKey, r.SequenceNumber, r.PartitionKey)
		}
	}
}

// TestPublish: a batch that fits is one message, the record as it is; one
// that does not is several, in order, all there (read back through an SQS
// queue subscribed to the topic).
func TestPublish(t *testing.T) {
	moto := standintest.Moto(t)
	qc := standintest.SQSClient(moto.Endpoint)
	topic, url := subscribed(t, moto.Endpoint, false)
	tp, err := ParseTopic(topic)
	if err != nil {
		t.Fatal(err)
	}
	d := New(tp, standintest.SNSClient(moto.Endpoint))

	small := failure(3, 10)
	if err := d.Send(context.Background(), small); err != nil {
		t.Fatal(err)
	}
	recs, items := readBack(t, qc, url, 1, true)
	if recs[0].Part != 0 || recs[0].RequestContext.Condition != "RecordAgeExceeded" {
		t.Errorf("record = %+v", recs[0])
	}
	check(t, small, items)
	purge(t, qc, url)

	big := failure(500, 1000)
	if err := d.Send(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	msgs, _ := record.Split(record.New(big), record.MaxMessageBytes)
	recs, items = readBack(t, qc, url, len(msgs), true)
	for i, r := range recs {
		if r.Part != i+1 || r.Parts != len(msgs) || r.KinesisBatchInfo.BatchSize != 500 {
			t.Errorf("message %d: part %d of %d, batchSize %d", i+1, r.Part, r.Parts, r.KinesisBatchInfo.BatchSize)
		}
	}
	check(t, big, items)
}

func purge(t *testing.T, c *sqs.Client, url string) {
	t.Helper()
	if _, err := c.PurgeQueue(context.Background(), &sqs.PurgeQueueInput{QueueUrl: aws.String(url)}); err != nil {
		t.Fatal(err)
	}
}

// TestPublishFIFO: a FIFO topic takes the parts with the shard as the
// message group and a deduplication id each.
func TestPublishFIFO(t *testing.T) {
	moto := standintest.Moto(t)
	topic, url := subscribed(t, moto.Endpoint, true)
	tp, _ := ParseTopic(topic)
	if !tp.FIFO {
		t.Fatalf("%s not seen as FIFO", topic)
	}
	f := failure(400, 1000)
	if err := New(tp, standintest.SNSClient(moto.Endpoint)).Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	msgs, _ := record.Split(record.New(f), record.MaxMessageBytes)
	recs, items := readBack(t, standintest.SQSClient(moto.Endpoint), url, len(msgs), false)
	for i, r := range recs {
		if r.Part != i+1 {
			t.Errorf("message %d is part %d", i+1, r.Part)
		}
	}
	check(t, f, items)
}

// TestRefuses: a topic that does not exist is a Send error naming it.
func TestRefuses(t *testing.T) {
	moto := standintest.Moto(t)
	raw := "arn:aws:sns:us-east-1:" + standin.MotoAccountID + ":no-such-topic"
	tp, err := ParseTopic(raw)
	if err != nil {
		t.Fatal(err)
	}
	err = New(tp, standintest.SNSClient(moto.Endpoint)).Send(context.Background(), failure(1, 1))
	t.Logf("%v", err)
	if err == nil || !strings.Contains(err.Error(), "SNS topic "+raw) {
		t.Errorf("Send to a missing topic: %v, want an error naming it", err)
	}
	if err := New(tp, nil).Send(context.Background(), failure(1, 1)); err == nil || !strings.Contains(err.Error(), "no SNS client") {
		t.Errorf("Send without a client: %v", err)
	}
}
