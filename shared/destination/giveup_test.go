package destination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

func TestMain(m *testing.M) {
	standintest.Main(m)
}

// TestGiveUpToSQS: a batch the dispatcher gives up goes to the queue
// -on-failure names, and only then is it reported done (checkpointed); a
// queue that does not exist refuses it, the error names the queue, and
// nothing is reported done.
func TestGiveUpToSQS(t *testing.T) {
	moto := standintest.Moto(t)
	c := standintest.SQSClient(moto.Endpoint)
	ctx := context.Background()
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(standintest.UniqueName(t))})
	if err != nil {
		t.Fatal(err)
	}
	shard := "shardId-000000000007"
	var recs []stream.Record
	for i := range 5 {
		recs = append(recs, stream.Record{ShardID: shard, SequenceNumber: fmt.Sprintf("4966%052d", i), PartitionKey: "k",
			Data: []byte(fmt.Sprint(i)), ApproximateArrivalTimestamp: time.Now()})
	}
	failing := func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, errors.New("always")
	}
	deliver := func(raw string) ([]stream.Position, error) {
		dest, err := Parse(raw, "orders-app", Clients{SQS: c})
		if err != nil {
			t.Fatal(err)
		}
		d, err := dispatch.New(dispatch.Config{Handler: failing, MaxRetryAttempts: 1, RetryBackoff: time.Millisecond,
			Source: stream.Source{StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/orders"}, OnFailure: dest})
		if err != nil {
			t.Fatal(err)
		}
		var done []stream.Position
		err = d.Deliver(ctx, nil, recs, func(p stream.Position) { done = append(done, p) })
		return done, err
	}

	done, err := deliver(aws.ToString(q.QueueUrl))
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(done) != 1 || done[0] != recs[4].Position() {
		t.Errorf("done = %v, want the last record once the queue has the batch", done)
	}
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("%d messages, want 1", len(out.Messages))
	}
	var r record.Record
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &r); err != nil {
		t.Fatal(err)
	}
	if r.RequestContext.Condition != "RetryAttemptsExhausted" || r.RequestContext.ApproximateInvokeCount != 2 ||
		r.ResponseContext == nil || r.ResponseContext.FunctionError != "Unhandled" || len(r.Records) != 5 ||
		r.KinesisBatchInfo.StreamARN != "arn:aws:kinesis:us-east-1:123456789012:stream/orders" {
		t.Errorf("record = %s", aws.ToString(out.Messages[0].Body))
	}

	missing := "arn:aws:sqs:us-east-1:" + standin.MotoAccountID + ":no-such-queue"
	done, err = deliver(missing)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "on-failure destination") {
		t.Errorf("Deliver to a missing queue: %v, want an error naming it", err)
	}
	if len(done) != 0 {
		t.Errorf("done = %v after the destination refused", done)
	}
}
