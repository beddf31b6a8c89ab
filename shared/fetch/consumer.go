package fetch

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/awserr"
)

// ConsumerAPI lists the Kinesis calls that find or register an enhanced
// fan-out consumer (a stream consumer, which SubscribeToShard reads
// through).
type ConsumerAPI interface {
	DescribeStreamConsumer(context.Context, *kinesis.DescribeStreamConsumerInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	RegisterStreamConsumer(context.Context, *kinesis.RegisterStreamConsumerInput, ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
}

var _ ConsumerAPI = (*kinesis.Client)(nil)

// ConsumerWait is how long EnsureConsumer and CheckConsumer wait for a
// consumer to become ACTIVE: after the first look, up to Tries more
// DescribeStreamConsumer calls, Interval apart. A throttled call
// (LimitExceededException: Kinesis allows 20 DescribeStreamConsumer and 5
// RegisterStreamConsumer calls a second) is made again the same way. The
// zero value is KCL's: 10 tries, 1s apart.
type ConsumerWait struct {
	Tries    int
	Interval time.Duration
}

func (o ConsumerWait) fill() ConsumerWait {
	if o.Tries <= 0 {
		o.Tries = 10
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	return o
}

// ConsumerStateError says that a consumer is not ACTIVE: still CREATING
// or DELETING after the wait, or (CheckConsumer) DELETING.
type ConsumerStateError struct {
	Name   string
	ARN    string
	Status types.ConsumerStatus
	Waited time.Duration // 0: not waited for
}

func (e *ConsumerStateError) Error() string {
	if e.Waited == 0 {
		return fmt.Sprintf("consumer %s (%s) is %s, not ACTIVE", e.Name, e.ARN, e.Status)
	}
	return fmt.Sprintf("consumer %s (%s) is still %s after %s of waiting for it to be ACTIVE", e.Name, e.ARN, e.Status, e.Waited.Round(time.Millisecond))
}

// EnsureConsumer returns the ARN of the ACTIVE consumer called name of
// the stream, registering it if it does not exist, as KCL does:
// DescribeStreamConsumer(StreamARN, ConsumerName); when it is not found,
// RegisterStreamConsumer (a ResourceInUseException there is another worker
// registering it at the same moment: it is described again); then it is
// described until ACTIVE (opt). A consumer still CREATING or DELETING
// (being deleted: once gone it is registered anew) after the wait is a
// *ConsumerStateError; any other failure (access denied, no such stream)
// comes back wrapped with the consumer's name.
func EnsureConsumer(ctx context.Context, api ConsumerAPI, streamARN, name string, opt ConsumerWait) (consumerARN string, err error) {
	if err := ValidConsumerName(name); err != nil {
		return "", fmt.Errorf("consumer name %w", err)
	}
	byName := &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)}
	c, err := untilActive(ctx, opt, func() (consumer, error) {
		c, err := describeConsumer(ctx, api, byName)
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			return c, err
		}
		out, err := api.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)})
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &inUse):
			return describeConsumer(ctx, api, byName)
		case err != nil:
			return consumer{name: name}, err
		}
		return consumer{name: name, arn: aws.ToString(out.Consumer.ConsumerARN), status: out.Consumer.ConsumerStatus}, nil
	})
	if err != nil {
		return "", consumerError(name, err)
	}
	return c.arn, nil
}

// CheckConsumer checks that the consumer consumerARN exists, is a consumer
// of the stream streamARN, and is ACTIVE, waiting (opt) while it is
// CREATING; it never registers one. A DELETING consumer is a
// *ConsumerStateError at once: it will not be ACTIVE again.
func CheckConsumer(ctx context.Context, api ConsumerAPI, streamARN, consumerARN string, opt ConsumerWait) error {
	if _, err := ConsumerARNStream(consumerARN); err != nil {
		return fmt.Errorf("consumer ARN %w", err)
	}
	byARN := &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(consumerARN)}
	_, err := untilActive(ctx, opt, func() (consumer, error) {
		c, err := describeConsumer(ctx, api, byARN)
		switch {
		case err != nil:
			return c, err
		case c.stream != streamARN:
			return c, fmt.Errorf("a consumer of stream %s, not of %s", c.stream, streamARN)
		case c.status == types.ConsumerStatusDeleting:
			return c, &ConsumerStateError{Name: c.name, ARN: c.arn, Status: c.status}
		}
		return c, nil
	})
	if err != nil {
		return consumerError(consumerARN, err)
	}
	return nil
}

