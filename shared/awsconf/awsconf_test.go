package awsconf

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/smithy-go"
)

func TestPerServiceRoles(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	o := Options{Region: "eu-west-1", KinesisRoleARN: "arn:aws:iam::123456789012:role/reader", CloudWatchRoleARN: "arn:aws:iam::123456789012:role/metrics"}
	c, err := Load(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	assumes := func(p aws.CredentialsProvider) bool {
		return aws.IsCredentialsProvider(p, (*stscreds.AssumeRoleProvider)(nil))
	}
	if !assumes(c.Kinesis.Options().Credentials) {
		t.Error("Kinesis client does not assume -kinesis-role-arn")
	}
	if assumes(c.DynamoDB.Options().Credentials) {
		t.Error("DynamoDB client assumes a role though -dynamodb-role-arn is empty")
	}
	if !assumes(CloudWatchConfig(c, o).Credentials) {
		t.Error("CloudWatch configuration does not assume -cloudwatch-role-arn")
	}
	// The SDK retries a broken connection, never a throttle: the reader
	// applies retry-wait-time and retry-max-attempts to those.
	r := c.Kinesis.Options().Retryer
	throttle := &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}
	if r.IsErrorRetryable(throttle) {
		t.Error("the Kinesis client's own retryer retries throttling")
	}
	if !r.IsErrorRetryable(&net.OpError{Op: "dial", Err: errors.New("connection refused")}) {
		t.Error("the Kinesis client's own retryer does not retry a refused connection")
	}
	if c.Region != "eu-west-1" {
		t.Errorf("region = %q, want eu-west-1", c.Region)
	}
}

func TestEndpoints(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	c, err := Load(context.Background(), Options{Region: "us-east-1", KinesisEndpoint: "http://127.0.0.1:1", DynamoDBEndpoint: "http://127.0.0.1:2", LambdaEndpoint: "http://127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]*string{
		"http://127.0.0.1:1": c.Kinesis.Options().BaseEndpoint,
		"http://127.0.0.1:2": c.DynamoDB.Options().BaseEndpoint,
		"http://127.0.0.1:3": c.Lambda.Options().BaseEndpoint,
	} {
		if aws.ToString(got) != name {
			t.Errorf("endpoint = %q, want %q", aws.ToString(got), name)
		}
	}
	if !c.DynamoDB.Options().DisableValidateResponseChecksum {
		t.Error("DynamoDB with a local endpoint validates response checksums")
	}
}

func TestNoRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	if _, err := Load(context.Background(), Options{}); !errors.Is(err, ErrNoRegion) {
		t.Fatalf("Load without a region = %v, want ErrNoRegion", err)
	}
}

// TestDynamoDBRetriesThrottling: DynamoDB throttling is retried by the SDK
// with jittered exponential back-off, up to 10 attempts.
func TestDynamoDBRetriesThrottling(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	c, err := Load(context.Background(), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := c.DynamoDB.Options().Retryer
	for _, code := range []string{"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"} {
		if !r.IsErrorRetryable(&smithy.GenericAPIError{Code: code}) {
			t.Errorf("DynamoDB %s is not retried", code)
		}
	}
	if r.IsErrorRetryable(&smithy.GenericAPIError{Code: "ConditionalCheckFailedException"}) {
		t.Error("a failed condition (a lost lease) is retried")
	}
	if got := r.MaxAttempts(); got != 10 {
		t.Errorf("MaxAttempts = %d, want 10", got)
	}
	// Jitter: the delays for one attempt differ between draws (below the
	// 5 s cap; at the cap the SDK waits the cap).
	seen := map[time.Duration]bool{}
	for range 20 {
		d, err := r.RetryDelay(1, &smithy.GenericAPIError{Code: "ThrottlingException"})
		if err != nil {
			t.Fatal(err)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Error("retry delays have no jitter")
	}
}

// TestMaxAttempts: commands that make a few calls cap the attempts of
// every Kinesis and DynamoDB call; the services' own policies otherwise.
func TestMaxAttempts(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	c, err := Load(context.Background(), Options{Region: "us-east-1", MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DynamoDB.Options().Retryer.MaxAttempts(); got != 2 {
		t.Errorf("DynamoDB MaxAttempts = %d, want 2", got)
	}
	if got := c.Kinesis.Options().Retryer.MaxAttempts(); got != 2 {
		t.Errorf("Kinesis MaxAttempts = %d, want 2", got)
	}
	if c.Kinesis.Options().Retryer.IsErrorRetryable(&smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}) {
		t.Error("capping the attempts made the Kinesis client retry throttling")
	}
	for range 20 {
		d, err := c.DynamoDB.Options().Retryer.RetryDelay(1, &smithy.GenericAPIError{Code: "ThrottlingException"})
		if err != nil {
			t.Fatal(err)
		}
		if d > 200*time.Millisecond {
			t.Fatalf("DynamoDB waits %s before its second attempt, want at most 200ms", d)
		}
	}
}
