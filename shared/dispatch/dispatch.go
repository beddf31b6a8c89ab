package dispatch

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
)

// ErrStopping is returned by Deliver when stop was closed before every
// record was done, or when Config.Deadline came; the records not reported
// done are still to do.
var ErrStopping = errors.New("stopping")

// errCut is the cause of a call's context when Config.Deadline cut it.
var errCut = errors.New("handler call cut at the deadline")

// Defaults.
const (
	DefaultHandlerTimeout = 15 * time.Minute
	// DefaultMaxBatchBytes is Lambda's limit on a synchronous Invoke
	// request (6 MB).
	DefaultMaxBatchBytes = 6 * 1024 * 1024
)

// Reasons records are given up, in GiveUpError.Reason and Failure.Reason.
const (
	ReasonRetriesExhausted = "retry attempts exhausted"
	ReasonRecordAge        = "record age exceeded"
	// ReasonTooLarge: one record alone is larger than MaxBatchBytes, or
	// the handler's host refused it alone as too large (stream.ErrTooLarge).
	ReasonTooLarge = "record too large for one invocation"
)

// GiveUpError says a batch could not be handled and there is no on-failure
// destination: the shard must stop rather than skip it.
type GiveUpError struct {
	ShardID  string
	First    stream.Position
	Last     stream.Position
	Attempts int
	Reason   string // one of the Reason constants
	Err      error  // the last handler error, if any
}

