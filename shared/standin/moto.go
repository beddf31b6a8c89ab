package standin

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// MotoAccountID is the account moto puts every resource in (its default),
// as queue URLs and topic ARNs show it.
const MotoAccountID = "123456789012"

// MotoOptions configure StartMoto. The zero value is a fresh moto_server
// on a free port.
type MotoOptions struct {
	// Port to listen on (0: a free one).
	Port int
	// Log, if set, receives a copy of the process's output (one line per
	// request). The last 64 KiB are kept anyway (Server.Output) and shown
	// in start-up errors.
	Log io.Writer
	// StartTimeout bounds start-up (0: DefaultStartTimeout).
	StartTimeout time.Duration
}

// StartMoto starts moto_server (Python's moto, on PATH; nothing is
// installed) on 127.0.0.1 and returns once SQS's ListQueues answers,
// typically in about a second. One moto serves SQS, SNS, S3 and CloudWatch
// on the same endpoint, keeping everything in memory; it does not check
// signatures. Not for Kinesis resharding (it is wrong about closed
// shards).
func StartMoto(ctx context.Context, o MotoOptions) (*Server, error) {
	moto, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("standin: moto_server not found on PATH: install Python's moto with its server (pip install 'moto[server]')")
	}
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	return startRetrying(ctx, o.Port != 0, func() (processSpec, error) {
		port := o.Port
		if port == 0 {
			free, err := freePorts(1)
			if err != nil {
				return processSpec{}, err
			}
			port = free[0]
		}
		return processSpec{
			name:    MotoName,
			path:    moto,
			args:    []string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)},
			env:     environ(nil, []string{"MOTO_PORT", "MOTO_HOST"}, nil),
			port:    port,
			log:     o.Log,
			timeout: timeout,
			healthy: CheckMoto,
		}, nil
	})
}

// CheckMoto makes one SQS ListQueues call (no retries) to the endpoint.
func CheckMoto(ctx context.Context, endpoint string) error {
	c := SQSClient(endpoint, func(o *sqs.Options) {
		o.Retryer = aws.NopRetryer{}
		o.HTTPClient = checkHTTPClient()
	})
	_, err := c.ListQueues(ctx, &sqs.ListQueuesInput{MaxResults: aws.Int32(1)})
	return err
}

// SQSClient returns an SQS client for the stand-in at endpoint, built
// from Config. optFns adjust it further.
func SQSClient(endpoint string, optFns ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(Config(), append([]func(*sqs.Options){func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)...)
}

// SNSClient returns an SNS client for the stand-in at endpoint, built
// from Config. optFns adjust it further.
func SNSClient(endpoint string, optFns ...func(*sns.Options)) *sns.Client {
	return sns.NewFromConfig(Config(), append([]func(*sns.Options){func(o *sns.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)...)
}

// S3Client returns an S3 client for the stand-in at endpoint, built from
// Config, with path-style addressing (bucket names in the path, not the
// host name). optFns adjust it further.
func S3Client(endpoint string, optFns ...func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(Config(), append([]func(*s3.Options){func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	}}, optFns...)...)
}

// MotoEnv returns the environment, as KEY=VALUE, that points the AWS SDK's
// SQS, SNS and S3 clients (AWS_ENDPOINT_URL_SQS, _SNS, _S3) at a moto
// endpoint.
func MotoEnv(endpoint string) []string {
	return []string{
		"AWS_ENDPOINT_URL_SQS=" + endpoint,
		"AWS_ENDPOINT_URL_SNS=" + endpoint,
		"AWS_ENDPOINT_URL_S3=" + endpoint,
	}
}
