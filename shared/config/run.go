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
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/destination"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/filter"
	"github.com/shardline/shardline/shared/handlers"
	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
)

// Run are the settings of `poller run`, as the README's settings table
// names them (the names are a contract: flags, SHARDLINE_* variables).
type Run struct {
	Common
	InitialPosition       string
	InitialTimestamp      string
	ConsumerName          string
	ConsumerARN           string
	CheckpointInterval    time.Duration
	Handler               string
	TargetFunction        string
	WorkerID              string
	FailoverTime          time.Duration
	HandoffTimeout        time.Duration
	FormerStreamRetention time.Duration
	MaxLeases             int
	BatchSize             int
	MaxBatchingWindow     time.Duration
	ParallelizationFactor int
	BisectOnError         bool
	ReportItemFailures    bool
	TumblingWindow        time.Duration
	Filters               Patterns
	MaxRetryAttempts      int
	MaxRecordAge          time.Duration
	OnFailure             string
	OutOfRange            string
	HandlerTimeout        time.Duration
	FunctionTimeout       time.Duration
	RetryWaitTime         time.Duration
	IdleTimeBetweenReads  time.Duration
	RetryMaxAttempts      int
	MetricsLevel          string
	MetricsDimensions     string
	MetricsAddr           string
	MetricsCloudWatch     bool
	// Quiet turns the live view off: the status line `poller run` keeps on
	// a terminal.
	Quiet bool

	// Handlers are the in-process handlers the program brings beside the
	// built-ins (a binary built on the shardline package).
	Handlers Handlers

	// Timestamp is InitialTimestamp parsed by Validate.
	Timestamp time.Time
	// windowHandler is what NewHandler built for a tumbling window.
	windowHandler stream.WindowHandler
}

// Handlers are a program's own in-process handlers: Default (or
// DefaultWindow) runs when neither -handler nor -target-function is given;
// Named ones are chosen with -handler like the built-ins.
type Handlers struct {
	Default       stream.Handler
	DefaultWindow stream.WindowHandler
	Named         map[string]stream.Handler
	NamedWindow   map[string]stream.WindowHandler
}

