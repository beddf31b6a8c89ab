package config

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/destination"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/handlers"
	"github.com/shardline/shardline/shared/redrive"
	"github.com/shardline/shardline/shared/stream"
)

// Redrive are the settings of `poller redrive`: where the records given
// up are (-from), and how they are delivered again (the handler and the
// batching and failure settings of `run`).
type Redrive struct {
	Common
	From                  string
	DryRun                bool
	Delete                bool
	VisibilityTimeout     time.Duration
	MaxGatherMB           int
	Handler               string
	TargetFunction        string
	BatchSize             int
	ParallelizationFactor int
	BisectOnError         bool
	ReportItemFailures    bool
	MaxRetryAttempts      int
	OnFailure             string
	HandlerTimeout        time.Duration
	FunctionTimeout       time.Duration
	MetricsAddr           string
	Quiet                 bool

	// Handlers are the program's own in-process handlers.
	Handlers Handlers
}

// RedriveMaxRetryAttempts is redrive's default -max-retry-attempts: a
// record that failed once already is not retried until it expires (run's
// default), since nothing expires it here.
const RedriveMaxRetryAttempts = 2

// Register adds the redrive settings to fs.
func (s *Redrive) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.From, "from", "", "where the records given up are: "+redrive.Forms+" (required)")
	fs.BoolVar(&s.DryRun, "dry-run", false, "list what would be redriven (records per shard, time range, first and last sequence numbers); deliver and change nothing")
	fs.BoolVar(&s.Delete, "delete", false, "S3: delete objects redriven instead of moving them to <prefix>-redriven/")
	fs.DurationVar(&s.VisibilityTimeout, "visibility-timeout", redrive.DefaultVisibility, "SQS: how long a message received stays invisible; extended every third of it while the redrive runs (1s–12h)")
	fs.IntVar(&s.MaxGatherMB, "max-gather-mb", redrive.DefaultMaxBytes>>20, "most MiB of records gathered before delivering; past it records go in rounds, in order within each round only")
	fs.StringVar(&s.StreamName, "stream-name", "", "stream to read Lambda's metadata-only records back from (default: the stream their streamArn names)")
	fs.StringVar(&s.Region, "region", "", "AWS region (default: AWS_REGION / the AWS config)")
	fs.StringVar(&s.KinesisEndpoint, "kinesis-endpoint", "", "Kinesis endpoint `URL` (default: AWS)")
	fs.StringVar(&s.LambdaEndpoint, "lambda-endpoint", "", "Lambda Invoke endpoint `URL` (sam local start-lambda, emulator; default: AWS)")
	fs.StringVar(&s.KinesisRoleARN, "kinesis-role-arn", "", "role to assume for Kinesis (default: the credential chain's own)")
	fs.StringVar(&s.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&s.LogFormat, "log-format", "auto", "text or json; auto: json on Lambda and when stderr is not a terminal, text on a terminal")
	hu := "in-process handler: " + strings.Join(s.Handlers.Names(), ", ")
	if s.Handlers.Default != nil {
		hu += " (default: this program's own)"
	}
	fs.StringVar(&s.Handler, "handler", "", hu)
	fs.StringVar(&s.TargetFunction, "target-function", "", "Lambda function name or ARN to invoke with each batch, instead of -handler")
	fs.IntVar(&s.BatchSize, "batch-size", 100, "most records per handler call (1–10000)")
	fs.IntVar(&s.ParallelizationFactor, "parallelization-factor", 1, "concurrent batches per shard (1–10), grouped by partition key: one key stays in order")
	fs.BoolVar(&s.BisectOnError, "bisect-on-error", false, "split a batch that fails with a function error in two and retry each half")
	fs.BoolVar(&s.ReportItemFailures, "report-batch-item-failures", true, "honour the handler's batchItemFailures; false: ignore them, as Lambda does without it")
	fs.IntVar(&s.MaxRetryAttempts, "max-retry-attempts", RedriveMaxRetryAttempts, "retries of a failing batch (0–10000), then it goes to -on-failure or stays in the source")
	fs.StringVar(&s.OnFailure, "on-failure", "", "`destination` of records that fail again (the forms of run's -on-failure, not -from itself); default: they stay in the source")
	fs.DurationVar(&s.HandlerTimeout, "handler-timeout", 15*time.Minute, "deadline of one handler call, on its context (the function timeout)")
	fs.DurationVar(&s.FunctionTimeout, "function-timeout", 15*time.Minute, "how long one Invoke of -target-function may run")
	fs.StringVar(&s.MetricsAddr, "metrics-addr", "", "host:port for Prometheus /metrics, /healthz and /readyz while the redrive runs (off when empty)")
	fs.BoolVar(&s.Quiet, "quiet", false, "no progress line on a terminal")
}

