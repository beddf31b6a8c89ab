package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/shardline/shardline/shared/stream"
)

// SubscribeAPI is the call an enhanced fan-out publisher makes;
// *kinesis.Client has it.
type SubscribeAPI interface {
	SubscribeToShard(context.Context, *kinesis.SubscribeToShardInput, ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
}

var _ SubscribeAPI = (*kinesis.Client)(nil)

// Defaults of a Subscriber.
const (
	// DefaultQuietTimeout is how long a subscription may send nothing
	// before it is started again (KCL's figure; Kinesis sends an event at
	// least every 5 s, records or not).
	DefaultQuietTimeout = 60 * time.Second
	// subscribeInterval is the least time between two SubscribeToShard
	// calls for one shard: Kinesis allows one a second per shard and
	// consumer.
	subscribeInterval = time.Second
)

// ErrNoContinuation is the error of a subscription event that has neither
// a continuation sequence number nor child shards: Kinesis ends a shard's
// last event with the children, so this cannot be taken for a shard's
// end, and the shard must not be read as ended.
var ErrNoContinuation = errors.New("a SubscribeToShard event has no continuation sequence number and no child shards")

// Subscriber is the enhanced fan-out Publisher: records pushed to a
// registered stream consumer (Config.ConsumerARN) over SubscribeToShard,
// one subscription per shard. The first subscription starts at
// Config.Start; each later one (a subscription lasts 5 minutes, or less
// when Kinesis ends it) starts AFTER_SEQUENCE_NUMBER the last event's
// ContinuationSequenceNumber, so nothing is missed or sent twice. It takes
// the next event only when Next is called: a slow consumer holds the
// stream back (HTTP flow control) instead of buffering it. A subscription
// refused because another one holds the shard (ResourceInUseException,
// within 5 s of the last one) or for the rate (LimitExceededException) is
// tried again with back-off; one that sends nothing for QuietTimeout is
// started again. Calls are at least a second apart per shard, as Kinesis
// requires. It is not safe for concurrent use.
type Subscriber struct {
	subscribe SubscribeFunc
	cfg       Config
	log       *slog.Logger

	mu      sync.Mutex   // guards sub against the quiet timer's goroutine
	sub     Subscription // the subscription open, or nil
	quiet   *time.Timer  // closes sub when it sends nothing for QuietTimeout
	wasIdle atomic.Bool  // the quiet timer closed sub

	cont    string // the last event's continuation sequence number
	renew   bool   // the last subscription ended as planned: the next one renews it
	counted bool   // the subscription brought an event and was counted
	from    *types.StartingPosition
	latest  time.Time // when a LATEST start was first asked for
	lastSub time.Time // the last SubscribeToShard call
	wait    time.Time // no call before this (back-off)
	ended   bool

	starts, renewals, failures int64
}

var _ Publisher = (*Subscriber)(nil)

// NewSubscriber returns the fan-out publisher of cfg.ShardID for the
// consumer cfg.ConsumerARN, validating cfg as New does. subscribe is
// Client.Subscribe (Shardline's reader), or SDKSubscribe's.
func NewSubscriber(subscribe SubscribeFunc, cfg Config) (*Subscriber, error) {
	if cfg.ConsumerARN == "" {
		return nil, fmt.Errorf("fetch %s: enhanced fan-out needs a consumer ARN", cfg.ShardID)
	}
	r, err := New(nil, cfg) // the same checks and defaults
	if err != nil {
		return nil, err
	}
	cfg = r.cfg
	if cfg.QuietTimeout <= 0 {
		cfg.QuietTimeout = DefaultQuietTimeout
	}
	s := &Subscriber{subscribe: subscribe, cfg: cfg, log: r.log}
	s.quiet = time.AfterFunc(time.Hour, s.idle)
	s.quiet.Stop()
	return s, nil
}

// idle closes a subscription that sent nothing for QuietTimeout.
func (s *Subscriber) idle() {
	s.wasIdle.Store(true)
	s.closeSub()
}

// closeSub closes the subscription open, from another goroutine.
func (s *Subscriber) closeSub() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		_ = s.sub.Close()
	}
}

// Mode is ModeFanOut.
func (s *Subscriber) Mode() string { return ModeFanOut }

// SetTargetBytes does nothing: Kinesis decides what an event holds. What
// one shard holds is bounded by taking one event at a time and by the
// connection's flow control.
func (s *Subscriber) SetTargetBytes(int) {}

// Stats returns the subscription counts so far.
func (s *Subscriber) Stats() Stats {
	return Stats{SubscriptionStarts: s.starts, SubscriptionRenewals: s.renewals, SubscriptionErrors: s.failures}
}

// Close ends the subscription at once; Next starts a new one.
func (s *Subscriber) Close() error {
	s.quiet.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		_ = s.sub.Close()
		s.sub = nil
	}
	return nil
}

