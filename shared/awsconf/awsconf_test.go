package awsconf

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/smithy-go"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
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

func localAWS(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_SESSION_TOKEN", "")
}

// TestLambdaClient: the Lambda client waits the function timeout (plus a
// slack) for an answer, never the SDK's 30 s, with no read timeout, and
// never re-sends an Invoke by itself, even with AWS_MAX_ATTEMPTS set; the
// Kinesis and DynamoDB clients keep their own policies.
func TestLambdaClient(t *testing.T) {
	localAWS(t)
	for _, tt := range []struct{ in, want time.Duration }{
		{0, 15*time.Minute + invokeSlack},
		{2 * time.Minute, 2*time.Minute + invokeSlack},
	} {
		c, err := Load(context.Background(), Options{Region: "us-east-1", InvokeTimeout: tt.in})
		if err != nil {
			t.Fatal(err)
		}
		lo := c.Lambda.Options()
		hc, ok := lo.HTTPClient.(*awshttp.BuildableClient)
		if !ok {
			t.Fatalf("Lambda HTTP client is a %T, want *awshttp.BuildableClient", lo.HTTPClient)
		}
		if got := hc.GetTimeout(); got != tt.want {
			t.Errorf("InvokeTimeout %s: Lambda client timeout %s, want %s", tt.in, got, tt.want)
		}
		if d, set := hc.GetReadTimeout(); !set || d != 0 {
			t.Errorf("Lambda client read timeout = %s (set %v), want none", d, set)
		}
		if got := lo.Retryer.MaxAttempts(); got != 1 {
			t.Errorf("Lambda client MaxAttempts = %d, want 1", got)
		}
		for _, err := range []error{
			&smithy.GenericAPIError{Code: "TooManyRequestsException"},
			&smithy.GenericAPIError{Code: "ServiceException"},
			&net.OpError{Op: "read", Err: os.ErrDeadlineExceeded},
		} {
			if lo.Retryer.IsErrorRetryable(err) {
				t.Errorf("the Lambda client retries %v", err)
			}
		}
		if got := c.DynamoDB.Options().Retryer.MaxAttempts(); got != 10 {
			t.Errorf("DynamoDB MaxAttempts = %d, want 10", got)
		}
		if got := c.Kinesis.Options().Retryer.MaxAttempts(); got != 3 {
			t.Errorf("Kinesis MaxAttempts = %d, want 3", got)
		}
		if hc, ok := c.Kinesis.Options().HTTPClient.(*awshttp.BuildableClient); !ok || hc.GetTimeout() != 30*time.Second {
			t.Errorf("the Kinesis client's HTTP timeout changed")
		}
	}
	t.Setenv("AWS_MAX_ATTEMPTS", "5")
	c, err := Load(context.Background(), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Lambda.Options().Retryer.MaxAttempts(); got != 1 {
		t.Errorf("with AWS_MAX_ATTEMPTS=5, the Lambda client's MaxAttempts = %d, want 1", got)
	}
	if _, err := Load(context.Background(), Options{Region: "us-east-1", InvokeTimeout: -time.Second}); err == nil ||
		!strings.Contains(err.Error(), "function-timeout -1s") {
		t.Errorf("Load with a negative InvokeTimeout: %v, want an error naming function-timeout", err)
	}
}

// TestInvokeOncePerAttempt: a function that runs longer than the Lambda
// client's timeout is invoked once per dispatch attempt: the SDK neither
// waits past InvokeTimeout nor re-sends the Invoke while the first still
// runs; the dispatcher retries it as a timed-out attempt, and logs it.
func TestInvokeOncePerAttempt(t *testing.T) {
	localAWS(t)
	defer func(s time.Duration) { invokeSlack = s }(invokeSlack)
	invokeSlack = 100 * time.Millisecond

	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the event, read as Lambda does
		if requests.Add(1) == 1 {
			select { // the first invocation runs on, far past the timeout
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("null"))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	c, err := Load(context.Background(), Options{Region: "us-east-1", LambdaEndpoint: srv.URL, InvokeTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var logs testwait.Buffer
	d, err := dispatch.New(dispatch.Config{
		Handler: invoke.Handler(c.Lambda, "consumer"), MaxRetryAttempts: 3,
		RetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := []stream.Record{{ShardID: "shardId-000000000000", SequenceNumber: "1", PartitionKey: "k", Data: []byte("x")}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var done []stream.Position
	if err := d.Deliver(ctx, nil, recs, func(p stream.Position) { done = append(done, p) }); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("%d Invoke requests, want 2: one per dispatch attempt", got)
	}
	want := dispatch.Stats{Batches: 2, Records: 2, Handled: 1, Failures: 1, Retries: 1, Timeouts: 1, HandledBytes: 1, FailedRecords: 1}
	got := d.Stats()
	if got.HandlerTime.Count != 2 {
		t.Errorf("%d handler calls timed, want 2", got.HandlerTime.Count)
	}
	got.HandlerTime = metrics.HistSnapshot{} // durations vary
	if got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	if len(done) != 1 {
		t.Errorf("done = %v, want the record", done)
	}
	if out := logs.String(); !strings.Contains(out, `"msg":"handler failed; retrying"`) || !strings.Contains(out, "Lambda client's timeout") {
		t.Errorf("no retry logged with the timeout:\n%s", out)
	}
}

// TestKeepsConnectionsPerShard: the shared HTTP client keeps enough idle
// connections per host for a worker holding hundreds of shards.
func TestKeepsConnectionsPerShard(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	c, err := Load(context.Background(), Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	hc, ok := c.Base.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client is %T", c.Base.HTTPClient)
	}
	if got := hc.GetTransport().MaxIdleConnsPerHost; got < 256 {
		t.Errorf("MaxIdleConnsPerHost = %d, want at least 256", got)
	}
}

// TestDestinationClients: the SQS, SNS and S3 clients take their endpoints
// from the SDK's own variables; S3 uses path-style addressing with one,
// virtual-hosted style without.
func TestDestinationClients(t *testing.T) {
	localAWS(t)
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
	}
	c, err := Load(context.Background(), Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.SQS == nil || c.SNS == nil || c.S3 == nil {
		t.Fatalf("clients SQS %v, SNS %v, S3 %v", c.SQS, c.SNS, c.S3)
	}
	if c.S3.Options().UsePathStyle || c.SQS.Options().BaseEndpoint != nil {
		t.Errorf("without endpoint variables: S3 path style %v, SQS endpoint %v", c.S3.Options().UsePathStyle, aws.ToString(c.SQS.Options().BaseEndpoint))
	}
	if c.SQS.Options().Region != "eu-west-1" {
		t.Errorf("SQS region %q", c.SQS.Options().Region)
	}
	t.Setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_SNS", "http://127.0.0.1:2")
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:3")
	c, err = Load(context.Background(), Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	for want, got := range map[string]*string{
		"http://127.0.0.1:1": c.SQS.Options().BaseEndpoint,
		"http://127.0.0.1:2": c.SNS.Options().BaseEndpoint,
		"http://127.0.0.1:3": c.S3.Options().BaseEndpoint,
	} {
		if aws.ToString(got) != want {
			t.Errorf("endpoint = %q, want %q", aws.ToString(got), want)
		}
	}
	if !c.S3.Options().UsePathStyle {
		t.Error("S3 with AWS_ENDPOINT_URL_S3 set: not path-style")
	}
}
