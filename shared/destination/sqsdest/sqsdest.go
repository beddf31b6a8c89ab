package sqsdest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/shardline/shardline/shared/awserr"
	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
)

// API is the SQS call the destination makes.
type API interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

var _ API = (*sqs.Client)(nil)

// Forms are the forms of a queue, for error messages.
const Forms = "an SQS queue URL (https://sqs.us-east-1.amazonaws.com/123456789012/name) or ARN (arn:aws:sqs:us-east-1:123456789012:name)"

// Queue is a parsed queue.
type Queue struct {
	ARN    string // as given; "" for a queue given by URL
	URL    string
	Region string // "" when the URL does not say: the client's region
	Name   string
	FIFO   bool
}

var (
	queueName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	accountID = regexp.MustCompile(`^[0-9]{12}$`)
	// Hosts that name the region: sqs.<region>.amazonaws.com[.cn],
	// sqs.<region>.api.aws, and the legacy <region>.queue.amazonaws.com.
	regionHost = []*regexp.Regexp{
		regexp.MustCompile(`^sqs\.([a-z0-9-]+)\.(?:amazonaws\.com(?:\.cn)?|api\.aws)$`),
		regexp.MustCompile(`^([a-z0-9-]+)\.queue\.amazonaws\.com(?:\.cn)?$`),
	}
)

// dnsSuffix is the domain of SQS endpoints in a partition.
var dnsSuffix = map[string]string{
	"aws":        "amazonaws.com",
	"aws-us-gov": "amazonaws.com",
	"aws-cn":     "amazonaws.com.cn",
}

// ParseQueue reads a queue URL (any http or https URL whose path is
// /<12-digit account>/<queue name>, so a local stand-in's URL works too)
// or a queue ARN.
func ParseQueue(raw string) (Queue, error) {
	if strings.HasPrefix(raw, "arn:") {
		return parseARN(raw)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return Queue{}, fmt.Errorf("%q: allowed %s", raw, Forms)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 2 || !accountID.MatchString(parts[0]) {
		return Queue{}, fmt.Errorf("%q: a queue URL's path is /<12-digit account id>/<queue name>; allowed %s", raw, Forms)
	}
	q := Queue{URL: raw, Name: parts[1]}
	if err := q.checkName(raw); err != nil {
		return Queue{}, err
	}
	for _, re := range regionHost {
		if m := re.FindStringSubmatch(u.Hostname()); m != nil {
			q.Region = m[1]
		}
	}
	if u.Hostname() == "queue.amazonaws.com" {
		q.Region = "us-east-1"
	}
	return q, nil
}

func parseARN(raw string) (Queue, error) {
	f := strings.Split(raw, ":")
	if len(f) != 6 || f[2] != "sqs" || f[3] == "" || !accountID.MatchString(f[4]) {
		return Queue{}, fmt.Errorf("%q: allowed %s", raw, Forms)
	}
	suffix, ok := dnsSuffix[f[1]]
	if !ok {
		return Queue{}, fmt.Errorf("%q: partition %s: give the queue's URL instead; allowed %s", raw, f[1], Forms)
	}
	q := Queue{
		URL: fmt.Sprintf("https://sqs.%s.%s/%s/%s", f[3], suffix, f[4], f[5]),
		ARN: raw, Region: f[3], Name: f[5],
	}
	return q, q.checkName(raw)
}

func (q *Queue) checkName(raw string) error {
	name, fifo := strings.CutSuffix(q.Name, ".fifo")
	if !queueName.MatchString(name) || len(q.Name) > 80 {
		return fmt.Errorf("%q: queue name %q: allowed 1–80 letters, digits, '-' and '_' (a FIFO queue's ending in .fifo)", raw, q.Name)
	}
	q.FIFO = fifo
	return nil
}

// Destination sends records to a queue.
type Destination struct {
	queue  Queue
	client API
	limit  int // most bytes per message
}

var _ dispatch.Destination = (*Destination)(nil)

// New returns the destination for q. A nil client makes every Send fail.
func New(q Queue, client API) *Destination {
	return &Destination{queue: q, client: client, limit: record.MaxMessageBytes}
}

// String names the queue as it was given.
func (d *Destination) String() string {
	if d.queue.ARN != "" {
		return "SQS queue " + d.queue.ARN
	}
	return "SQS queue " + d.queue.URL
}

// Send sends f's record in as many messages as it takes and returns once
// SQS has accepted them all.
func (d *Destination) Send(ctx context.Context, f dispatch.Failure) error {
	if d.client == nil {
		return fmt.Errorf("%s: no SQS client", d)
	}
	msgs, err := record.Split(record.New(f), d.limit)
	if err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	for i, m := range msgs {
		in := &sqs.SendMessageInput{QueueUrl: aws.String(d.queue.URL), MessageBody: aws.String(string(m))}
		if d.queue.FIFO {
			in.MessageGroupId = aws.String(f.ShardID)
			in.MessageDeduplicationId = aws.String(record.DeduplicationID(f, i+1, len(msgs)))
		}
		if _, err := d.client.SendMessage(ctx, in, d.region); err != nil {
			return fmt.Errorf("%s: %w", d, d.failed(err, i+1, len(msgs)))
		}
	}
	return nil
}

func (d *Destination) region(o *sqs.Options) {
	if d.queue.Region != "" {
		o.Region = d.queue.Region
	}
}

// failed says which message failed, with the SDK's error in one line.
func (d *Destination) failed(err error, part, parts int) error {
	what := "send the record"
	if parts > 1 {
		what = fmt.Sprintf("send message %d of %d", part, parts)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, awserr.Explain(err))
}
