package shardline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/standin/standintest"
)

// TestRedriveLambdaMetadata: Lambda's own on-failure records in SQS hold
// only a shard and its first and last sequence numbers (one of them
// inside an SNS notification); the redrive reads those records back from
// the stream (kinesis-mock), a KPL aggregate's user records de-aggregated,
// delivers each once in order, and empties the queue.
func TestRedriveLambdaMetadata(t *testing.T) {
	ks := standintest.Kinesis(t)
	moto := standintest.Moto(t)
	redriveEnv(t, moto.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	streamName := standintest.NewStream(t, ks.Endpoint, 2)
	kc := standintest.KinesisClient(ks.Endpoint)
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(streamName)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(sum.StreamDescriptionSummary.StreamARN)
	type put struct{ shard, seq, data string }
	var puts []put
	for i := range 30 {
		d := fmt.Sprintf("rec-%03d", i)
		out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(streamName), Data: []byte(d), PartitionKey: aws.String(fmt.Sprintf("key-%d", i%5))})
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, put{aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber), d})
		if i == 20 { // a KPL aggregate of 4 user records in the middle
			var urs []kpl.UserRecord
			for j := range 4 {
				urs = append(urs, kpl.UserRecord{PartitionKey: "agg", Data: []byte(fmt.Sprintf("agg-%d", j))})
			}
			agg, err := kpl.Aggregate(urs)
			if err != nil {
				t.Fatal(err)
			}
			out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(streamName), Data: agg, PartitionKey: aws.String("agg")})
			if err != nil {
				t.Fatal(err)
			}
			puts = append(puts, put{aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber), "agg"})
		}
	}
	// Per shard, one of Lambda's records for its records 2..7 and one for
	// 10 to the end; what they name is what must come back.
	byShard := map[string][]put{}
	for _, p := range puts {
		byShard[p.shard] = append(byShard[p.shard], p)
	}
	want := map[string]bool{}
	var bodies []string
	for shard, ps := range byShard {
		for _, r := range [][2]int{{2, 7}, {10, len(ps) - 1}} {
			if r[1] >= len(ps) || r[0] > r[1] {
				continue
			}
			for _, p := range ps[r[0] : r[1]+1] {
				if p.data == "agg" {
					for j := range 4 {
						want[fmt.Sprintf("agg-%d", j)] = true
					}
					continue
				}
				want[p.data] = true
			}
			bodies = append(bodies, lambdaOnFailure(shard, ps[r[0]].seq, ps[r[1]].seq, r[1]-r[0]+1, arn))
		}
	}
	if len(bodies) < 3 {
		t.Fatalf("%d ranges, want records on both shards", len(bodies))
	}
	env, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:failed", "Message": bodies[0]})
	bodies[0] = string(env)
	sc := standintest.SQSClient(moto.Endpoint)
	q, err := sc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(queueName(t))})
	if err != nil {
		t.Fatal(err)
	}
	url := aws.ToString(q.QueueUrl)
	for _, b := range bodies {
		if _, err := sc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder(func(string) bool { return false })
	rec.heal()
	out, logs, err := redriveCLI(t, ctx, rec.handle, "-from", url, "-kinesis-endpoint", ks.Endpoint)
	if err != nil {
		t.Fatalf("redrive: %v\n%s\n%s", err, out, logs)
	}
	checkRedriven(t, rec, want)
	if !strings.Contains(out, fmt.Sprintf("redrive: %d records handled", len(want))) {
		t.Errorf("summary:\n%s", out)
	}
	left, err := sc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	if err != nil || len(left.Messages) != 0 {
		t.Errorf("the queue still holds %d messages (%v)", len(left.Messages), err)
	}
}

// lambdaOnFailure is the record Lambda's event source mapping sends to an
// SQS or SNS on-failure destination: metadata only.
func lambdaOnFailure(shard, start, end string, n int, streamARN string) string {
	b, _ := json.Marshal(map[string]any{
		"requestContext": map[string]any{"requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81", "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:myfunction",
			"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
		"responseContext": map[string]any{"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
		"version":         "1.0", "timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"KinesisBatchInfo": map[string]any{"shardId": shard, "startSequenceNumber": start, "endSequenceNumber": end,
			"approximateArrivalOfFirstRecord": time.Now().UTC().Format(time.RFC3339Nano), "approximateArrivalOfLastRecord": time.Now().UTC().Format(time.RFC3339Nano),
			"batchSize": n, "streamArn": streamARN},
	})
	return string(b)
}