// Names are the handler names -handler takes: the built-ins and Named,
// sorted.
func (h Handlers) Names() []string {
	names := handlers.Names()
	for n := range h.Named {
		names = append(names, n)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// windowNames are the names -handler takes with -tumbling-window.
func (h Handlers) windowNames() []string {
	names := handlers.WindowNames()
	for n := range h.NamedWindow {
		names = append(names, n)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// HasDefault reports whether the program brings a handler of its own
// (plain or windowed), so that -handler is not required.
func (h Handlers) HasDefault() bool { return h.Default != nil || h.DefaultWindow != nil }

// Register adds the run settings to fs.
func (s *Run) Register(fs *flag.FlagSet) {
	s.Common.register(fs, usesApp|usesDynamoDB|usesLambda|usesCloudWatch|usesLog)
	fs.StringVar(&s.InitialPosition, "initial-position", stream.Latest, "where shards without a checkpoint start: TRIM_HORIZON, LATEST or AT_TIMESTAMP")
	fs.StringVar(&s.InitialTimestamp, "initial-timestamp", "", "RFC 3339 `time` for AT_TIMESTAMP, not in the future (2026-01-02T15:04:05Z)")
	fs.StringVar(&s.ConsumerName, "consumer-name", "", "enhanced fan-out: read through the stream consumer of this `name`, registered if it is missing (empty: polling with GetRecords)")
	fs.StringVar(&s.ConsumerARN, "consumer-arn", "", "enhanced fan-out: read through the existing stream consumer of this `ARN` (of -stream-name); never registers one")
	fs.DurationVar(&s.CheckpointInterval, "checkpoint-interval", time.Second, "least time between checkpoint writes per shard")
	s.registerHandler(fs)
	fs.StringVar(&s.WorkerID, "worker-id", "", "lease owner name (default host-pid-random)")
	fs.DurationVar(&s.FailoverTime, "failover-time", 10*time.Second, "a lease whose counter has not moved for this long may be taken")
	fs.DurationVar(&s.HandoffTimeout, "graceful-handoff-timeout", 30*time.Second, "how long the leader waits for a lease it moves to be passed on (the holder finishes its batch and checkpoints) before it takes it, plus -failover-time (KCL 3's gracefulLeaseHandoffTimeoutMillis)")
	fs.DurationVar(&s.FormerStreamRetention, "former-stream-lease-retention", time.Hour, "with several streams: how long the leases of a stream taken out of -stream-name (or deleted) are left before the leader deletes them (KCL's deferred deletion)")
	fs.IntVar(&s.MaxLeases, "max-leases", 0, "most shards this worker holds (0: no limit)")
	s.registerDelivery(fs)
	fs.DurationVar(&s.TumblingWindow, "tumbling-window", 0, "0s–900s: windowed events with state, as Lambda's TumblingWindowInSeconds")
	fs.DurationVar(&s.IdleTimeBetweenReads, "idle-time-between-reads", fetch.DefaultIdleInterval, "time between reads of a shard that has caught up (a shard behind is read again as soon as 5 reads/s allow); Kinesis allows 5 reads/s per shard for all consumers together")
	fs.StringVar(&s.MetricsLevel, "metrics-level", "DETAILED", "NONE, SUMMARY or DETAILED (KCL's metricsLevel); NONE measures nothing")
	fs.StringVar(&s.MetricsDimensions, "metrics-dimensions", "Operation,ShardId,WorkerIdentifier", "enabled dimensions, of Operation, ShardId, WorkerIdentifier, StreamName (KCL's metricsEnabledDimensions)")
	fs.BoolVar(&s.MetricsCloudWatch, "metrics-cloudwatch", false, "also send metrics with CloudWatch PutMetricData (namespace: the app name), batched")
}

// registerHandler adds -handler and -target-function.
func (s *Run) registerHandler(fs *flag.FlagSet) {
	hu := "in-process handler: " + strings.Join(s.Handlers.Names(), ", ")
	if s.Handlers.HasDefault() {
		hu += " (default: this program's own)"
	}
	fs.StringVar(&s.Handler, "handler", "", hu)
	fs.StringVar(&s.TargetFunction, "target-function", "", "Lambda function name or ARN to invoke with each batch, instead of -handler")
}

// registerDelivery adds the settings of how records reach the handler,
// which `run` and `replay` share: batching, retries, bisect, partial
// failures, the on-failure destination, the filter, deadlines, Kinesis
// read retries, the metrics endpoint and the live view.
func (s *Run) registerDelivery(fs *flag.FlagSet) {
	fs.IntVar(&s.BatchSize, "batch-size", 100, "most records per handler call (1–10000)")
	fs.DurationVar(&s.MaxBatchingWindow, "max-batching-window", 0, "wait up to this long to fill a batch")
	fs.IntVar(&s.ParallelizationFactor, "parallelization-factor", 1, "concurrent batches per shard (1–10), grouped by the user record's partition key: one key stays in order")
	fs.BoolVar(&s.BisectOnError, "bisect-on-error", false, "split a batch that fails with a function error in two and retry each half")
	fs.BoolVar(&s.ReportItemFailures, "report-batch-item-failures", true, "honour the handler's batchItemFailures (ReportBatchItemFailures); false: ignore them, as Lambda does without it")
	fs.Var(&s.Filters, "filter", "a Lambda filter `pattern` on data and partitionKey (JSON); give it up to 5 times (the variable: one pattern or a JSON array)")
	fs.IntVar(&s.MaxRetryAttempts, "max-retry-attempts", -1, "retries of a failing batch; -1 = until the record expires")
	fs.DurationVar(&s.MaxRecordAge, "max-record-age", -time.Second, "give up on records older than this; -1s = never")
	fs.StringVar(&s.OnFailure, "on-failure", "", "`destination` of batches given up (Lambda's on-failure record plus the records): SQS queue URL or ARN, SNS topic ARN, s3://bucket/prefix, file:///path (JSON lines), or discard (dropped and counted, as Lambda does with no destination; default: the shard parks)")
	fs.StringVar(&s.OutOfRange, "out-of-range", "drop", "KPL user records whose hash key is outside the shard's range: drop (counted, as KCL drops them: the KPL re-puts them) or deliver (for aggregators that never re-put, such as the kinesis-aggregation libraries)")
	fs.DurationVar(&s.HandlerTimeout, "handler-timeout", 15*time.Minute, "deadline of one handler call, on its context (the function timeout)")
	fs.DurationVar(&s.FunctionTimeout, "function-timeout", 15*time.Minute, "how long one Invoke of -target-function may run; the SDK never re-sends an Invoke by itself")
	fs.DurationVar(&s.RetryWaitTime, "retry-wait-time", 100*time.Millisecond, "wait between Kinesis read retries")
	fs.IntVar(&s.RetryMaxAttempts, "retry-max-attempts", 3, "Kinesis read retries before backing off")
	fs.StringVar(&s.MetricsAddr, "metrics-addr", "", "host:port for Prometheus /metrics, /healthz and /readyz (off when empty)")
	fs.BoolVar(&s.Quiet, "quiet", false, "no live status line on a terminal (it is off anyway when stdout or stderr is not a terminal, and with -log-format json)")
}

// Validate checks every setting and returns the first problem as one
// line (a *UsageError). It sets Timestamp from InitialTimestamp.
func (s *Run) Validate() (err error) {
	return s.validate(time.Now())
}

func (s *Run) validate(now time.Time) (err error) {
	var ts time.Time
	defer func() { s.Timestamp = ts }()
	if err := s.Common.Validate(true); err != nil {
		return err
	}
	switch s.InitialPosition {
	case stream.TrimHorizon, stream.Latest:
		if s.InitialTimestamp != "" {
			return Usagef("-initial-timestamp %q is only allowed with -initial-position AT_TIMESTAMP, not %s", s.InitialTimestamp, s.InitialPosition)
		}
	case stream.AtTimestamp:
		if s.InitialTimestamp == "" {
			return Usagef("-initial-timestamp (%s) is required with -initial-position AT_TIMESTAMP: an RFC 3339 time such as 2026-01-02T15:04:05Z", EnvName("initial-timestamp"))
		}
		t, err := ParseTimestamp("initial-timestamp", s.InitialTimestamp, now)
		if err != nil {
			return err
		}
		ts = t
	default:
		return Usagef("-initial-position %q: allowed TRIM_HORIZON, LATEST, AT_TIMESTAMP", s.InitialPosition)
	}
	switch {
	case s.CheckpointInterval <= 0:
		return Usagef("-checkpoint-interval %s: allowed a positive duration such as 1s", s.CheckpointInterval)
	case s.Handler == "" && s.TargetFunction == "" && !s.Handlers.HasDefault():
		return Usagef("-handler (%s) or -target-function (%s) is required: handlers are %s", EnvName("handler"), EnvName("target-function"), strings.Join(s.Handlers.Names(), ", "))
	case s.Handler != "" && s.TargetFunction != "":
		return Usagef("-handler %q and -target-function %q: allowed one of them, not both", s.Handler, s.TargetFunction)
	case s.FailoverTime < 300*time.Millisecond:
		return Usagef("-failover-time %s: allowed 300ms or more", s.FailoverTime)
	case s.FormerStreamRetention <= 0:
		return Usagef("-former-stream-lease-retention %s: allowed a positive duration such as 1h", s.FormerStreamRetention)
	case s.HandoffTimeout < 0:
		return Usagef("-graceful-handoff-timeout %s: allowed 0s or more", s.HandoffTimeout)
	case s.MaxLeases < 0:
		return Usagef("-max-leases %d: allowed 0 (no limit) or more", s.MaxLeases)
	case s.BatchSize < 1 || s.BatchSize > 10000:
		return Usagef("-batch-size %d: allowed 1–10000", s.BatchSize)
	case s.MaxBatchingWindow < 0 || s.MaxBatchingWindow > 300*time.Second:
		return Usagef("-max-batching-window %s: allowed 0s–300s", s.MaxBatchingWindow)
	case s.ParallelizationFactor < 1 || s.ParallelizationFactor > 10:
		return Usagef("-parallelization-factor %d: allowed 1–10", s.ParallelizationFactor)
	case s.TumblingWindow < 0 || s.TumblingWindow > 900*time.Second || s.TumblingWindow%time.Second != 0:
		return Usagef("-tumbling-window %s: allowed whole seconds from 0s (off) to 900s", s.TumblingWindow)
	case len(s.Filters) > 5:
		return Usagef("-filter: %d patterns given: allowed at most 5", len(s.Filters))
	case s.TumblingWindow > 0 && s.ParallelizationFactor > 1:
		return Usagef("-tumbling-window %s with -parallelization-factor %d: allowed one of them (a window's state is per shard, one batch at a time)", s.TumblingWindow, s.ParallelizationFactor)
	case s.MaxRetryAttempts < -1 || s.MaxRetryAttempts > 10000:
		return Usagef("-max-retry-attempts %d: allowed -1 (until the record expires) or 0–10000", s.MaxRetryAttempts)
	case s.MaxRecordAge != -time.Second && (s.MaxRecordAge < time.Minute || s.MaxRecordAge > 7*24*time.Hour):
		return Usagef("-max-record-age %s: allowed -1s (never) or 60s–168h, as Lambda's MaximumRecordAgeInSeconds", s.MaxRecordAge)
	case s.HandlerTimeout < time.Second || s.HandlerTimeout > 15*time.Minute:
		return Usagef("-handler-timeout %s: allowed 1s–15m", s.HandlerTimeout)
	case s.FunctionTimeout < time.Second || s.FunctionTimeout > 15*time.Minute:
		return Usagef("-function-timeout %s: allowed 1s–15m (Lambda's function timeouts)", s.FunctionTimeout)
	case s.RetryWaitTime <= 0:
		return Usagef("-retry-wait-time %s: allowed a positive duration such as 100ms", s.RetryWaitTime)
	case s.IdleTimeBetweenReads < 200*time.Millisecond:
		return Usagef("-idle-time-between-reads %s: allowed 200ms or more (Kinesis allows 5 GetRecords per second per shard)", s.IdleTimeBetweenReads)
	case s.RetryMaxAttempts < 1:
		return Usagef("-retry-max-attempts %d: allowed 1 or more", s.RetryMaxAttempts)
	}
	if s.OutOfRange != "drop" && s.OutOfRange != "deliver" {
		return Usagef("-out-of-range %q: allowed drop or deliver", s.OutOfRange)
	}
	if err := s.validateConsumer(); err != nil {
		return err
	}
	if _, err := metrics.ParseLevel(s.MetricsLevel); err != nil {
		return Usagef("-metrics-level %v", err)
	}
	if _, err := metrics.ParseDimensions(s.MetricsDimensions); err != nil {
		return Usagef("-metrics-dimensions %v", err)
	}
	if s.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(s.MetricsAddr); err != nil {
			return Usagef("-metrics-addr %q: allowed host:port such as 127.0.0.1:9102 (or :9102)", s.MetricsAddr)
		}
	}
	if _, err := filter.Parse(s.Filters); err != nil {
		return Usagef("%v", err)
	}
	if s.TumblingWindow > 0 && s.Handler != "" && !slices.Contains(s.Handlers.windowNames(), s.Handler) {
		return Usagef("-handler %q with -tumbling-window: allowed handlers with a windowed variant: %s", s.Handler, strings.Join(s.Handlers.windowNames(), ", "))
	}
	if s.Handler != "" && !slices.Contains(s.Handlers.Names(), s.Handler) && !(s.TumblingWindow > 0 && s.Handlers.NamedWindow[s.Handler] != nil) {
		return Usagef("-handler %q: allowed %s", s.Handler, strings.Join(s.Handlers.Names(), ", "))
	}
	if s.Handler == "" && s.TargetFunction == "" {
		// The program's own handler: windowed or not, it needs the
		// matching -tumbling-window.
		switch {
		case s.TumblingWindow > 0 && s.Handlers.DefaultWindow == nil:
			return Usagef("-tumbling-window %s: this program's handler has no windowed variant (shardline.StartWindow gives one); allowed 0s, or -handler %s", s.TumblingWindow, strings.Join(s.Handlers.windowNames(), ", "))
		case s.TumblingWindow == 0 && s.Handlers.Default == nil:
			return Usagef("-tumbling-window (%s) is required: this program's handler is windowed (shardline.StartWindow); allowed 1s–900s", EnvName("tumbling-window"))
		}
	}
	if s.OnFailure != "" {
		if err := destination.Check(s.OnFailure); err != nil {
			return Usagef("-on-failure %v", err) // the error names the value
		}
	}
	return nil
}

// validateConsumer checks -consumer-name and -consumer-arn without a call:
// one of them at most, a name AWS takes, a consumer ARN of -stream-name.
func (s *Run) validateConsumer() error {
	switch {
	case s.ConsumerName != "" && s.ConsumerARN != "":
		return Usagef("-consumer-name %q and -consumer-arn %q: allowed one of them, not both", s.ConsumerName, s.ConsumerARN)
	case s.ConsumerName != "":
		if err := fetch.ValidConsumerName(s.ConsumerName); err != nil {
			return Usagef("-consumer-name %v", err)
		}
	case s.ConsumerARN != "" && strings.Contains(s.StreamName, ","):
		return Usagef("-consumer-arn %q with several streams (-stream-name %s): a consumer ARN is of one stream; allowed -consumer-name, registered on each stream", s.ConsumerARN, s.StreamName)
	case s.ConsumerARN != "":
		streamARN, err := fetch.ConsumerARNStream(s.ConsumerARN)
		if err != nil {
			return Usagef("-consumer-arn %v", err)
		}
		if name := streamARN[strings.LastIndexByte(streamARN, '/')+1:]; name != s.StreamName {
			return Usagef("-consumer-arn %q is a consumer of stream %s: allowed a consumer of -stream-name %s", s.ConsumerARN, name, s.StreamName)
		}
	}
	return nil
}

// Metrics is the metrics level (checked by Validate).
func (s *Run) Metrics() metrics.Level {
	l, _ := metrics.ParseLevel(s.MetricsLevel)
	return l
}

// Dimensions are the enabled metric dimensions (checked by Validate).
func (s *Run) Dimensions() metrics.Dimensions {
	d, _ := metrics.ParseDimensions(s.MetricsDimensions)
	return d
}

// Clients builds the AWS clients; an Invoke may run for -function-timeout.
// The SDK's own messages go to log (nil: the SDK's default), and at
// -log-level debug its retries too.
func (s *Run) Clients(ctx context.Context, log *slog.Logger) (*awsconf.Clients, error) {
	return s.clients(ctx, awsconf.Options{InvokeTimeout: s.FunctionTimeout, Logger: log, LogRetries: log != nil && s.Debug()})
}

// ParseTimestamp reads the RFC 3339 time of the flag called name: a time
// after now is refused (Kinesis has no records there yet, and a position
// in the future would silently read nothing).
func ParseTimestamp(name, value string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, Usagef("-%s %q: allowed an RFC 3339 time such as 2026-01-02T15:04:05Z", name, value)
	}
	if t.After(now) {
		return time.Time{}, Usagef("-%s %q is in the future (now %s): allowed a time up to now", name, value, now.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// NewHandler builds the handler the settings name: an in-process one from the
// registry (writing to out), or a Lambda function through the Invoke API.
func (s *Run) NewHandler(clients *awsconf.Clients, out io.Writer, log *slog.Logger) (stream.Handler, error) {
	if s.TumblingWindow > 0 {
		// A windowed handler, kept for WorkerConfig; no plain one.
		if s.TargetFunction != "" {
			s.windowHandler = invoke.WindowHandler(clients.Lambda, s.TargetFunction)
			return nil, nil
		}
		if s.Handler == "" {
			s.windowHandler = s.Handlers.DefaultWindow
			return nil, nil
		}
		if wh := s.Handlers.NamedWindow[s.Handler]; wh != nil {
			s.windowHandler = wh
			return nil, nil
		}
		wh, err := handlers.NewWindow(s.Handler, handlers.Options{Out: out, Logger: log, Interval: s.CheckpointInterval})
		if err != nil {
			return nil, Usagef("-handler %q with -tumbling-window: %v", s.Handler, err)
		}
		s.windowHandler = wh
		return nil, nil
	}
	return s.Handlers.build(s.Handler, s.TargetFunction, clients, handlers.Options{Out: out, Logger: log, Interval: s.CheckpointInterval})
}

// build is the handler -handler name or -target-function target names
// (run's, replay's, redrive's): the function through the Invoke API, the
// default or a registered handler, or a built-in made with o.
func (hs Handlers) build(name, target string, clients *awsconf.Clients, o handlers.Options) (stream.Handler, error) {
	if target != "" {
		return invoke.Handler(clients.Lambda, target), nil
	}
	if name == "" {
		return hs.Default, nil
	}
	if h := hs.Named[name]; h != nil {
		return h, nil
	}
	h, err := handlers.New(name, o)
	if err != nil {
		return nil, Usagef("-handler %q: %v", name, err)
	}
	return h, nil
}

// WorkerConfig builds the coordinator's configuration from validated settings.
func (s *Run) WorkerConfig(clients *awsconf.Clients, h stream.Handler, log *slog.Logger) coordinator.Config {
	var dest dispatch.Destination
	if s.OnFailure != "" {
		// Checked by Validate; Parse makes no call and fails only on the form.
		dest, _ = destination.Parse(s.OnFailure, s.AppName, destinationClients(clients))
	}
	flt, _ := filter.Parse(s.Filters) // checked by Validate
	return coordinator.Config{
		Filter:  flt,
		AppName: s.AppName, StreamName: s.StreamName, WorkerID: s.WorkerID,
		ConsumerName: s.ConsumerName, ConsumerARN: s.ConsumerARN,
		InitialPosition: s.InitialPosition, InitialTimestamp: s.Timestamp,
		CheckpointInterval: s.CheckpointInterval, FailoverTime: s.FailoverTime, MaxLeases: s.MaxLeases,
		HandoffTimeout: max(s.HandoffTimeout, time.Nanosecond), FormerStreamRetention: s.FormerStreamRetention,
		BatchSize: s.BatchSize, MaxBatchingWindow: s.MaxBatchingWindow,
		Handler: h, MaxRetryAttempts: s.MaxRetryAttempts, MaxRecordAge: max(s.MaxRecordAge, 0),
		IgnoreItemFailures: !s.ReportItemFailures, ParallelizationFactor: s.ParallelizationFactor,
		BisectOnError: s.BisectOnError, OnFailure: dest, HandlerTimeout: s.HandlerTimeout, DeliverOutOfRange: s.OutOfRange == "deliver",
		OversizeAlone: s.TargetFunction == "", FunctionARN: s.TargetFunction, RemoteHandler: s.TargetFunction != "",
		TumblingWindow: s.TumblingWindow, WindowHandler: s.windowHandler, MetricsLevel: s.Metrics(),
		RetryWaitTime: s.RetryWaitTime, RetryMaxAttempts: s.RetryMaxAttempts, IdleTimeBetweenReads: s.IdleTimeBetweenReads,
		Region: clients.Region, Kinesis: clients.Kinesis, KinesisFanOut: clients.KinesisFanOut, DynamoDB: clients.DynamoDB, Logger: log,
	}
}

// destinationClients are the clients the on-failure destinations send
// with; a missing one stays nil, and a destination that needs it refuses
// its first batch, naming it.
func destinationClients(c *awsconf.Clients) destination.Clients {
	var dc destination.Clients
	if c.SQS != nil {
		dc.SQS = c.SQS
	}
	if c.SNS != nil {
		dc.SNS = c.SNS
	}
	if c.S3 != nil {
		dc.S3 = c.S3
	}
	return dc
}
