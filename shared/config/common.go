package config

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"

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
	LogFormat         string
}

// uses says which of the common settings a command takes: each command
// shows and reads only those.
type uses uint

const (
	usesApp        uses = 1 << iota // -app-name: the lease table
	usesDynamoDB                    // -dynamodb-endpoint, -dynamodb-role-arn
	usesLambda                      // -lambda-endpoint
	usesCloudWatch                  // -cloudwatch-role-arn
	usesLog                         // -log-level
)

// Register adds the settings of the commands that read the lease table
// and the stream and then end (status, reset, resume): -app-name when
// withApp, -stream-name, -region, and Kinesis and DynamoDB access.
func (c *Common) Register(fs *flag.FlagSet, withApp bool) {
	u := usesDynamoDB
	if withApp {
		u |= usesApp
	}
	c.register(fs, u)
}

// RegisterKinesis adds the settings of a command that talks to Kinesis
// only (produce): -stream-name, -region, -kinesis-endpoint and
// -kinesis-role-arn.
func (c *Common) RegisterKinesis(fs *flag.FlagSet) { c.register(fs, 0) }

func (c *Common) register(fs *flag.FlagSet, u uses) {
	if u&usesApp != 0 {
		fs.StringVar(&c.AppName, "app-name", "", "application name = lease table name (required)")
	}
	fs.StringVar(&c.StreamName, "stream-name", "", "Kinesis stream (required)")
	fs.StringVar(&c.Region, "region", "", "AWS region (default: AWS_REGION / the AWS config)")
	fs.StringVar(&c.KinesisEndpoint, "kinesis-endpoint", "", "Kinesis endpoint `URL` (default: AWS)")
	if u&usesDynamoDB != 0 {
		fs.StringVar(&c.DynamoDBEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint `URL` (default: AWS)")
	}
	if u&usesLambda != 0 {
		fs.StringVar(&c.LambdaEndpoint, "lambda-endpoint", "", "Lambda Invoke endpoint `URL` (sam local start-lambda, emulator; default: AWS)")
	}
	fs.StringVar(&c.KinesisRoleARN, "kinesis-role-arn", "", "role to assume for Kinesis (default: the credential chain's own)")
	if u&usesDynamoDB != 0 {
		fs.StringVar(&c.DynamoDBRoleARN, "dynamodb-role-arn", "", "role to assume for DynamoDB (default: the credential chain's own)")
	}
	if u&usesCloudWatch != 0 {
		fs.StringVar(&c.CloudWatchRoleARN, "cloudwatch-role-arn", "", "role to assume for CloudWatch (default: the credential chain's own)")
	}
	if u&usesLog != 0 {
		fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
		fs.StringVar(&c.LogFormat, "log-format", "auto", "text or json; auto: json on Lambda and when stderr is not a terminal, text on a terminal")
	}
}

func (c *Common) Validate(withApp bool) error {
	if withApp && c.AppName == "" {
		return Usagef("-app-name (%s) is required: the application name, used as the lease table name", EnvName("app-name"))
	}
	if withApp {
		if err := validTableName(c.AppName); err != nil {
			return err
		}
	}
	if c.StreamName == "" {
		return Usagef("-stream-name (%s) is required: the Kinesis stream", EnvName("stream-name"))
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
	switch c.LogFormat {
	case "", "auto", "text", "json":
	default:
		return Usagef("-log-format %q: allowed auto, text, json", c.LogFormat)
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

// Clients builds the AWS clients with each service's retry policy.
func (c *Common) Clients(ctx context.Context) (*awsconf.Clients, error) {
	return c.clients(ctx, awsconf.Options{})
}

// QuickClients builds clients for commands that make a few calls and end
// (status, reset, resume): at most two attempts per call, so that an
// endpoint that does not answer is reported at once, as `run` reports it,
// rather than after DynamoDB's full back-off.
func (c *Common) QuickClients(ctx context.Context) (*awsconf.Clients, error) {
	return c.clients(ctx, awsconf.Options{MaxAttempts: 2})
}

func (c *Common) clients(ctx context.Context, o awsconf.Options) (*awsconf.Clients, error) {
	o.Region, o.KinesisEndpoint, o.DynamoDBEndpoint, o.LambdaEndpoint = c.Region, c.KinesisEndpoint, c.DynamoDBEndpoint, c.LambdaEndpoint
	o.KinesisRoleARN, o.DynamoDBRoleARN, o.CloudWatchRoleARN = c.KinesisRoleARN, c.DynamoDBRoleARN, c.CloudWatchRoleARN
	o.SessionName = sessionName(c.AppName)
	cl, err := awsconf.Load(ctx, o)
	if errors.Is(err, awsconf.ErrNoRegion) {
		return nil, Usagef("no AWS region: give -region (%s), or set AWS_REGION, or a region in the AWS config; for example -region us-east-1", EnvName("region"))
	}
	if err != nil {
		return nil, err
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