// Validate checks every setting; the first problem is one line naming it
// (a *UsageError).
func (s *Redrive) Validate() error {
	if s.From == "" {
		return Usagef("-from (%s) is required: %s", EnvName("from"), redrive.Forms)
	}
	if err := redrive.Check(s.From); err != nil {
		return Usagef("-from %v", err)
	}
	for _, e := range []struct{ name, v string }{{"kinesis-endpoint", s.KinesisEndpoint}, {"lambda-endpoint", s.LambdaEndpoint}} {
		if err := CheckEndpoint("-"+e.name, e.v); err != nil {
			return err
		}
	}
	if s.KinesisRoleARN != "" && !strings.HasPrefix(s.KinesisRoleARN, "arn:") {
		return Usagef("-kinesis-role-arn %q: allowed an IAM role ARN (arn:aws:iam::123456789012:role/name)", s.KinesisRoleARN)
	}
	switch s.LogFormat {
	case "", FormatAuto, FormatText, FormatJSON:
	default:
		return Usagef("-log-format %q: allowed auto, text, json", s.LogFormat)
	}
	if _, err := ParseLevel(s.LogLevel); err != nil {
		return err
	}
	switch {
	case s.Handler == "" && s.TargetFunction == "" && s.Handlers.Default == nil && !s.DryRun:
		return Usagef("-handler (%s) or -target-function (%s) is required: handlers are %s", EnvName("handler"), EnvName("target-function"), strings.Join(s.Handlers.Names(), ", "))
	case s.Handler != "" && s.TargetFunction != "":
		return Usagef("-handler %q and -target-function %q: allowed one of them, not both", s.Handler, s.TargetFunction)
	case s.Handler != "" && !slices.Contains(s.Handlers.Names(), s.Handler):
		return Usagef("-handler %q: allowed %s", s.Handler, strings.Join(s.Handlers.Names(), ", "))
	case s.BatchSize < 1 || s.BatchSize > 10000:
		return Usagef("-batch-size %d: allowed 1–10000", s.BatchSize)
	case s.ParallelizationFactor < 1 || s.ParallelizationFactor > 10:
		return Usagef("-parallelization-factor %d: allowed 1–10", s.ParallelizationFactor)
	case s.MaxRetryAttempts < 0 || s.MaxRetryAttempts > 10000:
		return Usagef("-max-retry-attempts %d: allowed 0–10000 (a redrive has no record age to end retries)", s.MaxRetryAttempts)
	case s.HandlerTimeout < time.Second || s.HandlerTimeout > 15*time.Minute:
		return Usagef("-handler-timeout %s: allowed 1s–15m", s.HandlerTimeout)
	case s.FunctionTimeout < time.Second || s.FunctionTimeout > 15*time.Minute:
		return Usagef("-function-timeout %s: allowed 1s–15m (Lambda's function timeouts)", s.FunctionTimeout)
	case s.VisibilityTimeout < time.Second || s.VisibilityTimeout > 12*time.Hour || s.VisibilityTimeout%time.Second != 0:
		return Usagef("-visibility-timeout %s: allowed whole seconds from 1s to 12h (SQS's limits)", s.VisibilityTimeout)
	case s.MaxGatherMB < 1:
		return Usagef("-max-gather-mb %d: allowed 1 or more", s.MaxGatherMB)
	case s.Delete && !strings.HasPrefix(s.From, "s3://"):
		return Usagef("-delete is for an S3 -from (objects are moved to <prefix>-redriven/ otherwise); -from %q", s.From)
	}
	if s.OnFailure != "" {
		if err := destination.Check(s.OnFailure); err != nil {
			return Usagef("-on-failure %v", err)
		}
		if redrive.Same(s.From, s.OnFailure) {
			return Usagef("-on-failure %q is where -from reads (%q): records that fail again would be read again; allowed another destination", s.OnFailure, s.From)
		}
	}
	if s.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(s.MetricsAddr); err != nil {
			return Usagef("-metrics-addr %q: allowed host:port such as 127.0.0.1:9102 (or :9102)", s.MetricsAddr)
		}
	}
	return nil
}

// UsesAWS reports whether the redrive calls AWS whatever it reads: an SQS
// or S3 -from, a -target-function, or an -on-failure other than a file
// (or discard). A file -from with an in-process handler needs no region
// and no credentials; only Lambda's metadata-only records in it (read
// back from the stream) do, when one is met.
func (s *Redrive) UsesAWS() bool {
	return !strings.HasPrefix(s.From, "file:") || s.TargetFunction != "" ||
		(s.OnFailure != "" && s.OnFailure != "discard" && !strings.HasPrefix(s.OnFailure, "file:"))
}

// Clients builds the AWS clients (SQS, S3, Kinesis, Lambda) the redrive
// uses.
func (s *Redrive) Clients(ctx context.Context, log *slog.Logger) (*awsconf.Clients, error) {
	return s.clients(ctx, awsconf.Options{InvokeTimeout: s.FunctionTimeout, Logger: log, LogRetries: log != nil && s.Debug()})
}

// NewHandler builds the handler the settings name.
func (s *Redrive) NewHandler(clients *awsconf.Clients, out io.Writer, log *slog.Logger) (stream.Handler, error) {
	return s.Handlers.build(s.Handler, s.TargetFunction, clients, handlers.Options{Out: out, Logger: log, Interval: time.Second})
}

// DispatchConfig is how records are delivered: the dispatcher's settings
// as `run` makes them.
func (s *Redrive) DispatchConfig(clients *awsconf.Clients, h stream.Handler) dispatch.Config {
	var dest dispatch.Destination
	if s.OnFailure != "" {
		dest, _ = destination.Parse(s.OnFailure, "redrive", destinationClients(clients)) // checked by Validate
	}
	c := dispatch.Config{
		Handler: h, FunctionARN: s.TargetFunction, BatchSize: s.BatchSize, MaxRetryAttempts: s.MaxRetryAttempts,
		BisectOnError: s.BisectOnError, IgnoreItemFailures: !s.ReportItemFailures, OnFailure: dest,
		HandlerTimeout: s.HandlerTimeout, OversizeAlone: s.TargetFunction == "",
	}
	return c
}

// Sources are the clients the -from sources read with.
func (s *Redrive) Sources(clients *awsconf.Clients) redrive.Clients {
	var c redrive.Clients
	if clients.SQS != nil {
		c.SQS = clients.SQS
	}
	if clients.S3 != nil {
		c.S3 = clients.S3
	}
	return c
}
