package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/stream"
)

// StartKind is how a range begins.
type StartKind int

// Starts.
const (
	StartTrimHorizon StartKind = iota // the oldest record the shard holds
	StartTime                         // the first record that arrived at or after Start.Time
	StartPosition                     // the user record at Start.Pos (inclusive)
)

// Start is where a shard's range begins, inclusive.
type Start struct {
	Kind StartKind
	Time time.Time       // StartTime
	Pos  stream.Position // StartPosition: a sequence number and the sub-sequence number within its aggregate
}

// FromTrimHorizon starts at the oldest record the shard holds.
func FromTrimHorizon() Start { return Start{Kind: StartTrimHorizon} }

// FromTime starts at the first record whose approximate arrival time is t
// or later (AT_TIMESTAMP).
func FromTime(t time.Time) Start { return Start{Kind: StartTime, Time: t} }

// FromSequence starts at the Kinesis record seq: with every user record of
// it when it is a KPL aggregate.
func FromSequence(seq string) Start { return FromPosition(stream.Position{Seq: seq}) }

// FromPosition starts at the user record p: the Kinesis record p.Seq
// (AT_SEQUENCE_NUMBER), without the user records of its aggregate before
// p.SubSeq.
func FromPosition(p stream.Position) Start { return Start{Kind: StartPosition, Pos: p} }

func (s Start) String() string {
	switch s.Kind {
	case StartTime:
		return s.Time.UTC().Format(time.RFC3339Nano)
	case StartPosition:
		return s.Pos.String()
	}
	return stream.TrimHorizon
}

// StopKind is how a range ends.
type StopKind int

// Stops. Every range also ends at the shard's end (a closed shard), and
// every stop but StopShardEnd at the tip the reader finds (an empty answer
// with MillisBehindLatest 0): what arrives after it is after the stop.
const (
	StopShardEnd        StopKind = iota // the end of a closed shard; an open shard is read until ctx ends
	StopBeforeTime                      // exclusive: the first record that arrived at or after Stop.Time ends it
	StopBeforePosition                  // exclusive: the user record Stop.Pos and what follows are not read
	StopThroughSequence                 // inclusive: the Kinesis record Stop.Pos.Seq, with all its user records, is the last
)

// Stop is where a shard's range ends.
type Stop struct {
	Kind StopKind
	Time time.Time
	Pos  stream.Position
}

// UntilShardEnd reads to the end of a closed shard (an open shard is read
// until ctx ends).
func UntilShardEnd() Stop { return Stop{Kind: StopShardEnd} }

// UntilTime reads the records that arrived before t (approximate arrival
// time, exclusive); the reader also stops at the tip, so UntilTime of the
// moment a replay began reads what the stream held then ("now").
func UntilTime(t time.Time) Stop { return Stop{Kind: StopBeforeTime, Time: t} }

// UntilPosition reads the user records before p (exclusive).
func UntilPosition(p stream.Position) Stop { return Stop{Kind: StopBeforePosition, Pos: p} }

// ThroughSequence reads up to and including the Kinesis record seq, all
// of its user records when it is an aggregate (Lambda's on-failure
// records name such an inclusive endSequenceNumber).
func ThroughSequence(seq string) Stop {
	return Stop{Kind: StopThroughSequence, Pos: stream.Position{Seq: seq}}
}

func (s Stop) String() string {
	switch s.Kind {
	case StopBeforeTime:
		return "before " + s.Time.UTC().Format(time.RFC3339Nano)
	case StopBeforePosition:
		return "before " + s.Pos.String()
	case StopThroughSequence:
		return "through " + s.Pos.Seq
	}
	return stream.ShardEnd
}

