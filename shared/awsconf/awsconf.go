package awsconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Options are the AWS settings. Empty fields use the SDK's defaults (the
// default credential chain, AWS_REGION, the public endpoints).
type Options struct {
	Region           string
	KinesisEndpoint  string
	DynamoDBEndpoint string
	LambdaEndpoint   string

	KinesisRoleARN    string
	DynamoDBRoleARN   string
	CloudWatchRoleARN string
	SessionName       string // for assumed roles; default "shardline"
	// InvokeTimeout is the longest one Lambda Invoke may take (the target
	// function's timeout); default 15m. The Lambda client's HTTP timeout
	// is InvokeTimeout plus a slack (15 s).
	InvokeTimeout time.Duration
	// MaxAttempts, when above 0, caps the attempts per Kinesis and
	// DynamoDB call, with at most 200ms between them (each service's own
	// policy otherwise: DynamoDB waits up to 5s): commands that make a few
	// calls and end use 2, so that an endpoint that does not answer is
	// reported at once.
	MaxAttempts int
	// Logger, when set, receives the SDK's own messages (its warnings at
	// WARN, component=aws-sdk); nil leaves the SDK's default (stderr).
	Logger *slog.Logger
	// LogRetries asks the SDK to log each retry it makes (at DEBUG, through
	// Logger): the only ClientLogMode Load ever sets. Requests and
	// responses, which carry the signature and the session token, are
	// never logged.
	LogRetries bool
}

// ErrNoRegion means neither Options.Region nor the AWS configuration
// (AWS_REGION, the config file) names a region.
var ErrNoRegion = errors.New("region is not set")

// DefaultInvokeTimeout is Lambda's longest function timeout.
const DefaultInvokeTimeout = 15 * time.Minute

// invokeSlack is what the Lambda client waits beyond InvokeTimeout: a
// cold start's init phase (up to 10 s, not counted in the function
// timeout) and the network. A variable for tests.
var invokeSlack = 15 * time.Second

// Clients are the service clients built from Options.
type Clients struct {
	Region  string
	Base    aws.Config // default chain; for other services (CloudWatch)
	Kinesis *kinesis.Client
	// KinesisFanOut is Kinesis for SubscribeToShard (enhanced fan-out):
	// the same endpoint, credentials and retries over a client with no
	// overall timeout (a subscription streams for 5 minutes), HTTP/2 over
	// TLS as AWS requires, each stream's receive buffer bounded by
	// FanOutStreamBuffer so that a shard whose handler is slow holds at
	// most that much unread (HTTP/2 flow control holds the rest back at
	// Kinesis). A plain http:// endpoint (the local stand-ins) is HTTP/1.1.
	KinesisFanOut *kinesis.Client
	DynamoDB      *dynamodb.Client
	Lambda        *lambda.Client
	// SQS, SNS and S3 send to the on-failure destinations, with the
	// default credentials and the SDK's own retries; their endpoints come
	// from AWS_ENDPOINT_URL_SQS, _SNS and _S3 (or AWS_ENDPOINT_URL) as the
	// SDK defines them. S3 uses path-style addressing when an endpoint is
	// set (local stand-ins serve no bucket host names).
	SQS *sqs.Client
	SNS *sns.Client
	S3  *s3.Client
}

// FanOutStreamBuffer is how much of one subscription's stream the client
// takes ahead of its reader (HTTP/2 flow control holds the rest at
// Kinesis): at 20 ms from Kinesis, 64 KiB a round trip is 3.2 MB/s, more
// than a shard's 2 MB/s of enhanced fan-out (in a region, a round trip is
// a few ms); and a worker holding 100 shards holds at most 6.4 MB so.
const FanOutStreamBuffer = 64 << 10