func (e *GiveUpError) Error() string {
	msg := fmt.Sprintf("shard %s: gave up on records %s..%s after %d attempts (%s) and no on-failure destination is set",
		e.ShardID, e.First, e.Last, e.Attempts, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *GiveUpError) Unwrap() error { return e.Err }

// Conditions, as Lambda writes them in an on-failure record's
// requestContext.condition; RecordTooLarge is Shardline's own.
const (
	ConditionRetriesExhausted = "RetryAttemptsExhausted"
	ConditionRecordAge        = "RecordAgeExceeded"
	ConditionTooLarge         = "RecordTooLarge"
)

// ConditionOf maps a Reason constant to its Condition.
func ConditionOf(reason string) string {
	switch reason {
	case ReasonRecordAge:
		return ConditionRecordAge
	case ReasonTooLarge:
		return ConditionTooLarge
	}
	return ConditionRetriesExhausted
}

// Failure describes records given up, for an on-failure destination: what
// Lambda's on-failure record says (requestContext, responseContext,
// KinesisBatchInfo) and, beyond Lambda, the records themselves.
type Failure struct {
	ShardID     string
	StreamARN   string // KinesisBatchInfo.streamArn
	FunctionARN string // requestContext.functionArn: the target function, or the in-process handler's ARN
	RequestID   string // requestContext.requestId: the last call's
	Records     []stream.Record
	Attempts    int    // requestContext.approximateInvokeCount
	Reason      string // one of the Reason constants
	Condition   string // requestContext.condition: one of the Condition constants
	LastError   string
	// FunctionError is responseContext.functionError: "Unhandled" or
	// "Handled" when the last call failed with a function error, "" when
	// it failed otherwise (a timeout, a throttle, partial failures).
	FunctionError string
	// NotInvoked: the last call never reached the function (an error of
	// the Invoke API, or a request not sent); StatusCode is the Invoke
	// API's answer then (0: none).
	NotInvoked bool
	StatusCode int
	Time       time.Time
}

// Destination receives records given up. Send must not return before the
// failure is stored: the records are checkpointed past after it returns.
type Destination interface {
	Send(ctx context.Context, f Failure) error
}

// Discard is the destination of -on-failure discard: records given up are
// dropped, as Lambda drops them when a mapping has no destination —
// counted (GivenUp, DroppedEventCount), logged in one WARN line per batch,
// stored nowhere.
var Discard Destination = discard{}

type discard struct{}

func (discard) Send(context.Context, Failure) error { return nil }
func (discard) String() string                      { return "discard" }

// Config sets a dispatcher up. The zero value of each optional field takes
// the default named.
type Config struct {
	Handler stream.Handler // required
	Source  stream.Source  // fills the event's source fields
	// FunctionARN fills lambdacontext.InvokedFunctionArn for in-process
	// handlers.
	FunctionARN string
	BatchSize   int // most records per call, 1–10000; default 100
	// MaxRetryAttempts is how many times a failing batch is retried; -1
	// (or any negative number) retries until MaxRecordAge gives up.
	// The zero value means 0 retries: use -1 for "forever". A throttled
	// call (stream.ErrThrottled) and a batch split because it was too
	// large (stream.ErrTooLarge) use up no attempt.
	MaxRetryAttempts int
	MaxRecordAge     time.Duration // give up on records older than this; <= 0: never
	BisectOnError    bool
	// IgnoreItemFailures ignores the handler's batchItemFailures, as
	// Lambda does without FunctionResponseTypes ReportBatchItemFailures
	// (-report-batch-item-failures=false): only an error fails a batch.
	IgnoreItemFailures bool
	OnFailure          Destination // nil: a batch given up stops the shard
	// HandlerTimeout is each call's deadline (default 15m), set on the
	// context the handler receives, the one that carries its
	// lambdacontext.LambdaContext, as Lambda's runtime does. A call that
	// outlives it is a failed attempt whose error wraps
	// stream.ErrHandlerTimeout, even if the handler ignores its context
	// and never returns: the dispatcher stops waiting at the deadline and
	// goes on (retry, bisect, give up). The abandoned call may still be
	// running, even while the next call for the same records runs, and
	// what it returns later is ignored. Measured on the wall clock, not
	// with Now.
	HandlerTimeout time.Duration
	// Deadline, when not zero, is the moment no call may run past (the
	// scheduled function's own deadline less its margin): it caps every
	// call's context too. A call cut by it is not an attempt: Deliver
	// returns ErrStopping with that batch not done, so nothing is
	// checkpointed past it. No call starts, and no back-off waits, past it.
	Deadline time.Time
	// MaxBatchBytes bounds each call's event as invoke.Marshal writes it,
	// the JSON a Lambda function receives (default 6 MB = 6*1024*1024,
	// Lambda's limit on a synchronous request): batches end at BatchSize
	// records or before MaxBatchBytes, whichever comes first. A record
	// too large for a call on its own is given up with ReasonTooLarge.
	// Negative: no limit (an in-process handler has no request limit).
	MaxBatchBytes int
	// OversizeAlone delivers a record larger than MaxBatchBytes in a batch
	// of its own instead of giving it up: an in-process handler has no
	// request limit, only the memory bound the byte limit gives batches.
	OversizeAlone bool
	// NoTiming leaves the calls' durations unmeasured (metrics level NONE).
	NoTiming bool
	// Reread, when set, reads recs again from the stream and sets each
	// one's Data to its bytes as stored, in memory no call has seen; it
	// returns how many of recs it could not find (gone past the stream's
	// retention), whose Data it leaves as they are. Set it for a handler
	// that may change its event's Data in place (an in-process one: a
	// handler that decodes or decrypts in place): after a batch's first
	// failed call the records still to do are read again, and from then
	// on each call of them gets a copy of its own, so that retries,
	// bisected halves and the on-failure destination get the bytes as
	// read, as on Lambda, where every invocation gets fresh bytes. The
	// calls before a failure get the bytes as read, with no copy: the
	// path with no failure costs nothing. Without Reread nothing is read
	// again or copied (a function called through the Invoke API gets its
	// event as JSON and cannot change them).
	Reread          func(ctx context.Context, recs []stream.Record) (missing int, err error)
	RetryBackoff    time.Duration // first wait between handler retries; default 100ms
	MaxRetryBackoff time.Duration // longest wait, for failures and throttles alike; default 10s
	Logger          *slog.Logger
	Now             func() time.Time // default time.Now; for MaxRecordAge and Failure.Time
}

// Stats counts what a dispatcher did; read it with Dispatcher.Stats.
type Stats struct {
	// Batches is handler calls made (retries and split batches count
	// again).
	Batches int64
	// Records is user records handed to the handler, once per call: a
	// record retried twice counts three times.
	Records int64
	// Handled is user records the handler finished with successfully,
	// each counted once: the records of a successful call, and those
	// before the lowest batchItemFailures item. Handled plus GivenUp is
	// every record reported done.
	Handled int64
	// Failures is failed attempts: calls that returned an error, panicked,
	// timed out or reported batchItemFailures. Throttled calls and calls
	// refused as too large are not attempts.
	Failures int64
	// Retries is calls repeated after a failed attempt.
	Retries int64
	// GivenUp is user records sent to the on-failure destination.
	GivenUp int64
	// Throttles is calls the handler's host refused as throttled
	// (stream.ErrThrottled); each is retried with back-off.
	Throttles int64
	// NotInvoked is calls that never reached the function
	// (stream.ErrNotInvoked): retried with back-off, not attempts.
	NotInvoked int64
	// Timeouts is calls that outlived their deadline
	// (stream.ErrHandlerTimeout); each is also a failure.
	Timeouts int64
	// HandledBytes is the data of the Handled records.
	HandledBytes int64
	// FailedRecords is user records in failed attempts (from the lowest
	// failed item on, for a partial failure): Lambda's
	// FailedInvokeEventCount.
	FailedRecords int64
	// DestinationFailures is sends the on-failure destination refused.
	DestinationFailures int64
	// HandlerTime is the calls' durations (empty with NoTiming).
	HandlerTime metrics.HistSnapshot
}

// Dispatcher calls a handler for one shard at a time. Use one per shard; it
// is not safe for concurrent use. It keeps nothing of a batch once Deliver
// returns, except what an abandoned call (see Config.HandlerTimeout) still
// holds while it runs.
type Dispatcher struct {
	cfg         Config
	log         *slog.Logger
	sizer       invoke.Sizer
	errTimeout  error // the cause of a call's context at HandlerTimeout
	stats       Stats
	handlerTime metrics.Hist
	// lastRequestID is the last call's request id, for Failure.
	lastRequestID string
	// abandonedN counts calls abandoned at their timeout that still run;
	// freed is signalled when one returns.
	abandonedN atomic.Int32
	freed      chan struct{}
}

// New validates cfg and fills its defaults.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Handler == nil {
		return nil, errors.New("dispatch: a handler is required")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 100
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > 10000 {
		return nil, fmt.Errorf("batch-size %d: allowed 1–10000", cfg.BatchSize)
	}
	if cfg.HandlerTimeout == 0 {
		cfg.HandlerTimeout = DefaultHandlerTimeout
	}
	if cfg.HandlerTimeout < 0 {
		return nil, fmt.Errorf("handler-timeout %s: must be positive", cfg.HandlerTimeout)
	}
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.MaxRetryBackoff <= 0 {
		cfg.MaxRetryBackoff = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{
		cfg: cfg, log: log, sizer: invoke.NewSizer(cfg.Source),
		errTimeout: fmt.Errorf("handler call outlived its %s deadline: %w", cfg.HandlerTimeout, stream.ErrHandlerTimeout),
		freed:      make(chan struct{}, 1),
	}, nil
}

// Stats returns the counts so far.
func (d *Dispatcher) Stats() Stats {
	s := d.stats
	if !d.cfg.NoTiming {
		s.HandlerTime = d.handlerTime.Snapshot()
	}
	return s
}

// handled counts recs as handled.
func (d *Dispatcher) handled(recs []stream.Record) {
	d.stats.Handled += int64(len(recs))
	for i := range recs {
		d.stats.HandledBytes += int64(len(recs[i].Data))
	}
}

// Deliver hands recs, in order, to the handler in batches of at most
// BatchSize records and MaxBatchBytes bytes. After each record is handled
// (or given up to the on-failure destination) it calls done with the
// position of the last record done, in increasing order. The handler's
// context derives from ctx. Deliver returns nil when every record is done,
// ErrStopping when stop was closed between batches or during a back-off or
// when Deadline came, ctx's cause when ctx ends, or a *GiveUpError when a
// batch had to be given up with nowhere to send it.
func (d *Dispatcher) Deliver(ctx context.Context, stop <-chan struct{}, recs []stream.Record, done func(stream.Position)) error {
	for len(recs) > 0 {
		if stopped(stop) {
			return ErrStopping
		}
		n, size := d.next(recs)
		if n == 0 && d.cfg.OversizeAlone {
			n = 1
		}
		if n == 0 {
			err := fmt.Errorf("record %s makes an event of %d bytes, more than %d: %w",
				recs[0].Position(), size, d.cfg.MaxBatchBytes, stream.ErrTooLarge)
			if err := d.giveUp(ctx, recs[:1], 0, ReasonTooLarge, err, done); err != nil {
				return err
			}
			recs = recs[1:]
			continue
		}
		// The batch's capacity ends with it: no one appends over the rest.
		if err := d.deliverBatch(ctx, stop, recs[:n:n], 0, false, done); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// next is how many records of recs the next batch takes: at most
// BatchSize, and no more than fit in MaxBatchBytes. 0 means that the first
// record alone does not fit; size is then the size of its event.
func (d *Dispatcher) next(recs []stream.Record) (n, size int) {
	n = min(len(recs), d.cfg.BatchSize)
	if d.cfg.MaxBatchBytes < 0 {
		return n, 0
	}
	// Most batches are far under the limit: bounds from the lengths alone
	// settle it without scanning a string.
	bound := 0
	for i := range n {
		bound += d.sizer.Bound(&recs[i])
	}
	if invoke.EventSize(n, bound) <= d.cfg.MaxBatchBytes {
		return n, 0
	}
	sum := 0
	for i := range n {
		r := d.sizer.Record(&recs[i])
		s := invoke.EventSize(i+1, sum+r)
		if s > d.cfg.MaxBatchBytes {
			if i == 0 {
				return 0, s
			}
			return i, size
		}
		sum, size = sum+r, s
	}
	return n, size
}

// deliverBatch runs one batch to completion: success, give-up, or stop.
// attempts is how many failed attempts the batch has had already. As on
// Lambda: records older than MaxRecordAge are given up before every call,
// without another call; a throttle or a batch too large for the host is
// never an attempt; a function error (an error, a panic, a timeout) bisects
// the batch when BisectOnError is set, and the halves are not attempts; a
// partial failure (batchItemFailures) resumes at the lowest failed item.
// fresh says the batch's Data were read again (Config.Reread) after a
// failed call: each call then gets a copy of its own.
func (d *Dispatcher) deliverBatch(ctx context.Context, stop <-chan struct{}, batch []stream.Record, attempts int, fresh bool, done func(stream.Position)) error {
	throttles := 0
	var lastErr error
	for {
		if n := d.expired(batch); n > 0 {
			if err := d.giveUp(ctx, batch[:n], attempts, ReasonRecordAge, lastErr, done); err != nil {
				return err
			}
			if batch = batch[n:]; len(batch) == 0 {
				return nil
			}
		}
		failed, err := d.call(ctx, batch, fresh)
		if err == nil && failed < 0 {
			d.handled(batch)
			done(batch[len(batch)-1].Position())
			return nil
		}
		if cerr := context.Cause(ctx); cerr != nil {
			return cerr
		}
		lastErr = err // nil for a partial failure: not a function error
		if !fresh && d.cfg.Reread != nil && !errors.Is(err, errCut) {
			// The failed call may have changed the bytes it was given:
			// whatever comes next (a retry, the halves, the on-failure
			// destination) gets them as read.
			if err := d.reread(ctx, stop, batch[max(failed, 0):]); err != nil {
				return err
			}
			fresh = true
		}
		first, last := batch[0].Position().String(), batch[len(batch)-1].Position().String()
		switch {
		case errors.Is(err, errCut):
			d.log.Warn("handler call cut at the deadline; its records stay for the next run",
				"records", len(batch), "first", first, "deadline", d.cfg.Deadline, "error", err.Error())
			return fmt.Errorf("%w: records %s..%s: %w", ErrStopping, first, last, err)
		case errors.Is(err, stream.ErrThrottled), errors.Is(err, stream.ErrNotInvoked):
			// Not an attempt, as on Lambda: retried until the records
			// are too old (checked before the next call). Never bisected.
			msg := "handler throttled; retrying"
			if errors.Is(err, stream.ErrNotInvoked) {
				d.stats.NotInvoked++
				msg = "function not invoked; retrying until the records expire (not a retry attempt)"
			} else {
				d.stats.Throttles++
			}
			throttles++
			wait := backoff(d.cfg.RetryBackoff, throttles-1, d.cfg.MaxRetryBackoff)
			d.log.Warn(msg, "records", len(batch), "first", first,
				"tries", throttles, "wait", wait, "error", err.Error())
			if err := d.wait(ctx, stop, wait); err != nil {
				return err
			}
			continue
		case errors.Is(err, stream.ErrTooLarge):
			// Not an attempt: the halves carry the attempts so far.
			if len(batch) == 1 {
				return d.giveUp(ctx, batch, attempts, ReasonTooLarge, err, done)
			}
			half := len(batch) / 2
			d.log.Info("batch too large for the handler's host; splitting it", "records", len(batch),
				"first", first, "error", err.Error())
			if err := d.deliverBatch(ctx, stop, batch[:half], attempts, fresh, done); err != nil {
				return err
			}
			return d.deliverBatch(ctx, stop, batch[half:], attempts, fresh, done)
		}
		throttles = 0
		if errors.Is(err, stream.ErrHandlerTimeout) {
			d.stats.Timeouts++
		}
		d.stats.Failures++
		d.stats.FailedRecords += int64(len(batch) - max(failed, 0))
		if failed > 0 { // records before the lowest failed item are done
			d.handled(batch[:failed])
			done(batch[failed-1].Position())
			batch = batch[failed:]
			first = batch[0].Position().String()
			if d.cfg.BisectOnError {
				// Lambda splits at the reported item and retries the
				// rest: a split, not an attempt.
				d.log.Info("partial failure: retrying from the first failed item", "records", len(batch), "first", first)
				continue
			}
		}
		attempts++
		if err != nil && d.cfg.BisectOnError && len(batch) > 1 {
			// Only a function error bisects. Each half gets its own
			// retries; splitting is not a retry.
			half := len(batch) / 2
			d.log.Info("bisecting failing batch", "records", len(batch), "error", err.Error())
			if err := d.deliverBatch(ctx, stop, batch[:half], 0, fresh, done); err != nil {
				return err
			}
			return d.deliverBatch(ctx, stop, batch[half:], 0, fresh, done)
		}
		if d.cfg.MaxRetryAttempts >= 0 && attempts > d.cfg.MaxRetryAttempts {
			return d.giveUp(ctx, batch, attempts, ReasonRetriesExhausted, lastErr, done)
		}
		wait := backoff(d.cfg.RetryBackoff, attempts-1, d.cfg.MaxRetryBackoff)
		why := fmt.Sprintf("batchItemFailures from item %d", failed)
		if err != nil {
			why = err.Error()
		}
		d.log.Warn("handler failed; retrying", "records", len(batch), "first", first,
			"attempt", attempts, "wait", wait, "error", why)
		d.stats.Retries++
		if err := d.wait(ctx, stop, wait); err != nil {
			return err
		}
	}
}

// reread gives batch its bytes as read (Config.Reread), trying again with
// back-off while the stream cannot be read, until stop or ctx ends.
func (d *Dispatcher) reread(ctx context.Context, stop <-chan struct{}, batch []stream.Record) error {
	first := batch[0].Position().String()
	for tries := 1; ; tries++ {
		missing, err := d.cfg.Reread(ctx, batch)
		if err == nil {
			if missing > 0 {
				d.log.Warn("records of a failed batch are no longer in the stream: their retries get the bytes as the failed call left them",
					"records", len(batch), "missing", missing, "first", first)
			}
			return nil
		}
		if cerr := context.Cause(ctx); cerr != nil {
			return cerr
		}
		wait := backoff(d.cfg.RetryBackoff, tries-1, d.cfg.MaxRetryBackoff)
		d.log.Warn("could not read a failed batch again for its retry; trying again", "records", len(batch),
			"first", first, "tries", tries, "wait", wait, "error", err.Error())
		if err := d.wait(ctx, stop, wait); err != nil {
			return err
		}
	}
}

// expired is how many records at the front of batch are older than
// MaxRecordAge (records arrive in order within a shard).
func (d *Dispatcher) expired(batch []stream.Record) int {
	if d.cfg.MaxRecordAge <= 0 {
		return 0
	}
	now := d.cfg.Now()
	n := 0
	for n < len(batch) && now.Sub(batch[n].ApproximateArrivalTimestamp) > d.cfg.MaxRecordAge {
		n++
	}
	return n
}

func (d *Dispatcher) giveUp(ctx context.Context, batch []stream.Record, attempts int, reason string, herr error, done func(stream.Position)) error {
	first, last := batch[0].Position(), batch[len(batch)-1].Position()
	if d.cfg.OnFailure == nil {
		return &GiveUpError{ShardID: batch[0].ShardID, First: first, Last: last, Attempts: attempts, Reason: reason, Err: herr}
	}
	f := Failure{
		ShardID: batch[0].ShardID, StreamARN: d.cfg.Source.StreamARN, FunctionARN: d.cfg.FunctionARN, RequestID: d.lastRequestID,
		Records: batch, Attempts: attempts, Reason: reason, Condition: ConditionOf(reason), Time: d.cfg.Now(),
	}
	if herr != nil {
		f.LastError = herr.Error()
		var fe *invoke.FunctionError
		var ni *invoke.NotInvokedError
		switch {
		case errors.As(herr, &fe):
			f.FunctionError = fe.Kind
		case errors.As(herr, &ni):
			// The last call never reached the function: its status is
			// the Invoke API's (0: no answer), with no function error.
			f.NotInvoked, f.StatusCode = true, ni.StatusCode
		case !errors.Is(herr, stream.ErrHandlerTimeout) && !errors.Is(herr, stream.ErrThrottled):
			f.FunctionError = "Unhandled" // an in-process handler's error or panic
		}
	}
	if err := d.cfg.OnFailure.Send(ctx, f); err != nil {
		d.stats.DestinationFailures++
		return fmt.Errorf("send records %s..%s of %s to the on-failure destination: %w", first, last, f.ShardID, err)
	}
	msg := "records given up and sent to the on-failure destination"
	if d.cfg.OnFailure == Discard {
		msg = "records given up and dropped (-on-failure discard)"
	}
	d.log.Warn(msg, "records", len(batch), "first", first.String(), "last", last.String(), "reason", reason)
	d.stats.GivenUp += int64(len(batch))
	done(last)
	return nil
}

// call invokes the handler once and returns the index of the lowest failed
// record (-1 when all succeeded; 0 when the whole batch failed). Past
// Deadline it calls nothing and returns errCut. With own, the call gets a
// copy of the batch's Data.
func (d *Dispatcher) call(ctx context.Context, batch []stream.Record, own bool) (int, error) {
	if !d.cfg.Deadline.IsZero() && !time.Now().Before(d.cfg.Deadline) {
		return 0, errCut
	}
	d.stats.Batches++
	d.stats.Records += int64(len(batch))
	hctx, cancel := d.callContext(ctx)
	defer cancel()
	d.lastRequestID = requestID()
	lc := &lambdacontext.LambdaContext{AwsRequestID: d.lastRequestID, InvokedFunctionArn: d.cfg.FunctionARN}
	// The clock is read for the metrics, or for the debug line.
	debug := d.log.Enabled(ctx, slog.LevelDebug)
	var began time.Time
	if !d.cfg.NoTiming || debug {
		began = time.Now()
	}
	ev := stream.Event(d.cfg.Source, batch)
	if own {
		stream.OwnData(&ev) // a handler that changes Data changes its own copy, never a retry's
	}
	resp, err := d.run(lambdacontext.NewContext(hctx, lc), ev)
	var took time.Duration
	if !began.IsZero() {
		took = time.Since(began)
	}
	if !d.cfg.NoTiming {
		d.handlerTime.Observe(took)
	}
	failed := -1
	if err == nil && !d.cfg.IgnoreItemFailures { // ignored: as Lambda without ReportBatchItemFailures
		failed = FailedIndex(batch, resp)
	}
	if debug {
		d.logCall(ctx, batch, d.lastRequestID, took, failed, err)
	}
	if err != nil {
		return 0, err
	}
	return failed, nil
}

// Outcomes of a handler call, in the debug line's outcome key.
const (
	OutcomeOK        = "ok"
	OutcomePartial   = "partial failure"
	OutcomeError     = "error"
	OutcomePanic     = "panic"
	OutcomeTimeout   = "timeout"
	OutcomeThrottled = "throttled"
	OutcomeTooLarge  = "too large"
	OutcomeCut       = "cut at the deadline"
)

// logCall writes one DEBUG line for a handler call: the shard (on the
// logger), records, first and last position, duration and outcome, with
// the lowest failed item of a partial failure or the error, then extra.
func (d *Dispatcher) logCall(ctx context.Context, batch []stream.Record, requestID string, took time.Duration, failed int, err error, extra ...any) {
	attrs := []any{"records", len(batch)}
	if len(batch) > 0 {
		attrs = append(attrs, "first", batch[0].Position().String(), "last", batch[len(batch)-1].Position().String())
	}
	attrs = append(attrs, "duration", took, "requestId", requestID)
	attrs = append(attrs, extra...)
	var pe *PanicError
	outcome := OutcomeOK
	switch {
	case err == nil && failed >= 0:
		outcome = OutcomePartial
		attrs = append(attrs, "failedFrom", batch[failed].Position().String())
	case err == nil:
	case errors.Is(err, errCut):
		outcome = OutcomeCut
	case errors.Is(err, stream.ErrThrottled):
		outcome = OutcomeThrottled
	case errors.Is(err, stream.ErrTooLarge):
		outcome = OutcomeTooLarge
	case errors.Is(err, stream.ErrHandlerTimeout):
		outcome = OutcomeTimeout
	case errors.As(err, &pe):
		outcome = OutcomePanic
	default:
		outcome = OutcomeError
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	d.log.DebugContext(ctx, "handler call", append(attrs, "outcome", outcome)...)
}

// callContext is one call's context: ctx with the call's deadline, the
// earlier of HandlerTimeout from now and Deadline, its cause telling which.
func (d *Dispatcher) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	cancelCut := context.CancelFunc(func() {})
	if !d.cfg.Deadline.IsZero() {
		ctx, cancelCut = context.WithDeadlineCause(ctx, d.cfg.Deadline, errCut)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.HandlerTimeout, d.errTimeout)
	return ctx, func() { cancel(); cancelCut() }
}

// PanicError is a handler panic, turned into a failed batch as Lambda does.
type PanicError struct{ Value any }

func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }

type result struct {
	resp events.KinesisEventResponse
	err  error
}

// run calls the handler in a goroutine of its own and waits for its answer
// until ctx ends; then it stops waiting and leaves the call running.
func (d *Dispatcher) run(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	if d.abandonedN.Load() >= MaxAbandonedCalls {
		// Calls abandoned at their timeout still run (a handler that
		// ignores its context cannot be stopped): past MaxAbandonedCalls
		// wait for one to return rather than start another, so that a
		// stuck handler holds a bounded number of goroutines and events
		// per shard, not one per attempt.
		d.log.Warn("the handler's calls abandoned at their timeout are still running (it ignores its context); waiting for one to return before the next call",
			"abandoned", d.abandonedN.Load())
		for d.abandonedN.Load() >= MaxAbandonedCalls {
			select {
			case <-d.freed:
			case <-ctx.Done():
				return events.KinesisEventResponse{}, fmt.Errorf("%w (%d calls abandoned at their timeout still run: no new call was made)", context.Cause(ctx), d.abandonedN.Load())
			}
		}
	}
	var state callState
	answer := make(chan result, 1) // the abandoned call's answer goes nowhere
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				r = result{err: &PanicError{Value: v}}
			}
			answer <- r
			state.finish(d)
		}()
		r.resp, r.err = d.cfg.Handler(ctx, ev)
	}()
	select {
	case r := <-answer:
		return r.resp, d.late(ctx, r.err)
	case <-ctx.Done():
	}
	select {
	case r := <-answer: // it answered as its time ran out
		return r.resp, d.late(ctx, r.err)
	default:
	}
	state.abandon(d)
	return events.KinesisEventResponse{}, fmt.Errorf("%w (the call was abandoned and may still be running)", context.Cause(ctx))
}

