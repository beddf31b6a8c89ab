package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/shardline/shardline/shared/awsconf"
)

// commonSettings are the settings every sub-command that talks to AWS has.
type commonSettings struct {
	appName          string
	streamName       string
	region           string
	kinesisEndpoint  string
	dynamodbEndpoint string
	lambdaEndpoint   string
	kinesisRole      string
	dynamodbRole     string
	cloudwatchRole   string
	logLevel         string
}

func (c *commonSettings) register(fs *flag.FlagSet, withApp bool) {
	if withApp {
		fs.StringVar(&c.appName, "app-name", "", "application name = lease table name (required)")
	}
	fs.StringVar(&c.streamName, "stream-name", "", "Kinesis stream to read (required)")
	fs.StringVar(&c.region, "region", "", "AWS region (default: AWS_REGION / the AWS config)")
	fs.StringVar(&c.kinesisEndpoint, "kinesis-endpoint", "", "Kinesis endpoint URL (default: AWS)")
	fs.StringVar(&c.dynamodbEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint URL (default: AWS)")
	fs.StringVar(&c.lambdaEndpoint, "lambda-endpoint", "", "Lambda Invoke endpoint URL (sam local start-lambda, emulator)")
	fs.StringVar(&c.kinesisRole, "kinesis-role-arn", "", "role to assume for Kinesis")
	fs.StringVar(&c.dynamodbRole, "dynamodb-role-arn", "", "role to assume for DynamoDB")
	fs.StringVar(&c.cloudwatchRole, "cloudwatch-role-arn", "", "role to assume for CloudWatch")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
}

func (c *commonSettings) validate(withApp bool) error {
	if withApp && c.appName == "" {
		return usagef("-app-name (APP_NAME) is required: the application name, used as the lease table name")
	}
	if withApp {
		if err := validTableName(c.appName); err != nil {
			return err
		}
	}
	if c.streamName == "" {
		return usagef("-stream-name (STREAM_NAME) is required: the Kinesis stream to read")
	}
	for name, v := range map[string]string{"kinesis-endpoint": c.kinesisEndpoint, "dynamodb-endpoint": c.dynamodbEndpoint, "lambda-endpoint": c.lambdaEndpoint} {
		if v != "" && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			return usagef("-%s %q: allowed an http:// or https:// URL", name, v)
		}
	}
	for name, v := range map[string]string{"kinesis-role-arn": c.kinesisRole, "dynamodb-role-arn": c.dynamodbRole, "cloudwatch-role-arn": c.cloudwatchRole} {
		if v != "" && !strings.HasPrefix(v, "arn:") {
			return usagef("-%s %q: allowed an IAM role ARN (arn:aws:iam::123456789012:role/name)", name, v)
		}
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return err
	}
	return nil
}

// validTableName applies DynamoDB's table name rules to the app name.
func validTableName(name string) error {
	if len(name) < 3 || len(name) > 255 {
		return usagef("-app-name %q: allowed 3–255 characters (it names the DynamoDB lease table)", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return usagef("-app-name %q: allowed letters, digits, '_', '-' and '.' (it names the DynamoDB lease table)", name)
		}
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
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
	return 0, usagef("-log-level %q: allowed debug, info, warn, error", s)
}

func (c *commonSettings) logger(stderr io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.logLevel)
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
}

func (c *commonSettings) clients(ctx context.Context) (*awsconf.Clients, error) {
	cl, err := awsconf.Load(ctx, awsconf.Options{
		Region: c.region, KinesisEndpoint: c.kinesisEndpoint, DynamoDBEndpoint: c.dynamodbEndpoint,
		LambdaEndpoint: c.lambdaEndpoint, KinesisRoleARN: c.kinesisRole, DynamoDBRoleARN: c.dynamodbRole,
		CloudWatchRoleARN: c.cloudwatchRole, SessionName: sessionName(c.appName),
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

// newFlagSet makes a flag set whose -h prints each flag with its variable.
func newFlagSet(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: poller %s [flags]\n", name)
		printDefaults(stdout, fs)
	}
	return fs
}
