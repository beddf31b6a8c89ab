package snsdest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/shardline/shardline/shared/awserr"
	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
)

// API is the SNS call the destination makes.
type API interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ API = (*sns.Client)(nil)

// Form is the form of a topic, for error messages.
const Form = "an SNS topic ARN (arn:aws:sns:us-east-1:123456789012:name)"

// Topic is a parsed topic ARN.
type Topic struct {
	ARN    string
	Region string
	Name   string
	FIFO   bool
}

var (
	topicName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)
	accountID = regexp.MustCompile(`^[0-9]{12}$`)
)

// ParseTopic reads a topic ARN.
func ParseTopic(raw string) (Topic, error) {
	f := strings.Split(raw, ":")
	if len(f) != 6 || f[0] != "arn" || f[1] == "" || f[2] != "sns" || f[3] == "" || !accountID.MatchString(f[4]) {
		return Topic{}, fmt.Errorf("%q: allowed %s", raw, Form)
	}
	name, fifo := strings.CutSuffix(f[5], ".fifo")
	if !topicName.MatchString(name) || len(f[5]) > 256 {
		return Topic{}, fmt.Errorf("%q: topic name %q: allowed 1–256 letters, digits, '-' and '_' (a FIFO topic's ending in .fifo)", raw, f[5])
	}
	return Topic{ARN: raw, Region: f[3], Name: f[5], FIFO: fifo}, nil
}

// Destination publishes records to a topic.
type Destination struct {
	topic  Topic
	client API
	limit  int // most bytes per message
}

var _ dispatch.Destination = (*Destination)(nil)

// New returns the destination for t. A nil client makes every Send fail.
func New(t Topic, client API) *Destination {
	return &Destination{topic: t, client: client, limit: record.MaxMessageBytes}
}

func (d *Destination) String() string { return "SNS topic " + d.topic.ARN }

// Send publishes f's record in as many messages as it takes and returns
// once SNS has accepted them all.
func (d *Destination) Send(ctx context.Context, f dispatch.Failure) error {
	if d.client == nil {
		return fmt.Errorf("%s: no SNS client", d)
	}
	msgs, err := record.Split(record.New(f), d.limit)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	for i, m := range msgs {
		in := &sns.PublishInput{TopicArn: aws.String(d.topic.ARN), Message: aws.String(string(m))}
		if d.topic.FIFO {
			in.MessageGroupId = aws.String(f.ShardID)
			in.MessageDeduplicationId = aws.String(record.DeduplicationID(f, i+1, len(msgs)))
		}
		if _, err := d.client.Publish(ctx, in, d.region); err != nil {
			return fmt.Errorf("%s: %w", d, failed(err, i+1, len(msgs)))
		}
	}
	return nil
}

func (d *Destination) region(o *sns.Options) { o.Region = d.topic.Region }

// failed says which message failed, with the SDK's error in one line.
func failed(err error, part, parts int) error {
	what := "publish the record"
	if parts > 1 {
		what = fmt.Sprintf("publish message %d of %d", part, parts)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, awserr.Explain(err))
}