// Next returns the next event's records (none when the shard is quiet:
// Kinesis sends an event at least every few seconds). After the shard's
// last event, a Batch with End and its children, it returns
// ErrShardEnded. The subscription lives as long as ctx: ctx ending ends
// it at once.
func (s *Subscriber) Next(ctx context.Context) (Batch, error) {
	if s.ended {
		return Batch{}, ErrShardEnded
	}
	var fails, throttles int
	for {
		if s.sub == nil {
			if err := s.start(ctx, &fails, &throttles); err != nil {
				return Batch{}, err
			}
			continue
		}
		s.wasIdle.Store(false)
		s.quiet.Reset(s.cfg.QuietTimeout)
		// ctx ending (the lease lost or let go) closes the subscription at
		// once, even one started under another context.
		stop := context.AfterFunc(ctx, s.closeSub)
		ev, err := s.sub.Next()
		stop()
		s.quiet.Stop()
		if err == nil {
			return s.batch(ev)
		}
		_ = s.Close()
		switch {
		case ctx.Err() != nil:
			return Batch{}, context.Cause(ctx)
		case s.wasIdle.Load():
			s.failures++
			s.log.Warn("subscription sent nothing; subscribing again", "for", s.cfg.QuietTimeout, "after", s.cont)
		case errors.Is(err, io.EOF):
			// The subscription's planned end (5 minutes): renew it from
			// the continuation sequence number.
			s.renew = true
		default:
			s.failures++
			wait, ferr := s.classify(ctx, err, &fails, &throttles)
			if ferr != nil {
				return Batch{}, ferr
			}
			s.wait = time.Now().Add(wait)
		}
	}
}

// batch turns one event into a Batch.
func (s *Subscriber) batch(e *types.SubscribeToShardEvent) (Batch, error) {
	s.count()
	b := Batch{Records: e.Records, MillisBehindLatest: aws.ToInt64(e.MillisBehindLatest)}
	if e.ContinuationSequenceNumber == nil {
		_ = s.Close()
		if len(e.ChildShards) == 0 {
			return Batch{}, fmt.Errorf("read %s: %w (after %q)", s.cfg.ShardID, ErrNoContinuation, s.cont)
		}
		s.ended = true
		b.End, b.Children = true, e.ChildShards
		return b, nil
	}
	s.cont = *e.ContinuationSequenceNumber
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("SubscribeToShard event", "records", len(e.Records), "millisBehindLatest", b.MillisBehindLatest, "continuation", s.cont)
	}
	return b, nil
}

// start starts a subscription, waiting for the per-shard rate and any
// back-off first. A refused call is classified: nil with a back-off set,
// or an error no retry can mend.
func (s *Subscriber) start(ctx context.Context, fails, throttles *int) error {
	if err := sleepUntil(ctx, latest(s.wait, s.lastSub.Add(subscribeInterval))); err != nil {
		return err
	}
	in := &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(s.cfg.ConsumerARN), ShardId: aws.String(s.cfg.ShardID),
		StartingPosition: s.startingPosition()}
	s.lastSub = time.Now()
	sub, err := s.subscribe(ctx, in)
	if err != nil {
		s.failures++
		wait, ferr := s.classify(ctx, err, fails, throttles)
		if ferr != nil {
			return ferr
		}
		s.wait = time.Now().Add(wait)
		return nil
	}
	s.mu.Lock()
	s.sub = sub
	s.mu.Unlock()
	s.from = in.StartingPosition
	s.counted = false
	return nil
}

// count counts the subscription that brought its first event: a start, or
// the renewal of one that ended as planned. (Kinesis may accept a call and
// then end its stream at once with an exception, such as
// ResourceInUseException: that is an error, not a start.)
func (s *Subscriber) count() {
	if s.counted {
		return
	}
	s.counted = true
	if s.renew {
		s.renewals++
		s.renew = false
		return
	}
	s.starts++
	s.log.Info("subscribed to the shard (enhanced fan-out)", "consumer", s.cfg.ConsumerARN,
		"from", strings.TrimSpace(string(s.from.Type)+" "+aws.ToString(s.from.SequenceNumber)))
}

// ownCodec gives a subscription a protocol of its own. The SDK's event
// stream codec keeps its decoder and payload buffer in the protocol, which
// every call of a client shares: two subscriptions read at once on one
// client would decode their events in the same buffer (aws-sdk-go-v2
// service/kinesis v1.56.11 with smithy-go v1.28.8; the race detector
// shows it: TestSubscribersShareAClient).
func ownCodec(o *kinesis.Options) { o.Protocol = awsjson.New11(schemas.Kinesis_20131202) }

// startingPosition is where the next subscription starts: after the last
// event's continuation, or at Config.Start.
func (s *Subscriber) startingPosition() *types.StartingPosition {
	switch {
	case s.cont != "":
		return &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(s.cont)}
	case s.cfg.Start.Seq == stream.TrimHorizon:
		return &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
	case s.cfg.Start.Seq == stream.Latest && !s.latest.IsZero():
		// A LATEST subscription that ended before any event: a new LATEST
		// would skip what was written meanwhile.
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(s.latest)}
	case s.cfg.Start.Seq == stream.Latest:
		s.latest = time.Now()
		return &types.StartingPosition{Type: types.ShardIteratorTypeLatest}
	case s.cfg.Start.Seq == stream.AtTimestamp:
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(s.cfg.Timestamp)}
	}
	// A checkpoint: at its record; the consumer drops what was done (a
	// sub-sequence checkpoint resumes inside its aggregate).
	return &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(s.cfg.Start.Seq)}
}

// classify is Reader's, with ResourceInUseException (another subscription
// holds the shard, or the last one is younger than 5 s) a throttle.
func (s *Subscriber) classify(ctx context.Context, err error, fails, throttles *int) (time.Duration, error) {
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		// Kinesis refuses a subscription within 5 s of the last one on
		// the same consumer and shard (another reader's, or the last
		// scheduled run's), and a call 5 s after takes it over: tried
		// again every second (the rate Kinesis allows), not backed off.
		s.log.Info("subscription refused: the shard has another subscription for this consumer; trying again", "wait", subscribeInterval, "error", err)
		return subscribeInterval, nil
	}
	return classify(ctx, s.cfg, s.log, err, fails, throttles)
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
