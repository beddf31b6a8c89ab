// Command poller is the scheduled poller Lambda function: an EventBridge
// schedule invokes it; it runs Shardline's core (leases, reading,
// de-aggregation, the handler, checkpoints) until the invocation's deadline
// minus SHARDLINE_DEADLINE_MARGIN, then checkpoints, releases its leases and
// returns a JSON summary. It reads the same settings as `poller run`, from
// the function's environment variables (SHARDLINE_STREAM_NAME,
// SHARDLINE_APP_NAME, SHARDLINE_HANDLER or SHARDLINE_TARGET_FUNCTION, ...);
// the AWS SDK's own variables (AWS_REGION, credentials) work as the SDK
// defines them. At the end of each invocation it writes the invocation's
// metrics as CloudWatch Embedded Metric Format lines on stdout
// (SHARDLINE_METRICS_LEVEL, SHARDLINE_METRICS_DIMENSIONS). Build with -tags lambda.norpc as bootstrap for
// provided.al2023.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/telemetry/emf"
)

func main() {
	f := &function{getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr}
	lambda.Start(f.handle)
}

// function holds what one execution environment keeps between
// invocations: the settings, the AWS clients and the handler.
type function struct {
	getenv         func(string) string
	stdout, stderr io.Writer

	once     sync.Once
	initErr  error
	settings config.Run
	margin   time.Duration
	clients  *awsconf.Clients
	handler  stream.Handler
	log      *slog.Logger
}

// flags are the function's settings: those of `poller run`, and
// -deadline-margin (SHARDLINE_DEADLINE_MARGIN).
func (f *function) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("poller-function", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.settings.Register(fs)
	fs.DurationVar(&f.margin, "deadline-margin", 5*time.Second, "stop this long before the invocation's deadline")
	return fs
}

// parse reads the settings from the environment and checks them.
func (f *function) parse() error {
	if err := config.Parse(f.flags(), nil, f.getenv); err != nil {
		return err
	}
	if err := f.settings.Validate(); err != nil {
		return err
	}
	if f.margin <= 0 {
		return config.Usagef("%s=%s: allowed a positive duration such as 5s", config.EnvName("deadline-margin"), f.margin)
	}
	return nil
}

// init reads and checks the settings once per execution environment.
func (f *function) init(ctx context.Context) error {
	if err := f.parse(); err != nil {
		return err
	}
	// JSON under -log-format auto (Lambda's own), text when asked.
	f.log = f.settings.LoggerAs(f.stderr, config.ResolveFormat(f.settings.LogFormat, false, true))
	if f.settings.MetricsCloudWatch {
		f.log.Warn(config.EnvName("metrics-cloudwatch") + " has no effect on the function: it writes its metrics as Embedded Metric Format log lines, which CloudWatch makes metrics of")
	}
	var err error
	if f.clients, err = f.settings.Clients(ctx, f.log); err != nil {
		return err
	}
	f.handler, err = f.settings.NewHandler(f.clients, f.stdout, f.log)
	return err
}

// handle is one scheduled invocation. The event (a scheduled event, or
// anything) is not read.
func (f *function) handle(ctx context.Context, _ json.RawMessage) (coordinator.Summary, error) {
	f.once.Do(func() { f.initErr = f.init(ctx) })
	if f.initErr != nil {
		return coordinator.Summary{}, f.initErr
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	stopAt := deadline.Add(-f.margin)
	if time.Until(stopAt) <= 0 {
		return coordinator.Summary{}, config.Usagef("%s=%s leaves no time before the deadline: make the function timeout longer than the margin", config.EnvName("deadline-margin"), f.margin)
	}
	if win := f.settings.TumblingWindow; win > 0 && time.Until(stopAt) <= win+time.Second {
		f.log.Warn("the run is not longer than the tumbling window: a caught-up shard re-reads its open window each run and never finishes one; make the function timeout longer than the window plus the deadline margin",
			"window", win, "run", time.Until(stopAt).Round(time.Millisecond))
	}
	cfg := f.settings.WorkerConfig(f.clients, f.handler, f.log)
	// The drain (final checkpoints, releases) must end within the margin,
	// and no handler call (or Invoke) may run past half of it: a call cut
	// there leaves its batch without a checkpoint for the next run.
	cfg.DrainTimeout = max(f.margin*3/4, 500*time.Millisecond)
	cfg.Deadline = deadline.Add(-f.margin / 2)
	// Every invocation is a worker of its own: the previous one released
	// its leases (or they expire after the failover time if it crashed).
	base := f.settings.WorkerID
	if base == "" {
		base = lambdacontext.FunctionName
	}
	var requestID string
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
		cfg.WorkerID = base + "-" + lc.AwsRequestID
		if cfg.FunctionARN == "" { // in-process handler: this function's ARN
			cfg.FunctionARN = lc.InvokedFunctionArn
		}
	}
	w, err := coordinator.New(cfg)
	if err != nil {
		return coordinator.Summary{}, config.Usagef("%v", err)
	}
	runCtx, cancel := context.WithDeadline(ctx, stopAt)
	defer cancel()
	err = w.Run(runCtx)
	f.writeMetrics(w.Snapshot(), base, requestID)
	sum := w.Summary()
	sum.StoppedBecause = "deadline"
	var drain *coordinator.DrainError
	switch {
	case errors.As(err, &drain):
		// The shards were released at their last position done: the next
		// run delivers the unfinished batches again. Not a failed run.
		sum.StoppedBecause = "deadline; " + err.Error()
		f.log.Error("poller stopped", "summary", sum)
	case err != nil:
		sum.StoppedBecause = "error: " + err.Error()
		f.log.Error("poller stopped", "summary", sum)
		return sum, &RunError{Msg: err.Error()}
	default:
		// Parked shards do not fail the invocation: the summary lists
		// them, and the next runs retry them after their back-off.
		f.log.Info("poller finished", "summary", sum)
	}
	return sum, nil
}

// writeMetrics writes what this invocation did as CloudWatch Embedded
// Metric Format lines on stdout, where Lambda's log capture hands them to
// CloudWatch Logs, which makes them metrics (no API call, no permission):
// the namespace is the app name, the values count from zero (each
// invocation is a worker of its own). Nothing at -metrics-level NONE.
//
// The WorkerIdentifier dimension is the function's worker name (-worker-id,
// or the function's name), not the invocation's worker id: a dimension
// value per invocation would make a new metric per invocation (each one
// billed, none continuous). The invocation's worker id and request id are
// members of each line, not dimensions, to find its other log lines.
func (f *function) writeMetrics(s coordinator.Snapshot, base, requestID string) {
	if f.settings.Metrics() == metrics.None {
		return
	}
	fields := map[string]string{"workerId": s.WorkerID}
	if requestID != "" {
		fields["requestId"] = requestID
	}
	if base != "" {
		s.WorkerID = base
	}
	if err := emf.Write(f.stdout, coordinator.Snapshot{}, s, emf.Options{Dimensions: f.settings.Dimensions(), Fields: fields}); err != nil {
		f.log.Warn("metrics not written", "err", err)
	}
}

// RunError is what the function reports when its run stopped with an
// error (Lambda shows the type name as errorType).
type RunError struct{ Msg string }

func (e *RunError) Error() string { return fmt.Sprintf("poller stopped: %s", e.Msg) }
