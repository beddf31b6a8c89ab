package fetch

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/standin/standintest"
)

// countingConsumers counts the registrations made through it.
type countingConsumers struct {
	ConsumerAPI
	registers atomic.Int32
}

func (c *countingConsumers) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, o ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	c.registers.Add(1)
	return c.ConsumerAPI.RegisterStreamConsumer(ctx, in, o...)
}

// TestConsumerOnStandins: on kinesis-mock and on moto_server, EnsureConsumer
// registers a consumer that is then ACTIVE; a second EnsureConsumer
// returns the same ARN without registering again; CheckConsumer accepts
// it, and refuses a consumer that does not exist, naming it. moto's
// consumer ARNs lack AWS's ":EPOCH" end (…/consumer/NAME): CheckConsumer
// refuses them as AWS would, without a call.
func TestConsumerOnStandins(t *testing.T) {
	for _, sv := range []struct {
		name     string
		endpoint func(*testing.T) string
		noEpoch  bool // the consumer ARNs it makes lack ":EPOCH"
	}{
		{"kinesis-mock", func(t *testing.T) string { return standintest.Kinesis(t).Endpoint }, false},
		{"moto", func(t *testing.T) string { return standintest.Moto(t).Endpoint }, true},
	} {
		t.Run(sv.name, func(t *testing.T) {
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			ep := sv.endpoint(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			name := standintest.NewStream(t, ep, 1)
			kc := standintest.KinesisClient(ep)
			sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			streamARN := aws.ToString(sum.StreamDescriptionSummary.StreamARN)
			api := &countingConsumers{ConsumerAPI: kc}
			wait := ConsumerWait{Tries: 100, Interval: 50 * time.Millisecond}

			arn, err := EnsureConsumer(ctx, api, streamARN, "efo-"+name, wait)
			if err != nil {
				t.Fatalf("EnsureConsumer: %v", err)
			}
			if api.registers.Load() != 1 {
				t.Errorf("%d registrations, want 1", api.registers.Load())
			}
			out, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
			if err != nil {
				t.Fatal(err)
			}
			if d := out.ConsumerDescription; d.ConsumerStatus != types.ConsumerStatusActive || aws.ToString(d.ConsumerName) != "efo-"+name ||
				aws.ToString(d.StreamARN) != streamARN {
				t.Errorf("consumer %s is %s, named %s, of %s: want ACTIVE, efo-%s, of %s", arn, d.ConsumerStatus,
					aws.ToString(d.ConsumerName), aws.ToString(d.StreamARN), name, streamARN)
			}
			got, err := ConsumerARNStream(arn)
			switch {
			case sv.noEpoch && (err == nil || arn != streamARN+"/consumer/efo-"+name):
				t.Errorf("%s made consumer ARN %s (ConsumerARNStream: %q, %v), want one without \":EPOCH\" (the quirk this test knows)", sv.name, arn, got, err)
			case !sv.noEpoch && (err != nil || got != streamARN):
				t.Errorf("ConsumerARNStream(%s) = %q, %v; want %s", arn, got, err, streamARN)
			}

			again, err := EnsureConsumer(ctx, api, streamARN, "efo-"+name, wait)
			if err != nil || again != arn || api.registers.Load() != 1 {
				t.Errorf("second EnsureConsumer = %q, %v after %d registrations in all; want %s after 1", again, err, api.registers.Load(), arn)
			}

			switch err := CheckConsumer(ctx, api, streamARN, arn, wait); {
			case sv.noEpoch && (err == nil || !strings.Contains(err.Error(), "allowed a consumer ARN such as")):
				t.Errorf("CheckConsumer(%s) = %v, want the ARN refused for its form", arn, err)
			case !sv.noEpoch && err != nil:
				t.Errorf("CheckConsumer(%s): %v", arn, err)
			}
			missing := streamARN + "/consumer/nope:1700000000"
			err = CheckConsumer(ctx, api, streamARN, missing, wait)
			var nf *types.ResourceNotFoundException
			if !errors.As(err, &nf) || !strings.Contains(err.Error(), "consumer "+missing+": does not exist") {
				t.Errorf("CheckConsumer(%s) = %v, want does not exist, naming it", missing, err)
			}
			if api.registers.Load() != 1 {
				t.Errorf("CheckConsumer registered: %d registrations in all, want 1", api.registers.Load())
			}
		})
	}
}
