package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
)

// Batch is what one read gave.
type Batch struct {
	Records            []types.Record
	MillisBehindLatest int64
	// End is true when the shard is closed and every record was returned;
	// Children then lists the shards that continue it.
	End      bool
	Children []types.ChildShard
}

// Config describes one shard's reader. The zero value of each optional
// field takes the default named.
type Config struct {
	StreamName string
	ShardID    string
	// Start is the checkpoint (the reader starts AT it; the caller drops
	// what was done) or a sentinel: TRIM_HORIZON, LATEST, AT_TIMESTAMP.
	Start     stream.Position
	Timestamp time.Time // for AT_TIMESTAMP

	RetryWaitTime    time.Duration // wait before retrying a throttled call; default 100ms
	RetryMaxAttempts int           // throttled retries at RetryWaitTime before back-off; default 3
	MaxBackoff       time.Duration // back-off cap; default 10s
	Limit            int32         // most records per GetRecords, 1–10000; default 10000
	// TargetBytes bounds what one read brings, so that what a shard holds
	// at once is bounded: the records asked for in each GetRecords are
	// TargetBytes over the mean size of the records read so far (at most
	// Limit; the first read asks for FirstLimit, or fewer if records of
	// 16 KiB would pass TargetBytes). Default 1 MiB; a negative value asks
	// for Limit every time.
	TargetBytes int
	FirstLimit  int32 // records in the first GetRecords; default 100
	// NoTiming leaves GetRecords' time out of Stats (metrics level NONE:
	// the clock is not read for it).
	NoTiming bool
	// BusyInterval is the least time from the start of one GetRecords
	// call to the start of the next while the reader is behind (the last
	// call returned records and MillisBehindLatest > 0): the next read
	// starts at once if handling the last one took that long already.
	// IdleInterval is that time once the reader has caught up (no records,
	// or MillisBehindLatest 0). Kinesis allows 5 calls per second per
	// shard, shared by every consumer of the stream: 200ms is all of it.
	BusyInterval time.Duration // default 200ms
	IdleInterval time.Duration // default 200ms
	Logger       *slog.Logger

	// ConsumerARN, for NewSubscriber, is the registered stream consumer
	// whose enhanced fan-out subscriptions bring the records.
	ConsumerARN string
	// QuietTimeout is how long a subscription may send nothing before it
	// is started again; default DefaultQuietTimeout.
	QuietTimeout time.Duration
}

// KinesisAPI lists the Kinesis calls a reader makes.
type KinesisAPI interface {
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// Reader reads one shard. It is not safe for concurrent use.
type Reader struct {
	client   KinesisAPI
	cfg      Config
	log      *slog.Logger
	iterator *string
	lastSeq  string    // last sequence number returned
	latestAt time.Time // when the first LATEST iterator was asked for
	nextCall time.Time
	ended    bool
	meanSize float64 // bytes per Kinesis record read, a moving mean; 0 before any

	// What Stats reports.
	getRecordsTime   metrics.Hist
	getRecordsOK     int64
	getRecordsFailed int64
	expired          int64
}

// Stats counts a reader's calls (KCL's KinesisDataFetcher.getRecords and
// ExpiredIterator metrics).
type Stats struct {
	GetRecords       metrics.HistSnapshot // successful calls and their time (Count only with NoTiming)
	GetRecordsFailed int64                // failed calls, throttles included
	ExpiredIterators int64

	// Enhanced fan-out (a subscription publisher; zero when polling):
	// SubscribeToShard calls that started a subscription (the first one,
	// and each after an error or a quiet subscription), that renewed one
	// at its end (every 5 minutes, from its continuation sequence number),
	// and that failed or ended in an error (throttles and
	// ResourceInUseException included).
	SubscriptionStarts   int64
	SubscriptionRenewals int64
	SubscriptionErrors   int64
}

// Add is s and o counted together.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		GetRecords: s.GetRecords.Add(o.GetRecords), GetRecordsFailed: s.GetRecordsFailed + o.GetRecordsFailed,
		ExpiredIterators: s.ExpiredIterators + o.ExpiredIterators, SubscriptionStarts: s.SubscriptionStarts + o.SubscriptionStarts,
		SubscriptionRenewals: s.SubscriptionRenewals + o.SubscriptionRenewals, SubscriptionErrors: s.SubscriptionErrors + o.SubscriptionErrors,
	}
}

// Stats returns the reader's counts so far. Read it between Next calls.
func (r *Reader) Stats() Stats {
	s := Stats{GetRecordsFailed: r.getRecordsFailed, ExpiredIterators: r.expired}
	if r.cfg.NoTiming {
		s.GetRecords = metrics.HistSnapshot{Count: r.getRecordsOK}
	} else {
		s.GetRecords = r.getRecordsTime.Snapshot()
	}
	return s
}

// recordOverhead is what a record of an answer takes besides its data,
// partition key and sequence number.
const recordOverhead = 64

// firstGuess is the record size the first read of a shard assumes.
const firstGuess = 16 << 10

