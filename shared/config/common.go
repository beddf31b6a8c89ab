package config

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/shardline/shardline/shared/awsconf"
)

// Common are the settings every sub-command that talks to AWS has.
type Common struct {
	AppName           string
	StreamName        string
	Region            string
	KinesisEndpoint   string
	DynamoDBEndpoint  string
	LambdaEndpoint    string
	KinesisRoleARN    string
	DynamoDBRoleARN   string
	CloudWatchRoleARN string
	LogLevel          string
}

func (c *Common) Register(fs *flag.FlagSet, withApp bool) {
	if withApp {
		fs.StringVar(&c.AppName, "app-name", "", "application name = lease table name (required)")
	}
	fs.StringVar(&c.StreamName, "stream-name", "", "Kinesis stream to read (required)")
	fs.StringVar(&c.Region, "region", "", "AWS region (default: AWS_REGION / the AWS config)")
	fs.StringVar(&c.KinesisEndpoint, "kinesis-endpoint", "", "Kinesis endpoint URL (default: AWS)")
	fs.StringVar(&c.DynamoDBEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint URL (default: AWS)")
	fs.StringVar(&c.LambdaEndpoint, "lambda-endpoint", "", "Lambda Invoke endpoint URL (sam local start-lambda, emulator)")
	fs.StringVar(&c.KinesisRoleARN, "kinesis-role-arn", "", "role to assume for Kinesis")
	fs.StringVar(&c.DynamoDBRoleARN, "dynamodb-role-arn", "", "role to assume for DynamoDB")
	fs.StringVar(&c.CloudWatchRoleARN, "cloudwatch-role-arn", "", "role to assume for CloudWatch")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
}

func (c *Common) Validate(withApp bool) error {
	if withApp && c.AppName == "" {
		return Usagef("-app-name (APP_NAME) is required: the application name, used as the lease table name")
	}
	if withApp {
		if err := validTableName(c.AppName); err != nil {
			return err
		}
	}
	if c.StreamName == "" {
		return Usagef("-stream-name (STREAM_NAME) is required: the Kinesis stream to read")
	}
	for name, v := range map[string]string{"kinesis-endpoint": c.KinesisEndpoint, "dynamodb-endpoint": c.DynamoDBEndpoint, "lambda-endpoint": c.LambdaEndpoint} {
		if v != "" && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			return Usagef("-%s %q: allowed an http:// or https:// URL", name, v)
		}
	}
	for name, v := range map[string]string{"kinesis-role-arn": c.KinesisRoleARN, "dynamodb-role-arn": c.DynamoDBRoleARN, "cloudwatch-role-arn": c.CloudWatchRoleARN} {
		if v != "" && !strings.HasPrefix(v, "arn:") {
			return Usagef("-%s %q: allowed an IAM role ARN (arn:aws:iam::123456789012:role/name)", name, v)
		}
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return err
	}
	return nil
}

// validTableName applies DynamoDB's table name rules to the app name.
func validTableName(name string) error {
	if len(name) < 3 || len(name) > 255 {
		return Usagef("-app-name %q: allowed 3–255 characters (it names the DynamoDB lease table)", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return Usagef("-app-name %q: allowed letters, digits, '_', '-' and '.' (it names the DynamoDB lease table)", name)
		}
	}
	return nil
}

func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, Usagef("-log-level %q: allowed debug, info, warn, error", s)
}

func (c *Common) Logger(stderr io.Writer) *slog.Logger {
	lvl, _ := ParseLevel(c.LogLevel)
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
}

func (c *Common) Clients(ctx context.Context) (*awsconf.Clients, error) {
	return c.clients(ctx, 0)
}

func (c *Common) clients(ctx context.Context, invokeTimeout time.Duration) (*awsconf.Clients, error) {
	cl, err := awsconf.Load(ctx, awsconf.Options{
		Region: c.Region, KinesisEndpoint: c.KinesisEndpoint, DynamoDBEndpoint: c.DynamoDBEndpoint,
		LambdaEndpoint: c.LambdaEndpoint, KinesisRoleARN: c.KinesisRoleARN, DynamoDBRoleARN: c.DynamoDBRoleARN,
		CloudWatchRoleARN: c.CloudWatchRoleARN, SessionName: sessionName(c.AppName), InvokeTimeout: invokeTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%w", err)
	}
	return cl, nil
}

func sessionName(app string) string {
	if app == "" {
		return "shardline"
	}
	s := "shardline-" + app
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// NewFlagSet makes a flag set whose -h prints each flag with its variable.
func NewFlagSet(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: poller %s [flags]\n", name)
		PrintDefaults(stdout, fs)
	}
	return fs
}