// MaxAbandonedCalls is how many calls abandoned at their timeout (and
// still running: the handler ignores its context) a shard's dispatcher
// lets run before it waits for one to return instead of making the next
// call.
const MaxAbandonedCalls = 2

// callState tells whether a call was abandoned and whether it returned,
// whichever comes first.
type callState struct {
	mu                  sync.Mutex
	abandoned, finished bool
}

func (c *callState) abandon(d *Dispatcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.finished {
		c.abandoned = true
		d.abandonedN.Add(1)
	}
}

func (c *callState) finish(d *Dispatcher) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished = true
	if c.abandoned {
		d.abandonedN.Add(-1)
		select {
		case d.freed <- struct{}{}:
		default:
		}
	}
}

// late explains a handler's error when its context had ended by then: the
// handler most likely failed because of it.
func (d *Dispatcher) late(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	var pe *PanicError
	switch cause := context.Cause(ctx); {
	case errors.As(err, &pe):
		return err
	case errors.Is(cause, errCut):
		return fmt.Errorf("%w: %w", errCut, err)
	case errors.Is(cause, stream.ErrHandlerTimeout) && !errors.Is(err, stream.ErrHandlerTimeout):
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// FailedIndex applies a handler's response to batch as Lambda does: -1
// when nothing failed; otherwise the index of the lowest failed item, where
// an item is named by its ItemIdentifier (a sequence number, or
// "seq:sub" for a de-aggregated user record; a bare sequence number names
// its first user record in the batch). An empty or unknown identifier fails
// the whole batch (0).
func FailedIndex(batch []stream.Record, resp events.KinesisEventResponse) int {
	if len(resp.BatchItemFailures) == 0 {
		return -1
	}
	lowest := len(batch)
	for _, f := range resp.BatchItemFailures {
		i := indexOf(batch, f.ItemIdentifier)
		if i < 0 {
			return 0
		}
		lowest = min(lowest, i)
	}
	return lowest
}

func indexOf(batch []stream.Record, id string) int {
	if id == "" {
		return -1
	}
	for i := range batch {
		r := &batch[i]
		if r.SequenceNumber == id || (r.Aggregated && r.ItemIdentifier() == id) {
			return i
		}
	}
	return -1
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// wait is a back-off: ErrStopping at once if it would end past Deadline.
func (d *Dispatcher) wait(ctx context.Context, stop <-chan struct{}, wait time.Duration) error {
	if !d.cfg.Deadline.IsZero() && time.Until(d.cfg.Deadline) <= wait {
		return fmt.Errorf("%w: the next call would start after the deadline %s", ErrStopping, d.cfg.Deadline.Format(time.RFC3339Nano))
	}
	return wait4(ctx, stop, wait)
}

func wait4(ctx context.Context, stop <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-stop:
		return ErrStopping
	case <-t.C:
		return nil
	}
}

func backoff(base time.Duration, n int, max time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