// SetTargetBytes changes TargetBytes for the next reads (the worker
// shares a budget among the shards it holds).
func (r *Reader) SetTargetBytes(n int) { r.cfg.TargetBytes = n }

// limit is how many records the next GetRecords asks for.
func (r *Reader) limit() int32 {
	if r.cfg.TargetBytes < 0 {
		return r.cfg.Limit
	}
	if r.meanSize == 0 {
		// Before any record is seen, a read is bounded as if records
		// were of firstGuess bytes (a KPL aggregate is often 10–50 KB):
		// a first answer of FirstLimit 1 MB records would be far past
		// the target.
		return int32(min(int(r.cfg.FirstLimit), max(1, r.cfg.TargetBytes/firstGuess)))
	}
	n := float64(r.cfg.TargetBytes) / r.meanSize
	return int32(max(1, min(n, float64(r.cfg.Limit))))
}

// observe updates the mean record size from a response.
func (r *Reader) observe(recs []types.Record) {
	if len(recs) == 0 {
		return
	}
	// What a record takes in the answer and in memory: its data, key and
	// sequence number, and about recordOverhead besides (field names,
	// timestamp, encryption type) — a small record is mostly the rest.
	total := 0
	for i := range recs {
		total += len(recs[i].Data) + len(aws.ToString(recs[i].PartitionKey)) + len(aws.ToString(recs[i].SequenceNumber)) + recordOverhead
	}
	mean := float64(total) / float64(len(recs))
	if r.meanSize == 0 {
		r.meanSize = mean
		return
	}
	r.meanSize = 0.5*r.meanSize + 0.5*mean
}

// New returns a reader for cfg.ShardID, validating cfg.
func New(client KinesisAPI, cfg Config) (*Reader, error) {
	if cfg.StreamName == "" || cfg.ShardID == "" {
		return nil, errors.New("fetch: stream name and shard id are required")
	}
	switch cfg.Start.Seq {
	case "":
		return nil, fmt.Errorf("fetch %s: no start position", cfg.ShardID)
	case stream.ShardEnd:
		return nil, fmt.Errorf("fetch %s: shard already ended", cfg.ShardID)
	case stream.AtTimestamp:
		if cfg.Timestamp.IsZero() {
			return nil, fmt.Errorf("fetch %s: AT_TIMESTAMP needs a timestamp", cfg.ShardID)
		}
	}
	if cfg.RetryWaitTime <= 0 {
		cfg.RetryWaitTime = 100 * time.Millisecond
	}
	if cfg.RetryMaxAttempts <= 0 {
		cfg.RetryMaxAttempts = 3
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.Limit <= 0 || cfg.Limit > 10000 {
		cfg.Limit = 10000
	}
	if cfg.TargetBytes == 0 {
		cfg.TargetBytes = 1 << 20
	}
	if cfg.FirstLimit <= 0 {
		cfg.FirstLimit = min(100, cfg.Limit)
	}
	if cfg.BusyInterval <= 0 {
		cfg.BusyInterval = 200 * time.Millisecond
	}
	if cfg.IdleInterval <= 0 {
		cfg.IdleInterval = DefaultIdleInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reader{client: client, cfg: cfg, log: log}, nil
}

// DefaultIdleInterval is the time between reads of a shard that has caught
// up: Kinesis's 5 GetRecords calls per second per shard.
const DefaultIdleInterval = 200 * time.Millisecond

// ErrShardEnded is returned by Next after a Batch with End.
var ErrShardEnded = errors.New("shard ended")

// Next returns the next batch of records, waiting as the read limits
// require. Throttling, expired iterators and transient faults are handled
// here; the errors returned are the context's cause or faults no retry can
// mend (the stream or shard is gone, access is denied, a bad argument).
func (r *Reader) Next(ctx context.Context) (Batch, error) {
	if r.ended {
		return Batch{}, ErrShardEnded
	}
	var fails, throttles int
	renewed := false
	for {
		if err := sleepUntil(ctx, r.nextCall); err != nil {
			return Batch{}, err
		}
		if r.iterator == nil {
			it, err := r.getIterator(ctx)
			if err != nil {
				wait, ferr := r.classify(ctx, err, &fails, &throttles)
				if ferr != nil {
					return Batch{}, ferr
				}
				r.nextCall = time.Now().Add(wait)
				continue
			}
			r.iterator = it
		}
		// The next call is timed from this one's start. The clock is read
		// after it for the metrics, or for the debug line.
		debug := r.log.Enabled(ctx, slog.LevelDebug)
		began := time.Now()
		out, err := r.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: r.iterator, Limit: aws.Int32(r.limit())})
		if err == nil {
			r.getRecordsOK++
			var took time.Duration
			if !r.cfg.NoTiming || debug {
				took = time.Since(began)
			}
			if !r.cfg.NoTiming {
				r.getRecordsTime.Observe(took)
			}
			if debug {
				r.log.Debug("GetRecords", "records", len(out.Records), "millisBehindLatest", aws.ToInt64(out.MillisBehindLatest), "duration", took)
			}
		} else {
			r.getRecordsFailed++
		}
		if err != nil {
			var expired *types.ExpiredIteratorException
			var invalid *types.InvalidArgumentException
			switch {
			case errors.As(err, &expired):
				r.expired++
				r.log.Info("shard iterator expired; getting a new one", "after", r.lastSeq)
				r.iterator = nil
				continue
			case errors.As(err, &invalid) && !renewed:
				// An iterator the server no longer knows (it restarted):
				// one new iterator before the error counts as fatal.
				r.log.Warn("shard iterator refused; getting a new one", "after", r.lastSeq, "error", err)
				r.iterator, renewed = nil, true
				continue
			}
			wait, ferr := r.classify(ctx, err, &fails, &throttles)
			if ferr != nil {
				return Batch{}, ferr
			}
			r.nextCall = time.Now().Add(wait)
			continue
		}
		r.observe(out.Records)
		b := Batch{Records: out.Records, MillisBehindLatest: aws.ToInt64(out.MillisBehindLatest)}
		if n := len(out.Records); n > 0 {
			r.lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
		}
		r.iterator = out.NextShardIterator
		if r.iterator == nil {
			r.ended = true
			b.End = true
			b.Children = out.ChildShards
			return b, nil
		}
		interval := r.cfg.BusyInterval
		if len(out.Records) == 0 || b.MillisBehindLatest == 0 {
			interval = r.cfg.IdleInterval
		}
		r.nextCall = began.Add(interval)
		return b, nil
	}
}

