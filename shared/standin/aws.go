package standin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The region and dummy credentials for talking to the stand-ins. Neither
// stand-in checks signatures; DynamoDB Local runs with -sharedDb, so any
// key sees the same tables, and kinesis-mock maps any key that is not a
// 12-digit account id to its default account 000000000000.
const (
	Region          = "us-east-1"
	AccessKeyID     = "local"
	SecretAccessKey = "local"
)

// Config returns an aws.Config for the stand-ins: Region, static dummy
// credentials and the SDK's buildable HTTP client. It reads nothing from
// the environment or ~/.aws. (A plain &http.Client{} would not do: with
// AWS_CA_BUNDLE set, as on this project's machines, the SDK's config
// loader rejects an HTTP client it cannot add the bundle to.)
func Config() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
}

// KinesisClient returns a Kinesis client for the stand-in at endpoint,
// built from Config. optFns adjust it further.
func KinesisClient(endpoint string, optFns ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.NewFromConfig(Config(), append([]func(*kinesis.Options){func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)...)
}

// DynamoDBClient returns a DynamoDB client for the stand-in at endpoint,
// built from Config, with DisableValidateResponseChecksum set: DynamoDB
// Local sends no X-Amz-Crc32 header with its error answers (400, e.g.
// ConditionalCheckFailedException), so the SDK's CRC32 check fails when it
// closes the body: it logs "WARN failed to close HTTP response body ...
// response did not match expected checksum, 0, N" (invisible with the
// default no-op logger) and drops the connection instead of reusing it.
// The error itself still comes back right. optFns adjust it further.
func DynamoDBClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(Config(), append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = true
	}}, optFns...)...)
}

// checkHTTPClient makes health checks leave no idle connection behind.
func checkHTTPClient() aws.HTTPClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.DisableKeepAlives = true
	})
}

// CheckKinesis makes one ListStreams call (no retries) to the Kinesis
// endpoint.
func CheckKinesis(ctx context.Context, endpoint string) error {
	c := KinesisClient(endpoint, func(o *kinesis.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = checkHTTPClient()
	})
	_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{Limit: aws.Int32(1)})
	return err
}

// CheckDynamoDB makes one ListTables call (no retries) to the DynamoDB
// endpoint.
func CheckDynamoDB(ctx context.Context, endpoint string) error {
	c := DynamoDBClient(endpoint, func(o *dynamodb.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = checkHTTPClient()
	})
	_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
	return err
}

// Env returns the environment, as KEY=VALUE, that points the poller
// (SHARDLINE_KINESIS_ENDPOINT, SHARDLINE_DYNAMODB_ENDPOINT) and any AWS SDK
// or CLI that reads AWS_ENDPOINT_URL_<SERVICE> at the stand-ins.
func Env(kinesisEndpoint, dynamodbEndpoint string) []string {
	var env []string
	if kinesisEndpoint != "" {
		env = append(env, "SHARDLINE_KINESIS_ENDPOINT="+kinesisEndpoint)
	}
	if dynamodbEndpoint != "" {
		env = append(env, "SHARDLINE_DYNAMODB_ENDPOINT="+dynamodbEndpoint)
	}
	env = append(env,
		"AWS_REGION="+Region,
		"AWS_ACCESS_KEY_ID="+AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+SecretAccessKey,
	)
	if kinesisEndpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_KINESIS="+kinesisEndpoint)
	}
	if dynamodbEndpoint != "" {
		env = append(env, "AWS_ENDPOINT_URL_DYNAMODB="+dynamodbEndpoint)
	}
	return env
}

// StreamSpec is one stream of an INITIALIZE_STREAMS-style list.
type StreamSpec struct {
	Name   string
	Shards int    // 0: kinesis-mock's default, 4
	Region string // "": Region
}

// ParseStreams parses kinesis-mock's INITIALIZE_STREAMS syntax:
// comma-separated name[:shards[:region]], e.g. "words:4,orders:1".
func ParseStreams(spec string) ([]StreamSpec, error) {
	var out []StreamSpec
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		if len(parts) > 3 || parts[0] == "" {
			return nil, fmt.Errorf("standin: bad stream %q: want name[:shards[:region]]", item)
		}
		s := StreamSpec{Name: parts[0]}
		if len(parts) > 1 && parts[1] != "" {
			n, err := strconv.Atoi(parts[1])
			if err != nil || n < 1 {
				return nil, fmt.Errorf("standin: bad shard count in %q", item)
			}
			s.Shards = n
		}
		if len(parts) > 2 {
			s.Region = parts[2]
		}
		out = append(out, s)
	}
	return out, nil
}

// EnsureStreams creates those of the streams (INITIALIZE_STREAMS syntax)
// that do not exist yet on the Kinesis endpoint, and waits until all of
// them are ACTIVE.
func EnsureStreams(ctx context.Context, endpoint, spec string) error {
	streams, err := ParseStreams(spec)
	if err != nil {
		return err
	}
	for _, s := range streams {
		c := clientFor(endpoint, s.Region)
		in := &kinesis.CreateStreamInput{StreamName: aws.String(s.Name)}
		if s.Shards > 0 {
			in.ShardCount = aws.Int32(int32(s.Shards))
		}
		if _, err := c.CreateStream(ctx, in); err != nil {
			var inUse *types.ResourceInUseException
			if !errors.As(err, &inUse) {
				return fmt.Errorf("standin: creating stream %s: %w", s.Name, err)
			}
		}
	}
	return waitStreamsActive(ctx, endpoint, streams)
}

func clientFor(endpoint, region string) *kinesis.Client {
	return KinesisClient(endpoint, func(o *kinesis.Options) {
		if region != "" {
			o.Region = region
		}
		o.Retryer = retry.AddWithMaxBackoffDelay(retry.NewStandard(), 200*time.Millisecond)
	})
}

// WaitStreamActive polls DescribeStreamSummary until the stream is ACTIVE.
func WaitStreamActive(ctx context.Context, c *kinesis.Client, name string) error {
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		// On an error (LimitExceeded: kinesis-mock limits concurrent
		// control-plane calls) keep polling until ctx is done.
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("status %s", out.StreamDescriptionSummary.StreamStatus)
			}
			return fmt.Errorf("standin: stream %s not ACTIVE: %w (%w)", name, context.Cause(ctx), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitStreamsActive(ctx context.Context, endpoint string, streams []StreamSpec) error {
	for _, s := range streams {
		if err := WaitStreamActive(ctx, clientFor(endpoint, s.Region), s.Name); err != nil {
			return err
		}
	}
	return nil
}
