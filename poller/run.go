package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/handlers"
	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/stream"
)

// runSettings are the settings of `poller run`, as DESIGN.md names them.
type runSettings struct {
	commonSettings
	initialPosition       string
	initialTimestamp      string
	checkpointInterval    time.Duration
	handler               string
	targetFunction        string
	workerID              string
	failoverTime          time.Duration
	maxLeases             int
	batchSize             int
	maxBatchingWindow     time.Duration
	parallelizationFactor int
	bisectOnError         bool
	maxRetryAttempts      int
	maxRecordAge          time.Duration
	onFailure             string
	retryWaitTime         time.Duration
	retryMaxAttempts      int
}

func (s *runSettings) register(fs *flag.FlagSet) {
	s.commonSettings.register(fs, true)
	fs.StringVar(&s.initialPosition, "initial-position", stream.Latest, "where shards without a checkpoint start: TRIM_HORIZON, LATEST or AT_TIMESTAMP")
	fs.StringVar(&s.initialTimestamp, "initial-timestamp", "", "RFC 3339 time for AT_TIMESTAMP")
	fs.DurationVar(&s.checkpointInterval, "checkpoint-interval", time.Second, "least time between checkpoint writes per shard")
	fs.StringVar(&s.handler, "handler", "", "in-process handler: "+strings.Join(handlers.Names(), ", "))
	fs.StringVar(&s.targetFunction, "target-function", "", "Lambda function name or ARN to invoke with each batch, instead of -handler")
	fs.StringVar(&s.workerID, "worker-id", "", "lease owner name (default host-pid-random)")
	fs.DurationVar(&s.failoverTime, "failover-time", 10*time.Second, "a lease whose counter has not moved for this long may be taken")
	fs.IntVar(&s.maxLeases, "max-leases", 0, "most shards this worker holds (0: no limit)")
	fs.IntVar(&s.batchSize, "batch-size", 100, "most records per handler call (1–10000)")
	fs.DurationVar(&s.maxBatchingWindow, "max-batching-window", 0, "wait up to this long to fill a batch")
	fs.IntVar(&s.parallelizationFactor, "parallelization-factor", 1, "concurrent batches per shard (this version: 1)")
	fs.BoolVar(&s.bisectOnError, "bisect-on-error", false, "split a failing batch in two and retry each half")
	fs.IntVar(&s.maxRetryAttempts, "max-retry-attempts", -1, "retries of a failing batch; -1 = until the record expires")
	fs.DurationVar(&s.maxRecordAge, "max-record-age", -time.Second, "give up on records older than this; -1s = never")
	fs.StringVar(&s.onFailure, "on-failure", "", "where given-up records go: file:///path (JSON lines)")
	fs.DurationVar(&s.retryWaitTime, "retry-wait-time", 100*time.Millisecond, "wait between Kinesis read retries")
	fs.IntVar(&s.retryMaxAttempts, "retry-max-attempts", 3, "Kinesis read retries before backing off")
}