// Config is one shard's range and how to read it. StreamName, ShardID,
// From and Until are required; the zero value of the others is the
// default named.
type Config struct {
	StreamName string
	ShardID    string
	From       Start
	Until      Stop
	// HashRange drops user records of KPL aggregates whose hash key lies
	// outside the shard's (as the core does with -out-of-range drop); the
	// zero HashRange drops nothing.
	HashRange kpl.HashRange
	// ReadInterval is the least time from the start of one GetRecords to
	// the start of the next: 200ms is all of Kinesis's 5 reads/s per
	// shard, 400ms half of it (the rest for the application's pollers).
	// Zero: 200ms. Negative: no pacing (a stand-in, or a stream no one else
	// reads); a reader that has caught up still waits 200ms.
	ReadInterval time.Duration
	// TargetBytes bounds what one GetRecords brings (fetch.Config's); 0:
	// 1 MiB. With ReadInterval it bounds the bytes per second per shard
	// (Kinesis allows 2 MB/s per shard for all its readers together).
	TargetBytes int
	// Limiter, when set, caps the user records per second, shared by the
	// readers that share it.
	Limiter *Limiter
	// ChunkSize is the most user records one Next returns; default 1000.
	ChunkSize int
	// RetryWaitTime and RetryMaxAttempts are fetch.Config's: throttled
	// reads are retried after RetryWaitTime, then with back-off.
	RetryWaitTime    time.Duration
	RetryMaxAttempts int
	// Keys is the budget of partition keys the de-aggregator remembers,
	// shared by the shards read at once (nil: each its own bound).
	Keys   *kpl.KeyBudget
	Logger *slog.Logger
}

// Chunk is what one Next read: user records in range, in shard order.
// Records (and their Data) are valid until the next Next.
type Chunk struct {
	Records []stream.Record
	// Bytes is the data of Records.
	Bytes int
	// Dropped counts user records of this chunk dropped outside the
	// shard's hash range; Malformed KPL aggregates are delivered as they
	// are (as the core does) and counted.
	Dropped, Malformed int
	// Through is the position of the last user record read so far, in
	// range or not; Arrival its approximate arrival time. Zero before the
	// first record.
	Through stream.Position
	Arrival time.Time
	// MillisBehindLatest is the last answer's.
	MillisBehindLatest int64
	// Done: the range is finished; Next returns no more. Reached tells how:
	// the stop was reached (true), or the shard's end or the tip came
	// first. Ended: the shard is closed and was read to its end, Children
	// continue it.
	Done, Reached, Ended bool
	Children             []string
}

// KinesisAPI lists the Kinesis calls a reader makes.
type KinesisAPI = fetch.KinesisAPI

// NewClient is the client a reader should read with: GetRecords in
// Kinesis's CBOR protocol decoded in place (or JSON where the endpoint
// refuses CBOR, or with AWS_CBOR_DISABLE=true), as the core reads.
func NewClient(c *kinesis.Client, log *slog.Logger) KinesisAPI {
	return fetch.NewClient(c, fetch.ClientConfig{JSON: fetch.CBORDisabled(), Logger: log})
}

// Reader reads one shard's range. It is not safe for concurrent use.
type Reader struct {
	cfg    Config
	pub    *fetch.Reader
	filter *kpl.Filter
	recs   []stream.Record
	pend   []types.Record
	good   []bool
	last   fetch.Batch
	out    Chunk
	done   bool
	held   bool // recs is a chunk Next read and did not return (ctx ended in the Limiter's wait)
}

// New checks cfg and returns its reader; it makes no call.
func New(client KinesisAPI, cfg Config) (*Reader, error) {
	if cfg.StreamName == "" || cfg.ShardID == "" {
		return nil, errors.New("replay: stream name and shard id are required")
	}
	fc := fetch.Config{
		StreamName: cfg.StreamName, ShardID: cfg.ShardID, TargetBytes: cfg.TargetBytes,
		RetryWaitTime: cfg.RetryWaitTime, RetryMaxAttempts: cfg.RetryMaxAttempts, Logger: cfg.Logger, NoTiming: true,
	}
	switch cfg.From.Kind {
	case StartTrimHorizon:
		fc.Start = stream.Position{Seq: stream.TrimHorizon}
	case StartTime:
		if cfg.From.Time.IsZero() {
			return nil, fmt.Errorf("replay %s: a start at a time needs the time", cfg.ShardID)
		}
		fc.Start, fc.Timestamp = stream.Position{Seq: stream.AtTimestamp}, cfg.From.Time
	case StartPosition:
		if stream.IsSentinelSeq(cfg.From.Pos.Seq) || cfg.From.Pos.SubSeq < 0 {
			return nil, fmt.Errorf("replay %s: start %q is not a sequence number", cfg.ShardID, cfg.From.Pos)
		}
		fc.Start = stream.Position{Seq: cfg.From.Pos.Seq}
	default:
		return nil, fmt.Errorf("replay %s: unknown start kind %d", cfg.ShardID, cfg.From.Kind)
	}
	switch cfg.Until.Kind {
	case StopShardEnd:
	case StopBeforeTime:
		if cfg.Until.Time.IsZero() {
			return nil, fmt.Errorf("replay %s: a stop at a time needs the time", cfg.ShardID)
		}
	case StopBeforePosition, StopThroughSequence:
		if stream.IsSentinelSeq(cfg.Until.Pos.Seq) {
			return nil, fmt.Errorf("replay %s: stop %q is not a sequence number", cfg.ShardID, cfg.Until.Pos)
		}
	default:
		return nil, fmt.Errorf("replay %s: unknown stop kind %d", cfg.ShardID, cfg.Until.Kind)
	}
	switch {
	case cfg.ReadInterval < 0:
		fc.BusyInterval, fc.IdleInterval = time.Nanosecond, fetch.DefaultIdleInterval
	case cfg.ReadInterval == 0:
		fc.BusyInterval, fc.IdleInterval = fetch.DefaultIdleInterval, fetch.DefaultIdleInterval
	default:
		fc.BusyInterval, fc.IdleInterval = cfg.ReadInterval, max(cfg.ReadInterval, fetch.DefaultIdleInterval)
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 1000
	}
	pub, err := fetch.New(client, fc)
	if err != nil {
		return nil, err
	}
	return &Reader{cfg: cfg, pub: pub, filter: kpl.NewFilter(cfg.HashRange, cfg.Keys)}, nil
}