// Load builds the clients. The Kinesis client retries only broken
// connections by itself: the reader applies retry-wait-time and
// retry-max-attempts to throttling. DynamoDB
// throttling is retried by the SDK with jittered exponential back-off.
// The Lambda client never re-sends an Invoke by itself (one attempt; a
// re-sent Invoke would run the function again while the first may still
// run) and waits InvokeTimeout plus a slack for an answer: every
// re-invocation is the dispatcher's, logged and counted.
func Load(ctx context.Context, o Options) (*Clients, error) {
	switch {
	case o.InvokeTimeout == 0:
		o.InvokeTimeout = DefaultInvokeTimeout
	case o.InvokeTimeout < 0:
		return nil, fmt.Errorf("function-timeout %s: must be positive", o.InvokeTimeout)
	}
	opts := []func(*config.LoadOptions) error{
		// One kept-alive connection per shard reader and lease writer: with
		// the default of 10 idle connections per host, a worker holding
		// many shards would open (and on AWS, handshake) a new connection
		// for most calls.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(30 * time.Second).
			WithTransportOptions(func(t *http.Transport) {
				t.MaxIdleConns = 1024
				t.MaxIdleConnsPerHost = 512
			})),
	}
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Logger != nil {
		var mode aws.ClientLogMode // nothing unless asked
		if o.LogRetries {
			mode = aws.LogRetries
		}
		opts = append(opts, config.WithLogger(sdkLogger{log: o.Logger}), config.WithClientLogMode(mode))
	}
	base, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if base.Region == "" {
		return nil, ErrNoRegion
	}
	if o.SessionName == "" {
		o.SessionName = "shardline"
	}
	kc := withRole(base, o.KinesisRoleARN, o.SessionName)
	dc := withRole(base, o.DynamoDBRoleARN, o.SessionName)
	c := &Clients{Region: base.Region, Base: base}
	kinesisOptions := func(k *kinesis.Options) {
		if o.KinesisEndpoint != "" {
			k.BaseEndpoint = aws.String(o.KinesisEndpoint)
		}
		// Only a dropped or refused connection is retried here (a quick
		// second try); throttling and service errors go to the reader, which
		// applies retry-wait-time and retry-max-attempts.
		k.Retryer = retry.NewStandard(func(s *retry.StandardOptions) {
			s.MaxAttempts = 3
			if o.MaxAttempts > 0 {
				s.MaxAttempts = o.MaxAttempts
			}
			s.MaxBackoff = 200 * time.Millisecond
			s.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		})
	}
	c.Kinesis = kinesis.NewFromConfig(kc, kinesisOptions)
	c.KinesisFanOut = kinesis.NewFromConfig(kc, kinesisOptions, func(k *kinesis.Options) {
		// A copy of the shared client (it keeps AWS_CA_BUNDLE).
		if hc, ok := k.HTTPClient.(*awshttp.BuildableClient); ok {
			k.HTTPClient = hc.WithTimeout(0).WithTransportOptions(func(t *http.Transport) {
				t.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: FanOutStreamBuffer}
			})
		}
	})
	c.DynamoDB = dynamodb.NewFromConfig(dc, func(d *dynamodb.Options) {
		if o.DynamoDBEndpoint != "" {
			d.BaseEndpoint = aws.String(o.DynamoDBEndpoint)
			// DynamoDB Local answers conditional failures without the
			// checksum the SDK would validate.
			d.DisableValidateResponseChecksum = true
		}
		d.Retryer = retry.NewStandard(func(s *retry.StandardOptions) {
			s.MaxAttempts = 10
			s.MaxBackoff = 5 * time.Second
			if o.MaxAttempts > 0 {
				s.MaxAttempts = o.MaxAttempts
				s.MaxBackoff = 200 * time.Millisecond
			}
		})
	})
	c.Lambda = lambda.NewFromConfig(base, func(l *lambda.Options) {
		if o.LambdaEndpoint != "" {
			l.BaseEndpoint = aws.String(o.LambdaEndpoint)
		}
		// A copy of the shared client (it keeps AWS_CA_BUNDLE) with the
		// function's time to answer, and no read timeout: a function
		// sends nothing until it returns.
		if hc, ok := l.HTTPClient.(*awshttp.BuildableClient); ok {
			l.HTTPClient = hc.WithTimeout(o.InvokeTimeout + invokeSlack).WithReadTimeout(0)
		}
		l.Retryer = aws.NopRetryer{}
		l.RetryMaxAttempts = 1 // not AWS_MAX_ATTEMPTS either
	})
	c.SQS = sqs.NewFromConfig(base)
	c.SNS = sns.NewFromConfig(base)
	c.S3 = s3.NewFromConfig(base, func(o *s3.Options) {
		// BaseEndpoint holds AWS_ENDPOINT_URL_S3 here, already resolved.
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	})
	return c, nil
}

// CloudWatchConfig is the configuration for CloudWatch calls, with the
// CloudWatch role assumed when one is set.
func CloudWatchConfig(c *Clients, o Options) aws.Config {
	return withRole(c.Base, o.CloudWatchRoleARN, o.SessionName)
}

func withRole(base aws.Config, roleARN, session string) aws.Config {
	if roleARN == "" {
		return base
	}
	cfg := base.Copy()
	provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), roleARN, func(a *stscreds.AssumeRoleOptions) {
		a.RoleSessionName = session
	})
	cfg.Credentials = aws.NewCredentialsCache(provider)
	return cfg
}
