package coordinator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/testwait"
)

// TestConsumerSettings: New refuses both consumer settings at once, a
// consumer name AWS would refuse, and an ARN that is not a consumer's,
// naming the setting and the value.
func TestConsumerSettings(t *testing.T) {
	arn := "arn:aws:kinesis:us-east-1:123456789012:stream/words/consumer/efo:1525898737"
	h := func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}
	for _, tt := range []struct {
		name, arn string
		want      []string
	}{
		{"efo", arn, []string{`consumer-name "efo" and consumer-arn "` + arn + `": allowed one of them`}},
		{"my efo", "", []string{`consumer-name "my efo": allowed 1–128`}},
		{"", "arn:aws:kinesis:us-east-1:123456789012:stream/words", []string{`consumer-arn "arn:aws:kinesis:us-east-1:123456789012:stream/words": allowed a consumer ARN`}},
	} {
		_, err := coordinator.New(coordinator.Config{AppName: "app", StreamName: "words", Handler: h, ConsumerName: tt.name, ConsumerARN: tt.arn})
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("New(ConsumerName %q, ConsumerARN %q) = %v, want %q", tt.name, tt.arn, err, w)
			}
		}
	}
}

// TestConsumerAtStart: a worker with ConsumerName registers the consumer
// on kinesis-mock before its first lease round and logs it; a second
// with its ARN finds it without registering; one with the ARN of a
// consumer that does not exist stops at once, naming it, before it makes
// a lease table.
func TestConsumerAtStart(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	name := "efo-" + f.app
	var logs testwait.Buffer
	first := f.start(new(collector).handle, func(c *coordinator.Config) { logTo(&logs)(c); c.ConsumerName = name })
	testwait.Until(t, 30*time.Second, "the worker started", func() bool { return lines(&logs, `"msg":"worker started"`) == 1 })
	if lines(&logs, `"msg":"enhanced fan-out consumer ready"`, `"consumer":"`+name+`"`) != 1 {
		t.Errorf("no line of the consumer %s:\n%s", name, logs.String())
	}
	sum, err := f.kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(f.stream)})
	if err != nil {
		t.Fatal(err)
	}
	streamARN := aws.ToString(sum.StreamDescriptionSummary.StreamARN)
	out, err := f.kinesis.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)})
	if err != nil {
		t.Fatalf("the consumer %s of %s: %v", name, streamARN, err)
	}
	arn := aws.ToString(out.ConsumerDescription.ConsumerARN)
	if st := out.ConsumerDescription.ConsumerStatus; st != types.ConsumerStatusActive {
		t.Errorf("consumer %s is %s, want ACTIVE", arn, st)
	}
	if lines(&logs, `"consumerARN":"`+arn+`"`) != 1 {
		t.Errorf("the line does not give the consumer's ARN %s:\n%s", arn, logs.String())
	}
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}

	var logs2 testwait.Buffer
	second := f.start(new(collector).handle, func(c *coordinator.Config) { logTo(&logs2)(c); c.ConsumerARN = arn })
	testwait.Until(t, 30*time.Second, "the worker started", func() bool { return lines(&logs2, `"msg":"worker started"`) == 1 })
	if lines(&logs2, `"msg":"enhanced fan-out consumer ready"`, `"consumer":"`+name+`"`, `"consumerARN":"`+arn+`"`) != 1 {
		t.Errorf("no line of the consumer %s (%s):\n%s", name, arn, logs2.String())
	}
	if err := second.stop(t); err != nil {
		t.Fatal(err)
	}

	missing := streamARN + "/consumer/nope:1700000000"
	g := newFixture(t, 1) // a lease table of its own
	g.stream = f.stream
	third := g.start(new(collector).handle, func(c *coordinator.Config) { c.ConsumerARN = missing })
	err = third.returned(t, 30*time.Second, "Run did not return within 30s")
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "consumer "+missing+": does not exist") {
		t.Errorf("Run = %v, want the consumer %s does not exist", err, missing)
	}
	if ls := g.leases(); len(ls) > 0 {
		t.Errorf("a lease table with %d leases, want none", len(ls))
	}
}