// Close gives back what the reader holds (its partition-key memo).
func (r *Reader) Close() { r.filter.Release() }

// Stats are the reader's GetRecords counts.
func (r *Reader) Stats() fetch.Stats { return r.pub.Stats() }

// Next returns the next user records in range, at most ChunkSize, waiting
// as the pacing and the Limiter require. After a Chunk with Done it returns
// io.EOF-like ErrDone. The errors are ctx's cause and read faults no retry
// mends (the stream or shard is gone, a sequence number not of the shard:
// fetch.IsFatal).
func (r *Reader) Next(ctx context.Context) (Chunk, error) {
	if r.done {
		return Chunk{}, ErrDone
	}
	clear(r.recs)
	r.recs, r.held = r.recs[:0], false
	c := &r.out
	c.Records, c.Bytes, c.Dropped, c.Malformed, c.Children = nil, 0, 0, 0, nil
	for len(r.recs) < r.cfg.ChunkSize && !c.Done {
		if len(r.pend) == 0 {
			if len(r.recs) > 0 {
				break // deliver what is here before reading again
			}
			b, err := r.pub.Next(ctx)
			if err != nil {
				return Chunk{}, err
			}
			r.last = b
			r.pend, r.good = b.Records, kpl.CheckAll(b.Records)
			c.MillisBehindLatest = b.MillisBehindLatest
			if len(b.Records) == 0 {
				switch {
				case b.End:
					r.finish(c, false)
				case b.MillisBehindLatest == 0 && r.cfg.Until.Kind != StopShardEnd:
					r.finish(c, false) // at the tip: what comes next is after the stop
				}
				continue
			}
		}
		r.take(c)
		if len(r.pend) == 0 && r.last.End && !c.Done {
			r.finish(c, false)
		}
	}
	c.Records = r.recs
	for i := range r.recs {
		c.Bytes += len(r.recs[i].Data)
	}
	r.done = c.Done
	if r.cfg.Limiter != nil && len(c.Records) > 0 {
		if err := r.cfg.Limiter.Wait(ctx, len(c.Records)); err != nil {
			r.held = true
			return Chunk{}, err
		}
	}
	return *c, nil
}

// Pending is the position of the next user record the reader read and
// has not returned, after Next returned an error (ctx ended while it
// waited for the Limiter, or between reads with records left of the last
// answer); ok is false when it holds none: the next record is then the
// one after the last Chunk's Through.
func (r *Reader) Pending() (p stream.Position, ok bool) {
	if r.held && len(r.recs) > 0 {
		return r.recs[0].Position(), true
	}
	if len(r.pend) > 0 {
		p = stream.Position{Seq: aws.ToString(r.pend[0].SequenceNumber)}
		if r.cfg.From.Kind == StartPosition && r.cfg.From.Pos.After(p) {
			p = r.cfg.From.Pos // the start is in this aggregate
		}
		return p, true
	}
	return stream.Position{}, false
}

// ErrDone is returned by Next after the Chunk with Done.
var ErrDone = errors.New("replay: range done")