// consumer is what a DescribeStreamConsumer or RegisterStreamConsumer
// said of a consumer.
type consumer struct {
	name, arn, stream string
	status            types.ConsumerStatus
}

func describeConsumer(ctx context.Context, api ConsumerAPI, in *kinesis.DescribeStreamConsumerInput) (consumer, error) {
	out, err := api.DescribeStreamConsumer(ctx, in)
	if err != nil {
		return consumer{name: aws.ToString(in.ConsumerName), arn: aws.ToString(in.ConsumerARN)}, err
	}
	d := out.ConsumerDescription
	return consumer{name: aws.ToString(d.ConsumerName), arn: aws.ToString(d.ConsumerARN), stream: aws.ToString(d.StreamARN), status: d.ConsumerStatus}, nil
}

// untilActive calls look until the consumer it finds is ACTIVE: one
// CREATING or DELETING, or a throttled call, is looked at again after
// opt.Interval, at most opt.Tries times. Another error ends it at once.
func untilActive(ctx context.Context, opt ConsumerWait, look func() (consumer, error)) (consumer, error) {
	opt = opt.fill()
	start := time.Now()
	for try := 0; ; try++ {
		c, err := look()
		switch {
		case err != nil && !IsThrottle(err):
			return c, err
		case err == nil && c.status == types.ConsumerStatusActive:
			return c, nil
		case try < opt.Tries:
			if err := sleepUntil(ctx, time.Now().Add(opt.Interval)); err != nil {
				return c, err
			}
		case err != nil:
			return c, fmt.Errorf("still throttled after %d tries: %w", try+1, awserr.Explain(err))
		default:
			return c, &ConsumerStateError{Name: c.name, ARN: c.arn, Status: c.status, Waited: time.Since(start)}
		}
	}
}

// consumerError names the consumer in err, said as awserr says it; a
// *ConsumerStateError names it already.
func consumerError(consumer string, err error) error {
	var se *ConsumerStateError
	if errors.As(err, &se) {
		return err
	}
	return fmt.Errorf("consumer %s: %w", consumer, awserr.Explain(err))
}

// awsName is the rule of stream and consumer names: 1–128 letters,
// digits, '_', '.' or '-'.
var awsName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// ValidConsumerName checks name against AWS's rule for consumer names:
// 1–128 characters of a-z, A-Z, 0-9, '_', '.' and '-'. The error names
// the value and the rule.
func ValidConsumerName(name string) error {
	if !awsName.MatchString(name) {
		return fmt.Errorf("%q: allowed 1–128 characters of a-z, A-Z, 0-9, _ . - (AWS's rule for consumer names)", name)
	}
	return nil
}

// ConsumerARNStream returns the ARN of the stream a consumer ARN
// (arn:PARTITION:kinesis:REGION:ACCOUNT:stream/STREAM/consumer/NAME:EPOCH)
// belongs to. It makes no call; the error names the value and the form.
func ConsumerARNStream(arn string) (streamARN string, err error) {
	bad := fmt.Errorf("%q: allowed a consumer ARN such as arn:aws:kinesis:us-east-1:123456789012:stream/STREAM/consumer/NAME:1525898737", arn)
	p := strings.Split(arn, ":")
	if len(p) != 7 || p[0] != "arn" || !partition.MatchString(p[1]) || p[2] != "kinesis" ||
		!region.MatchString(p[3]) || !account.MatchString(p[4]) || !epoch.MatchString(p[6]) {
		return "", bad
	}
	r := strings.Split(p[5], "/")
	if len(r) != 4 || r[0] != "stream" || r[2] != "consumer" || !awsName.MatchString(r[1]) || !awsName.MatchString(r[3]) {
		return "", bad
	}
	return strings.Join(p[:5], ":") + ":stream/" + r[1], nil
}

var (
	partition = regexp.MustCompile(`^aws[a-z-]*$`)
	region    = regexp.MustCompile(`^[a-z0-9-]+$`)
	account   = regexp.MustCompile(`^[0-9]{12}$`)
	epoch     = regexp.MustCompile(`^[0-9]+$`)
)