// validate checks every setting and returns the first problem as one line.
func (s *runSettings) validate() (ts time.Time, err error) {
	if err := s.commonSettings.validate(true); err != nil {
		return ts, err
	}
	switch s.initialPosition {
	case stream.TrimHorizon, stream.Latest:
		if s.initialTimestamp != "" {
			return ts, usagef("-initial-timestamp %q is only allowed with -initial-position AT_TIMESTAMP, not %s", s.initialTimestamp, s.initialPosition)
		}
	case stream.AtTimestamp:
		if s.initialTimestamp == "" {
			return ts, usagef("-initial-timestamp (INITIAL_TIMESTAMP) is required with -initial-position AT_TIMESTAMP: an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
		t, err := time.Parse(time.RFC3339Nano, s.initialTimestamp)
		if err != nil {
			return ts, usagef("-initial-timestamp %q: allowed an RFC 3339 time such as 2026-01-02T15:04:05Z", s.initialTimestamp)
		}
		ts = t
	default:
		return ts, usagef("-initial-position %q: allowed TRIM_HORIZON, LATEST, AT_TIMESTAMP", s.initialPosition)
	}
	switch {
	case s.checkpointInterval <= 0:
		return ts, usagef("-checkpoint-interval %s: allowed a positive duration such as 1s", s.checkpointInterval)
	case s.handler == "" && s.targetFunction == "":
		return ts, usagef("-handler (HANDLER) or -target-function (TARGET_FUNCTION) is required: handlers are %s", strings.Join(handlers.Names(), ", "))
	case s.handler != "" && s.targetFunction != "":
		return ts, usagef("-handler %q and -target-function %q: allowed one of them, not both", s.handler, s.targetFunction)
	case s.failoverTime < 300*time.Millisecond:
		return ts, usagef("-failover-time %s: allowed 300ms or more", s.failoverTime)
	case s.maxLeases < 0:
		return ts, usagef("-max-leases %d: allowed 0 (no limit) or more", s.maxLeases)
	case s.batchSize < 1 || s.batchSize > 10000:
		return ts, usagef("-batch-size %d: allowed 1–10000", s.batchSize)
	case s.maxBatchingWindow < 0 || s.maxBatchingWindow > 300*time.Second:
		return ts, usagef("-max-batching-window %s: allowed 0s–300s", s.maxBatchingWindow)
	case s.parallelizationFactor != 1:
		return ts, usagef("-parallelization-factor %d: allowed 1 in this version", s.parallelizationFactor)
	case s.maxRetryAttempts < -1 || s.maxRetryAttempts > 10000:
		return ts, usagef("-max-retry-attempts %d: allowed -1 (until the record expires) or 0–10000", s.maxRetryAttempts)
	case s.maxRecordAge != -time.Second && (s.maxRecordAge < time.Second || s.maxRecordAge > 7*24*time.Hour):
		return ts, usagef("-max-record-age %s: allowed -1s (never) or 1s–168h", s.maxRecordAge)
	case s.retryWaitTime <= 0:
		return ts, usagef("-retry-wait-time %s: allowed a positive duration such as 100ms", s.retryWaitTime)
	case s.retryMaxAttempts < 1:
		return ts, usagef("-retry-max-attempts %d: allowed 1 or more", s.retryMaxAttempts)
	}
	if s.handler != "" && !slices.Contains(handlers.Names(), s.handler) {
		return ts, usagef("-handler %q: allowed %s", s.handler, strings.Join(handlers.Names(), ", "))
	}
	if s.onFailure != "" {
		if _, err := dispatch.ParseDestination(s.onFailure); err != nil {
			return ts, usagef("-on-failure %q: %v", s.onFailure, err)
		}
	}
	return ts, nil
}

func runPoller(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var s runSettings
	fs := newFlagSet("run", stdout)
	s.register(fs)
	if err := parse(fs, args, getenv); err != nil {
		return err
	}
	ts, err := s.validate()
	if err != nil {
		return err
	}
	log := s.logger(stderr)
	clients, err := s.clients(ctx)
	if err != nil {
		return err
	}
	var h stream.Handler
	if s.targetFunction != "" {
		h = invoke.Handler(clients.Lambda, s.targetFunction)
	} else {
		h, err = handlers.New(s.handler, handlers.Options{Out: stdout, Logger: log, Interval: s.checkpointInterval})
		if err != nil {
			return usagef("-handler %q: %v", s.handler, err)
		}
	}
	var dest dispatch.Destination
	if s.onFailure != "" {
		dest, _ = dispatch.ParseDestination(s.onFailure)
	}
	maxAge := s.maxRecordAge
	if maxAge < 0 {
		maxAge = 0
	}
	w, err := coordinator.New(coordinator.Config{
		AppName: s.appName, StreamName: s.streamName, WorkerID: s.workerID,
		InitialPosition: s.initialPosition, InitialTimestamp: ts,
		CheckpointInterval: s.checkpointInterval, FailoverTime: s.failoverTime, MaxLeases: s.maxLeases,
		BatchSize: s.batchSize, MaxBatchingWindow: s.maxBatchingWindow,
		Handler: h, MaxRetryAttempts: s.maxRetryAttempts, MaxRecordAge: maxAge,
		BisectOnError: s.bisectOnError, OnFailure: dest,
		RetryWaitTime: s.retryWaitTime, RetryMaxAttempts: s.retryMaxAttempts,
		Region: clients.Region, Kinesis: clients.Kinesis, DynamoDB: clients.DynamoDB, Logger: log,
	})
	if err != nil {
		return usagef("%v", err)
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = w.Check(checkCtx)
	cancel()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("cannot start: %w", err)
	}
	return w.Run(ctx)
}