// finish ends the range.
func (r *Reader) finish(c *Chunk, reached bool) {
	c.Done, c.Reached = true, reached
	if !reached && r.last.End && len(r.pend) == 0 {
		c.Ended = true
		for _, ch := range r.last.Children {
			c.Children = append(c.Children, aws.ToString(ch.ShardId))
		}
	}
	clear(r.pend)
	r.pend, r.good = nil, nil
}

// take de-aggregates pending Kinesis records into r.recs up to the chunk
// size, keeping those in range; it ends the range at the stop.
func (r *Reader) take(c *Chunk) {
	i := 0
	for ; i < len(r.pend) && len(r.recs) < r.cfg.ChunkSize; i++ {
		kr := &r.pend[i]
		seq := aws.ToString(kr.SequenceNumber)
		arrival := aws.ToTime(kr.ApproximateArrivalTimestamp)
		u := r.cfg.Until
		if u.Kind == StopBeforeTime && !arrival.Before(u.Time) ||
			u.Kind == StopThroughSequence && stream.CompareSeq(seq, u.Pos.Seq) > 0 ||
			u.Kind == StopBeforePosition && stream.CompareSeq(seq, u.Pos.Seq) > 0 {
			r.pend = r.pend[i:]
			r.finish(c, true)
			return
		}
		from := len(r.recs)
		var s kpl.Stats
		r.recs, s = r.filter.Deaggregate(r.recs, r.cfg.ShardID, kr, r.good != nil && r.good[i])
		c.Dropped += s.DroppedOutOfRange
		c.Malformed += s.Malformed
		c.Arrival = arrival
		c.Through = stream.Position{Seq: seq}
		if n := len(r.recs); n > from {
			c.Through = r.recs[n-1].Position()
		}
		kept := r.recs[:from]
		stop := false
		for _, rec := range r.recs[from:] {
			p := rec.Position()
			if r.cfg.From.Kind == StartPosition && r.cfg.From.Pos.After(p) {
				continue // before the start, in the start's aggregate
			}
			if u.Kind == StopBeforePosition && !u.Pos.After(p) {
				stop = true
				break
			}
			kept = append(kept, rec)
		}
		clear(r.recs[len(kept):])
		r.recs = kept
		if stop {
			r.pend = r.pend[i+1:]
			r.finish(c, true)
			return
		}
	}
	clear(r.pend[:i])
	r.pend = r.pend[i:]
	if r.good != nil {
		r.good = r.good[i:]
	}
	if len(r.pend) == 0 {
		r.pend, r.good = nil, nil
	}
}

// Result is what ReadShard read.
type Result struct {
	Records int64 // user records handed to fn
	Bytes   int64
	// First and Last are the positions of the first and last user record
	// handed to fn (zero when none): a First after a FromPosition start
	// says the records between were not there (past the stream's
	// retention).
	First, Last stream.Position
	// Reached, Ended, Children: as the last Chunk said.
	Reached, Ended bool
	Children       []string
}

// ReadShard reads cfg's range of one shard and hands each chunk of user
// records in range to fn, in shard order, one call at a time; it returns
// when the range is done, fn returns an error (returned as it is), or ctx
// ends. client is best NewClient's.
func ReadShard(ctx context.Context, client KinesisAPI, cfg Config, fn func(Chunk) error) (Result, error) {
	r, err := New(client, cfg)
	if err != nil {
		return Result{}, err
	}
	defer r.Close()
	var res Result
	for {
		c, err := r.Next(ctx)
		if err != nil {
			return res, err
		}
		if n := len(c.Records); n > 0 {
			if res.Records == 0 {
				res.First = c.Records[0].Position()
			}
			res.Last = c.Records[n-1].Position()
			res.Records += int64(n)
			res.Bytes += int64(c.Bytes)
			if err := fn(c); err != nil {
				return res, err
			}
		}
		if c.Done {
			res.Reached, res.Ended, res.Children = c.Reached, c.Ended, c.Children
			return res, nil
		}
	}
}

// errFound ends HasRecords's read at the first record in range.
var errFound = errors.New("replay: a record in range")

// HasRecords tells whether cfg's range of the shard holds a user record:
// it reads from cfg.From until the first one, the stop, the shard's end or
// the tip.
func HasRecords(ctx context.Context, client KinesisAPI, cfg Config) (bool, error) {
	cfg.ChunkSize = 1
	_, err := ReadShard(ctx, client, cfg, func(Chunk) error { return errFound })
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
}
