package destination

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/stream"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in, want string // want: the destination's String, or "" for an error
	}{
		{"file:///var/log/failed.jsonl", "file:///var/log/failed.jsonl"},
		{"s3://failed-batches/orders", "S3 location s3://failed-batches/orders"},
		{"https://sqs.us-east-1.amazonaws.com/123456789012/failed", "SQS queue https://sqs.us-east-1.amazonaws.com/123456789012/failed"},
		{"arn:aws:sqs:us-east-1:123456789012:failed", "SQS queue arn:aws:sqs:us-east-1:123456789012:failed"},
		{"arn:aws:sns:us-east-1:123456789012:failed", "SNS topic arn:aws:sns:us-east-1:123456789012:failed"},
		{"", ""},
		{"/var/log/failed.jsonl", ""},
		{"ftp://host/x", ""},
		{"arn:aws:s3:::bucket", ""},
		{"arn:aws:lambda:us-east-1:123456789012:function:f", ""},
		{"arn:aws:sqs", ""},
		{"file://relative.jsonl", ""},
		{"s3://B", ""},
		{"https://sqs.us-east-1.amazonaws.com/failed", ""},
		{"arn:aws:sns:us-east-1:123456789012", ""},
	} {
		d, err := Parse(tt.in, "app", Clients{})
		if tt.want == "" {
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)) || !strings.Contains(err.Error(), "allowed") {
				t.Errorf("Parse(%q) = %v, %v; want an error naming the value and what is allowed", tt.in, d, err)
			}
			if Check(tt.in) == nil {
				t.Errorf("Check(%q) = nil", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := fmt.Sprint(d); got != tt.want {
			t.Errorf("Parse(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if err := Check(tt.in); err != nil {
			t.Errorf("Check(%q): %v", tt.in, err)
		}
	}
	if _, err := Parse("ftp://x", "app", Clients{}); err == nil || !strings.Contains(err.Error(), Forms) {
		t.Errorf("an unknown form: %v, want the forms listed", err)
	}
}

// fakeSQS and co. record the calls they get.
type fakeSQS struct{ calls int }

func (f *fakeSQS) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.calls++
	return &sqs.SendMessageOutput{}, nil
}

type fakeSNS struct{ calls int }

func (f *fakeSNS) Publish(context.Context, *sns.PublishInput, ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.calls++
	return &sns.PublishOutput{}, nil
}

type fakeS3 struct{ keys []string }

func (f *fakeS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	f.keys = append(f.keys, *in.Key)
	return &s3.PutObjectOutput{}, nil
}

// TestWiring: each form sends with its own client; the app name is in S3
// keys; a destination whose client is missing refuses, naming it.
func TestWiring(t *testing.T) {
	q, n, b := &fakeSQS{}, &fakeSNS{}, &fakeS3{}
	c := Clients{SQS: q, SNS: n, S3: b}
	f := dispatch.Failure{ShardID: "shardId-000000000001", Records: []stream.Record{{ShardID: "shardId-000000000001", SequenceNumber: "1"}}}
	for _, raw := range []string{"arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:sns:us-east-1:123456789012:t", "s3://bucket/p"} {
		d, err := Parse(raw, "orders-app", c)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Send(context.Background(), f); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
		d, _ = Parse(raw, "orders-app", Clients{})
		if err := d.Send(context.Background(), f); err == nil || !strings.Contains(err.Error(), "no S") {
			t.Errorf("%s without its client: %v", raw, err)
		}
	}
	if q.calls != 1 || n.calls != 1 || len(b.keys) != 1 || !strings.HasPrefix(b.keys[0], "p/orders-app/shardId-000000000001/") {
		t.Errorf("calls: SQS %d, SNS %d, S3 %v", q.calls, n.calls, b.keys)
	}
}

// TestParseDiscard: -on-failure discard is Lambda's no-destination
// behaviour, dispatch.Discard.
func TestParseDiscard(t *testing.T) {
	d, err := Parse("discard", "app", Clients{})
	if err != nil || d != dispatch.Discard {
		t.Fatalf("Parse(discard) = %v, %v; want dispatch.Discard", d, err)
	}
	if err := Check("Discard"); err == nil {
		t.Error("Check(Discard) = nil: the value is lower case")
	}
}