func (r *Reader) getIterator(ctx context.Context) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(r.cfg.StreamName), ShardId: aws.String(r.cfg.ShardID)}
	switch {
	case r.lastSeq != "":
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(r.lastSeq)
	case r.cfg.Start.Seq == stream.TrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case r.cfg.Start.Seq == stream.Latest && !r.latestAt.IsZero():
		// An iterator that expired before any record came: a new LATEST
		// would skip what was written meanwhile.
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(r.latestAt)
	case r.cfg.Start.Seq == stream.Latest:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
		r.latestAt = time.Now()
	case r.cfg.Start.Seq == stream.AtTimestamp:
		in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
		in.Timestamp = aws.Time(r.cfg.Timestamp)
	default:
		in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
		in.StartingSequenceNumber = aws.String(r.cfg.Start.Seq)
	}
	out, err := r.client.GetShardIterator(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.ShardIterator, nil
}

// classify decides what to do after a failed call: how long to wait before
// the next try, or a fatal error. A call that failed because ctx ended
// (a drain, a lease lost) is no failure to warn about: its error is
// returned as it is.
func (r *Reader) classify(ctx context.Context, err error, fails, throttles *int) (time.Duration, error) {
	return classify(ctx, r.cfg, r.log, err, fails, throttles)
}

// classify is Reader.classify for a publisher of cfg logging to log.
func classify(ctx context.Context, cfg Config, log *slog.Logger, err error, fails, throttles *int) (time.Duration, error) {
	if IsFatal(err) {
		return 0, fmt.Errorf("read %s: %w", cfg.ShardID, err)
	}
	if ctx.Err() != nil {
		return 0, context.Cause(ctx)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, err
	}
	if IsThrottle(err) {
		*throttles++
		if *throttles <= cfg.RetryMaxAttempts {
			log.Debug("read throttled; retrying", "attempt", *throttles, "wait", cfg.RetryWaitTime)
			return cfg.RetryWaitTime, nil
		}
		wait := backoff(cfg.RetryWaitTime, *throttles-cfg.RetryMaxAttempts, cfg.MaxBackoff)
		log.Warn("read still throttled after the retry attempts; backing off", "attempts", *throttles, "wait", wait, "error", err)
		return wait, nil
	}
	*fails++
	wait := backoff(cfg.RetryWaitTime, *fails, cfg.MaxBackoff)
	log.Warn("read failed; retrying", "attempt", *fails, "wait", wait, "error", err)
	return wait, nil
}

// backoff doubles base n times, capped at max.
func backoff(base time.Duration, n int, max time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// IsThrottle reports whether err is Kinesis asking the caller to slow down.
func IsThrottle(err error) bool {
	var pt *types.ProvisionedThroughputExceededException
	var le *types.LimitExceededException
	var kt *types.KMSThrottlingException
	return errors.As(err, &pt) || errors.As(err, &le) || errors.As(err, &kt)
}

// IsFatal reports whether err is one no retry can mend.
func IsFatal(err error) bool {
	var nf *types.ResourceNotFoundException
	var ia *types.InvalidArgumentException
	var ad *types.AccessDeniedException
	var kd *types.KMSDisabledException
	var ks *types.KMSInvalidStateException
	var kn *types.KMSNotFoundException
	var ka *types.KMSAccessDeniedException
	return errors.As(err, &nf) || errors.As(err, &ia) || errors.As(err, &ad) ||
		errors.As(err, &kd) || errors.As(err, &ks) || errors.As(err, &kn) || errors.As(err, &ka)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return context.Cause(ctx)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-timer.C:
		return nil
	}
}
