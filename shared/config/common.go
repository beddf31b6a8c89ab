package config

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/terminal"
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

// OneStream refuses a list of streams to a command that reads one
// (produce, replay, reset).
func (c *Common) OneStream(cmd string) error {
	if strings.Contains(c.StreamName, ",") {
		return Usagef("-stream-name %q: %s works on one stream; allowed one stream name (a list is for run and status)", c.StreamName, cmd)
	}
	return nil
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
	if _, err := coordinator.StreamNames(c.StreamName); err != nil {
		return Usagef("-%v", err)
	}
	for _, e := range []struct{ name, v string }{{"kinesis-endpoint", c.KinesisEndpoint}, {"dynamodb-endpoint", c.DynamoDBEndpoint}, {"lambda-endpoint", c.LambdaEndpoint}} {
		if err := CheckEndpoint("-"+e.name, e.v); err != nil {
			return err
		}
	}
	for name, v := range map[string]string{"kinesis-role-arn": c.KinesisRoleARN, "dynamodb-role-arn": c.DynamoDBRoleARN, "cloudwatch-role-arn": c.CloudWatchRoleARN} {
		if v != "" && !strings.HasPrefix(v, "arn:") {
			return Usagef("-%s %q: allowed an IAM role ARN (arn:aws:iam::123456789012:role/name)", name, v)
		}
	}
	switch c.LogFormat {
	case "", FormatAuto, FormatText, FormatJSON:
	default:
		return Usagef("-log-format %q: allowed auto, text, json", c.LogFormat)
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return err
	}
	return nil
}

// CheckEndpoint checks an endpoint setting (name is how the user gave
// it: -kinesis-endpoint, or a variable's name) at start, so that a value
// the SDK cannot use is one line and exit 2, not a failure of every call
// later: one http:// or https:// URL with a host (and an optional port),
// no path other than "/", no query, no whitespace. Empty is allowed (the
// AWS default).
func CheckEndpoint(name, v string) error {
	if v == "" {
		return nil
	}
	const allowed = "allowed one http:// or https:// URL with a host and an optional port, such as http://127.0.0.1:4567"
	if strings.ContainsFunc(v, unicode.IsSpace) {
		return Usagef("%s %q: has whitespace: %s", name, v, allowed)
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return Usagef("%s %q: %v: %s", name, v, err, allowed)
	case u.Scheme != "http" && u.Scheme != "https":
		return Usagef("%s %q: scheme %q: %s", name, v, u.Scheme, allowed)
	case u.Host == "" || u.Hostname() == "":
		return Usagef("%s %q: no host: %s", name, v, allowed)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return Usagef("%s %q: has a path, query or user: %s", name, v, allowed)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Usagef("%s %q: port %q: %s", name, v, p, allowed)
		}
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

// Log formats, as -log-format names them.
const (
	FormatAuto = "auto"
	FormatText = "text"
	FormatJSON = "json"
)

// ResolveFormat turns -log-format into text or json: auto is json on
// Lambda (AWS_LAMBDA_FUNCTION_NAME set) and when stderr is not a
// terminal, text on a terminal.
func ResolveFormat(format string, stderrIsTerminal, onLambda bool) string {
	switch format {
	case FormatText, FormatJSON:
		return format
	}
	if onLambda || !stderrIsTerminal {
		return FormatJSON
	}
	return FormatText
}

// OnLambda reports whether the process runs in a Lambda execution
// environment (the runtime sets AWS_LAMBDA_FUNCTION_NAME).
func OnLambda() bool { return os.Getenv("AWS_LAMBDA_FUNCTION_NAME") != "" }

// Format is the log format the settings resolve to on this stderr.
func (c *Common) Format(stderr io.Writer) string {
	return ResolveFormat(c.LogFormat, terminal.Is(stderr), OnLambda())
}

// Logger writes to stderr at -log-level, in Format(stderr).
func (c *Common) Logger(stderr io.Writer) *slog.Logger {
	return c.LoggerAs(stderr, c.Format(stderr))
}

// LoggerAs writes to w at -log-level in format (text or json); for a w
// that wraps stderr (the live view), with the format stderr resolved to.
func (c *Common) LoggerAs(w io.Writer, format string) *slog.Logger {
	lvl, _ := ParseLevel(c.LogLevel)
	return NewLogger(w, format, lvl)
}

// NewLogger is Shardline's slog logger: text or json lines on w from lvl
// up. Durations read as Go writes them (1.5s, 250ms) in both formats,
// rather than JSON's nanoseconds.
func NewLogger(w io.Writer, format string, lvl slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: durationText}
	if format == FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// Debug reports whether -log-level is debug.
func (c *Common) Debug() bool {
	lvl, _ := ParseLevel(c.LogLevel)
	return lvl <= slog.LevelDebug
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
