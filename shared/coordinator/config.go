package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/filter"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
)

// KinesisAPI lists the Kinesis calls a worker makes.
type KinesisAPI interface {
	DescribeStreamSummary(context.Context, *kinesis.DescribeStreamSummaryInput, ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
	// DescribeStreamConsumer and RegisterStreamConsumer, for ConsumerName
	// and ConsumerARN.
	fetch.ConsumerAPI
}

// DynamoDBAPI lists the DynamoDB calls the lease table makes.
type DynamoDBAPI = lease.DynamoDBAPI

var (
	_ KinesisAPI  = (*kinesis.Client)(nil)
	_ DynamoDBAPI = (*dynamodb.Client)(nil)
)

// Config sets a worker up. Zero values take the defaults named; New
// validates the rest with errors that name the setting.
type Config struct {
	AppName string // lease table name (required)
	// StreamName is the stream read, or a comma-separated list of up to
	// MaxStreams streams (KCL's multi-stream mode: leases keyed
	// account:stream:creationEpoch:shardId, with streamName and shardId;
	// balancing spreads the shards of all streams). Required.
	StreamName string
	// FormerStreamRetention is how long the leader leaves the leases of a
	// stream no longer in the list (or deleted) before it deletes them
	// (KCL's deferred deletion of former streams' leases); default 1h.
	FormerStreamRetention time.Duration
	WorkerID              string // lease owner name; default host-pid-random

	// ConsumerName turns enhanced fan-out on: the stream's records are to
	// come pushed over SubscribeToShard to the consumer of this name,
	// which Check registers if it is missing and waits for until ACTIVE
	// (fetch.EnsureConsumer, as KCL does). ConsumerARN instead names a
	// consumer that exists: Check makes sure it is the stream's and ACTIVE,
	// and never registers one (fetch.CheckConsumer). At most one of them;
	// both empty: polling with GetRecords. (KCL's default consumer name
	// is the application name; here it is explicit.)
	ConsumerName string
	ConsumerARN  string
	// KinesisFanOut, when set, is the client whose HTTP client the
	// subscriptions use (awsconf.Clients.KinesisFanOut: no overall
	// timeout, a bounded HTTP/2 buffer per stream). Default: Kinesis's
	// HTTP client without its overall timeout.
	KinesisFanOut *kinesis.Client
	// SubscriptionQuietTimeout is how long a subscription may send
	// nothing before it is started again (default 60s, KCL's).
	SubscriptionQuietTimeout time.Duration
	// SubscribeFunc, when set, starts the subscriptions instead of
	// Shardline's own reader (fetch.Client.Subscribe); for tests, e.g.
	// fetch.SDKSubscribe.
	SubscribeFunc fetch.SubscribeFunc

	// InitialPosition is where shards without a checkpoint start:
	// TRIM_HORIZON, LATEST (default) or AT_TIMESTAMP with InitialTimestamp.
	InitialPosition  string
	InitialTimestamp time.Time

	CheckpointInterval time.Duration // least time between checkpoint writes per shard; default 1s
	FailoverTime       time.Duration // a lease not renewed for this long may be taken; default 10s
	// HandoffTimeout is KCL 3.x's gracefulLeaseHandoffTimeoutMillis: a
	// lease mid-handoff (checkpointOwner set) is not taken until this
	// plus FailoverTime has passed since it was last seen changing
	// (default 30s, KCL's default; set it to the KCL application's).
	HandoffTimeout time.Duration
	MaxLeases      int // most shards this worker holds; 0 = no limit
	// ShardSyncInterval is how often the leader compares ListShards with
	// the leases (a consistent Scan, then the listing); default 60s, and
	// at once when it sees a shard end.
	ShardSyncInterval time.Duration
	// DrainTimeout bounds each shard's final checkpoint and release when
	// the worker stops (default 15s); the scheduled function sets it from
	// its deadline margin.
	DrainTimeout time.Duration

	// ParkRetryWait is the back-off before a parked shard is first tried
	// again (default 5s); it doubles with every retry that parks it
	// again, up to MaxParkRetryWait (default 5m).
	ParkRetryWait    time.Duration
	MaxParkRetryWait time.Duration

	// ReadBudget bounds the bytes of Kinesis answers the worker's shards
	// hold at once (with enhanced fan-out: the subscription events read
	// and not yet de-aggregated, fetch.Budget; what waits stays in each
	// stream's HTTP/2 window, awsconf.FanOutStreamBuffer, and at Kinesis).
	// Polling: each read of a shard asks for about ReadBudget over
	// the shards held, between 32 KiB and 1 MiB (default 2 MiB: 512 KiB a
	// read up to 4 shards, enough for Kinesis's 2 MB/s per shard at 5
	// reads/s; 32 KiB from 64 shards on). With a parallelization factor
	// it also bounds how far a shard reads ahead of its slowest lane: the
	// lanes of a shard hold at most ReadBudget over the shards held of
	// user records not done (dispatch.RecordCost: ~180 bytes a record
	// plus its data and key), plus one chunk.
	ReadBudget int

	BatchSize         int           // most records per handler call; default 100
	MaxBatchingWindow time.Duration // wait up to this long to fill a batch; default 0

	Handler     stream.Handler // required
	FunctionARN string         // lambdacontext.InvokedFunctionArn for in-process handlers
	// RemoteHandler says Handler (or WindowHandler) calls a Lambda
	// function through the Invoke API: the event goes as JSON, so a call
	// cannot change the records' bytes. Otherwise (an in-process handler,
	// which may decode or decrypt Data in place) the records of a batch
	// whose call failed are read again from the stream for what comes
	// next, and each later call of them gets a copy of its own
	// (dispatch.Config.Reread); calls that do not fail cost nothing more.
	RemoteHandler bool
	// HandlerTimeout is the deadline of one handler call, on the context
	// the handler receives (default 15m, Lambda's longest function
	// timeout). A call that outlives it is a failed attempt.
	HandlerTimeout time.Duration
	// Deadline, when set, is a moment no handler call may run past (the
	// scheduled function's own deadline less its margin): calls are cut
	// there, a cut call is not an attempt, and its batch stays
	// without a checkpoint for the next run.
	Deadline time.Time
	// MaxBatchBytes bounds a batch's size as the handler receives it
	// (the event's JSON), besides BatchSize; default 6 MB, Lambda's
	// synchronous invocation payload limit.
	MaxBatchBytes int
	// OversizeAlone delivers a record larger than MaxBatchBytes alone
	// instead of giving it up (in-process handlers: no request limit).
	OversizeAlone    bool
	MaxRetryAttempts int           // retries of a failing batch; -1 = until MaxRecordAge (use -1 for the default)
	MaxRecordAge     time.Duration // <= 0: never give up on age
	BisectOnError    bool
	// IgnoreItemFailures ignores batchItemFailures (Lambda without
	// ReportBatchItemFailures).
	IgnoreItemFailures bool
	// TumblingWindow, when above 0, hands the records to WindowHandler in
	// tumbling windows of this length (1–900 s) with state, as Lambda's
	// TumblingWindowInSeconds; ParallelizationFactor must then be 1.
	TumblingWindow time.Duration
	WindowHandler  stream.WindowHandler
	// Filter, when not nil, keeps only the user records it matches (Lambda's
	// FilterCriteria): the others are never passed to the handler, are
	// counted and are checkpointed past.
	Filter *filter.Filter
	// ParallelizationFactor is how many batches of one shard are in flight
	// at once (1–10; 0 means 1), grouped by the user record's partition key
	// into lanes (dispatch.Lanes) that do not wait for each other: each
	// lane batches (BatchSize, MaxBatchingWindow), calls, retries, bisects
	// and gives up on its own, one key stays in order, and the shard reads
	// on while its lanes hold less than their share of ReadBudget. The
	// checkpoint is the position before the lowest record any lane has not
	// finished. Handler calls of one shard then run concurrently (up to the
	// factor), on goroutines other than the shard's.
	ParallelizationFactor int
	OnFailure             dispatch.Destination
	// DeliverOutOfRange hands every user record of a KPL aggregate to the
	// handler, also those whose hash key lies outside the shard's range
	// (-out-of-range deliver), for aggregators that never re-put them; by
	// default they are dropped and counted, as KCL drops them (the KPL
	// re-puts such records to the right shard).
	DeliverOutOfRange bool

	RetryWaitTime    time.Duration // Kinesis read retry wait; default 100ms
	RetryMaxAttempts int           // Kinesis read retries before back-off; default 3
	// IdleTimeBetweenReads is the time from one GetRecords of a shard that
	// has caught up to the next (KCL's idleTimeBetweenReadsInMillis); a
	// shard behind is read again as soon as Kinesis's 5 reads per second
	// allow. Default 200ms.
	IdleTimeBetweenReads time.Duration
	Region               string // awsRegion in events

	// SummaryInterval is how often the worker logs one summary line at
	// INFO ("worker summary": shards held, records/s, bytes/s, the
	// largest lag, failures since the last line), from a goroutine of its
	// own that reads Snapshot: nothing is added to the path of a record.
	// Default 1m; negative: no summary lines.
	SummaryInterval time.Duration

	// MetricsLevel is how much is measured (KCL's metricsLevel); at NONE
	// the hot path does not read the clock. The zero value is DETAILED.
	MetricsLevel metrics.Level

	Kinesis  KinesisAPI  // required
	DynamoDB DynamoDBAPI // required
	Logger   *slog.Logger
}

func (c *Config) fill() error {
	var errs []error
	if c.AppName == "" {
		errs = append(errs, errors.New("app-name is required"))
	}
	if c.StreamName == "" {
		errs = append(errs, errors.New("stream-name is required"))
	} else if names, err := StreamNames(c.StreamName); err != nil {
		errs = append(errs, err)
	} else if (len(names) > 1 || MultiStream(c.StreamName)) && c.ConsumerARN != "" {
		errs = append(errs, fmt.Errorf("consumer-arn %q with %d streams: a consumer ARN is of one stream; give -consumer-name, registered on each stream", c.ConsumerARN, len(names)))
	}
	switch {
	case c.TumblingWindow > 0 && c.WindowHandler == nil:
		errs = append(errs, errors.New("a windowed handler is required with a tumbling window"))
	case c.TumblingWindow > 0 && c.ParallelizationFactor > 1:
		errs = append(errs, fmt.Errorf("tumbling-window %s with parallelization-factor %d: allowed one of them", c.TumblingWindow, c.ParallelizationFactor))
	case c.TumblingWindow == 0 && c.Handler == nil:
		errs = append(errs, errors.New("a handler is required"))
	}
	if err := c.checkConsumer(); err != nil {
		errs = append(errs, err)
	}
	if c.Kinesis == nil || c.DynamoDB == nil {
		errs = append(errs, errors.New("coordinator: Kinesis and DynamoDB clients are required"))
	}
	if c.WorkerID == "" {
		c.WorkerID = DefaultWorkerID()
	}
	switch c.InitialPosition {
	case "":
		c.InitialPosition = stream.Latest
	case stream.Latest, stream.TrimHorizon:
	case stream.AtTimestamp:
		if c.InitialTimestamp.IsZero() {
			errs = append(errs, errors.New("initial-timestamp is required with initial-position AT_TIMESTAMP"))
		}
	default:
		errs = append(errs, fmt.Errorf("initial-position %q: allowed TRIM_HORIZON, LATEST, AT_TIMESTAMP", c.InitialPosition))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.CheckpointInterval, time.Second)
	def(&c.FailoverTime, 10*time.Second)
	def(&c.HandoffTimeout, 30*time.Second)
	def(&c.FormerStreamRetention, time.Hour)
	def(&c.ShardSyncInterval, time.Minute)
	def(&c.DrainTimeout, 15*time.Second)
	def(&c.HandlerTimeout, 15*time.Minute)
	def(&c.ParkRetryWait, 5*time.Second)
	def(&c.MaxParkRetryWait, 5*time.Minute)
	def(&c.SummaryInterval, time.Minute)
	if c.ReadBudget == 0 {
		c.ReadBudget = 2 << 20
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100 // dispatch's default, which read's chunks follow
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	for name, d := range map[string]time.Duration{
		"checkpoint-interval": c.CheckpointInterval, "failover-time": c.FailoverTime, "handoff-timeout": c.HandoffTimeout,
		"shard-sync-interval": c.ShardSyncInterval, "drain-timeout": c.DrainTimeout,
		"handler-timeout": c.HandlerTimeout, "park-retry-wait": c.ParkRetryWait, "max-park-retry-wait": c.MaxParkRetryWait,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", name, d))
		}
	}
	if c.ParallelizationFactor == 0 {
		c.ParallelizationFactor = 1
	}
	if c.ParallelizationFactor < 1 || c.ParallelizationFactor > 10 {
		errs = append(errs, fmt.Errorf("parallelization-factor %d: allowed 1–10", c.ParallelizationFactor))
	}
	if c.MaxLeases < 0 {
		errs = append(errs, fmt.Errorf("max-leases %d: must be 0 (no limit) or more", c.MaxLeases))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// checkConsumer checks ConsumerName and ConsumerARN without a call.
func (c *Config) checkConsumer() error {
	switch {
	case c.ConsumerName != "" && c.ConsumerARN != "":
		return fmt.Errorf("consumer-name %q and consumer-arn %q: allowed one of them", c.ConsumerName, c.ConsumerARN)
	case c.ConsumerName != "":
		if err := fetch.ValidConsumerName(c.ConsumerName); err != nil {
			return fmt.Errorf("consumer-name %w", err)
		}
	case c.ConsumerARN != "":
		if _, err := fetch.ConsumerARNStream(c.ConsumerARN); err != nil {
			return fmt.Errorf("consumer-arn %w", err)
		}
	}
	return nil
}

// DefaultMaxBatchBytes is Lambda's 6 MB limit on a synchronous
// invocation's request.
const DefaultMaxBatchBytes = dispatch.DefaultMaxBatchBytes

// DefaultWorkerID is host-pid-random, unique per process.
func DefaultWorkerID() string {
	host, _ := os.Hostname()
	host = strings.ReplaceAll(host, ":", "-")
	if host == "" {
		host = "worker"
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4))
}
