package redrive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/stream"
)

// DefaultMaxBytes is the default memory bound of one round's records.
const DefaultMaxBytes = 256 << 20

// Config sets a redrive up. Zero values take the defaults named.
type Config struct {
	Source Source // required
	// Dispatch is how records are delivered, as `run` delivers them:
	// the handler, batching, retries, bisect, the on-failure destination.
	// Its Source (the event's stream ARN and region) is set per shard
	// from the records' on-failure record.
	Dispatch dispatch.Config
	// ParallelizationFactor delivers a shard's records in up to this
	// many lanes by partition key (1–10; default 1).
	ParallelizationFactor int
	// Ranges reads back the records of Lambda's metadata-only records;
	// nil leaves such messages where they are, saying so.
	Ranges RangeReader
	// StreamName, when set, is the stream Lambda's records are read back
	// from, in place of the one their streamArn names.
	StreamName string
	// Region fills the events' awsRegion when a stream ARN does not say.
	Region string
	// MaxBytes bounds the records one round gathers (default
	// DefaultMaxBytes). Past it, what is gathered is delivered before
	// the next messages are read: in order within each round only.
	MaxBytes int64
	// DryRun reads and lists, delivers nothing and cleans up nothing.
	DryRun bool
	Logger *slog.Logger
}

// ShardSummary is what a redrive did with one shard's records.
type ShardSummary struct {
	ShardID   string
	StreamARN string
	// Records are the distinct user records found (in a dry run, with
	// Lambda's metadata records counted by their batchSize).
	Records      int64
	Handled      int64 // delivered and handled
	GivenUp      int64 // failed again and sent to -on-failure
	Left         int64 // not done: they stay in the source
	FirstSeq     string
	LastSeq      string
	FirstArrival time.Time
	LastArrival  time.Time
	// Ranges are Lambda's metadata-only records (read back from the
	// stream).
	Ranges int
	// Stopped says why the shard's delivery stopped, "" when it did not.
	Stopped string
}

// Summary is a redrive's account.
type Summary struct {
	DryRun        bool
	Shards        []ShardSummary // by shard id
	Messages      int            // messages read
	Cleaned       int            // messages deleted, moved or cut
	Kept          int            // messages left where they were
	Unreadable    int            // messages that are not on-failure records
	PastRetention int            // Lambda records whose records the stream no longer holds
	Duplicates    int64          // records found again in another message
	Rounds        int            // gatherings: more than 1 when the memory bound was reached, or a FIFO queue held messages back
	// Bounded are the rounds that ended at the memory bound: the order
	// per shard and partition key then holds within each round only. (A
	// FIFO queue's rounds keep the order: it gives a group's next messages
	// only once the earlier ones are deleted.)
	Bounded int
	// Unlisted, in a dry run of a FIFO queue, is about how many messages
	// it did not show: SQS holds a message group's next messages back
	// while earlier ones are received and not deleted, and a dry run
	// deletes nothing (the queue's ApproximateNumberOfMessages less the
	// messages listed).
	Unlisted int
	// ReceiveLimit, in a dry run of an SQS queue with a redrive policy,
	// is its maxReceiveCount; AtReceiveLimit are the messages received
	// that many times now: SQS moves them to the dead-letter queue at
	// their next receive (the redrive's) instead of giving them.
	ReceiveLimit   int
	AtReceiveLimit int
}

// Totals adds up the shards.
func (s Summary) Totals() (records, handled, givenUp, left int64) {
	for _, sh := range s.Shards {
		records += sh.Records
		handled += sh.Handled
		givenUp += sh.GivenUp
		left += sh.Left
	}
	return
}

// LeftError says records were not all done: they stay in the source.
type LeftError struct {
	Records  int64
	Messages int
	Source   string
	Reasons  []string
}

func (e *LeftError) Error() string {
	msg := fmt.Sprintf("%d records in %d messages stay in %s", e.Records, e.Messages, e.Source)
	if e.Records == 0 {
		msg = fmt.Sprintf("%d messages stay in %s", e.Messages, e.Source)
	}
	if len(e.Reasons) > 0 {
		msg += ": " + strings.Join(e.Reasons, "; ")
	}
	return msg
}

// Redriver runs one redrive.
type Redriver struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	shards map[string]*ShardSummary
	disp   map[string]dispatch.Stats // per shard, over every round
	live   map[string]*liveCount     // per shard whose delivery runs: its counts so far
	sum    Summary
	reason []string // why messages stay, the first few
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Redriver, error) {
	if cfg.Source == nil {
		return nil, errors.New("redrive: a source is required")
	}
	if cfg.Dispatch.Handler == nil && !cfg.DryRun {
		return nil, errors.New("redrive: a handler is required")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.ParallelizationFactor < 1 {
		cfg.ParallelizationFactor = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Dispatch.Logger = log
	return &Redriver{cfg: cfg, log: log, shards: map[string]*ShardSummary{}, disp: map[string]dispatch.Stats{}, live: map[string]*liveCount{}, sum: Summary{DryRun: cfg.DryRun}}, nil
}

// Run redrives until the source has no more messages, or ctx ends (then
// the batches in flight finish and what is done is cleaned up). It
// returns the summary, and a *LeftError when records or messages stay in
// the source.
func (r *Redriver) Run(ctx context.Context) (Summary, error) {
	src := r.cfg.Source
	if err := src.Check(ctx); err != nil {
		return r.Summary(), err
	}
	if r.cfg.DryRun {
		r.warnReceiveLimit(src)
	}
	seen := map[string]bool{} // records done in earlier rounds
	var kept []*held          // held to the end: released then
	var err error
	for {
		r.mu.Lock()
		r.sum.Rounds++
		round := r.sum.Rounds
		r.mu.Unlock()
		g, more, gerr := r.gatherRound(ctx, seen)
		if gerr != nil {
			err = gerr
		}
		if more {
			r.mu.Lock()
			r.sum.Bounded++
			r.mu.Unlock()
		}
		if more && round == 1 {
			r.log.Warn("the records gathered reached the memory bound: delivering them before reading the rest; order per shard and partition key holds within each round only",
				"bound", r.cfg.MaxBytes, "records", len(g.items))
		}
		if r.cfg.DryRun {
			r.list(g)
			kept = append(kept, g.msgs...)
		} else {
			if derr := r.deliver(ctx, g, seen); derr != nil && err == nil {
				err = derr
			}
			for _, h := range g.msgs {
				if !h.done {
					kept = append(kept, h)
				}
			}
		}
		if !more && !r.cfg.DryRun && partial(src) && cleanedIn(g) > 0 {
			more = true // a FIFO queue: the next messages of a group come once those held are deleted
		}
		if !more || err != nil || ctx.Err() != nil {
			break
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var back []*Message
	for _, h := range kept {
		back = append(back, h.msg)
	}
	if r.cfg.DryRun {
		r.dryRunEnd(src, back)
	}
	if len(back) > 0 {
		if rerr := src.Release(cctx, back); rerr != nil {
			r.log.Warn("could not give messages back to the source; they show again when their visibility timeout passes", "error", rerr.Error())
		}
	}
	if cerr := src.Close(cctx); cerr != nil && err == nil {
		err = cerr
	}
	sum := r.Summary()
	if err == nil && !r.cfg.DryRun && sum.Kept > 0 {
		_, _, _, left := sum.Totals()
		r.mu.Lock()
		reasons := slices.Clone(r.reason)
		r.mu.Unlock()
		err = &LeftError{Records: left, Messages: sum.Kept, Source: src.String(), Reasons: reasons}
	}
	return sum, err
}

// gatherRound reads messages until the memory bound or the source's end;
// more says the source may hold more.
func (r *Redriver) gatherRound(ctx context.Context, seen map[string]bool) (*gather, bool, error) {
	g := newGather()
	defer g.join(seen)
	for g.bytes < r.cfg.MaxBytes {
		if ctx.Err() != nil {
			return g, false, nil
		}
		msgs, err := r.cfg.Source.Next(ctx, 40)
		for _, m := range msgs {
			r.take(ctx, g, m, seen)
		}
		if err != nil {
			if ctx.Err() != nil {
				return g, false, nil
			}
			return g, false, fmt.Errorf("read %s: %w", r.cfg.Source, err)
		}
		if len(msgs) == 0 {
			return g, false, nil
		}
	}
	return g, true, nil
}

// take parses one message into g.
func (r *Redriver) take(ctx context.Context, g *gather, m *Message, seen map[string]bool) {
	h := &held{msg: m}
	g.msgs = append(g.msgs, h)
	g.bytes += int64(len(m.Body))
	r.mu.Lock()
	r.sum.Messages++
	r.mu.Unlock()
	e, err := Parse(m.Body)
	m.Body = nil
	if err != nil {
		h.bad = fmt.Errorf("%s: %w", m.ID, err)
		r.mu.Lock()
		r.sum.Unreadable++
		r.mu.Unlock()
		r.log.Error("message is not an on-failure record Shardline can read: it stays in the source", "message", m.ID, "error", err.Error())
		return
	}
	h.shard = e.ShardID
	sh := r.shard(e.ShardID, e.StreamARN)
	recs := e.Records
	if e.Range != nil {
		rg := e.Range
		r.mu.Lock()
		sh.Ranges++
		r.mu.Unlock()
		if r.cfg.DryRun {
			g.ranges[rg.ShardID] = append(g.ranges[rg.ShardID], rg)
			return
		}
		recs, err = r.readRange(ctx, rg)
		if err != nil {
			h.bad = err
			r.note(err.Error())
			if errors.Is(err, ErrPastRetention) {
				r.mu.Lock()
				r.sum.PastRetention++
				r.mu.Unlock()
			}
			r.log.Error("Lambda's on-failure record cannot be redriven: it stays in the source", "message", m.ID, "error", err.Error())
			return
		}
	}
	g.add(h, recs, seen)
	g.addChunks(h, e.Chunks)
}

// readRange reads a Lambda metadata record's records back from the stream.
func (r *Redriver) readRange(ctx context.Context, rg *Range) ([]stream.Record, error) {
	name := r.cfg.StreamName
	if name == "" {
		name = streamName(rg.StreamARN)
	}
	what := fmt.Sprintf("records %s..%s of %s (Lambda's metadata-only record)", rg.Start, rg.End, rg.ShardID)
	if r.cfg.Ranges == nil {
		return nil, fmt.Errorf("%s: no stream to read them back from", what)
	}
	if name == "" {
		return nil, fmt.Errorf("%s: the record names no stream (streamArn %q): give -stream-name", what, rg.StreamARN)
	}
	recs, err := r.cfg.Ranges.ReadRange(ctx, name, rg.ShardID, rg.Start, rg.End)
	if errors.Is(err, ErrPastRetention) {
		return nil, fmt.Errorf("%s of stream %s, put %s–%s: %w: they can no longer be redriven", what, name,
			fmtTime(rg.FirstArrival), fmtTime(rg.LastArrival), err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s of stream %s: %w", what, name, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s of stream %s: none found in the stream", what, name)
	}
	return recs, nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format(time.RFC3339)
}

// streamName is the name in a stream ARN (arn:aws:kinesis:r:a:stream/name).
func streamName(arn string) string {
	_, name, ok := strings.Cut(arn, ":stream/")
	if !ok {
		return ""
	}
	return name
}

// regionOf is the region of an ARN, "" when it has none.
func regionOf(arn string) string {
	f := strings.SplitN(arn, ":", 5)
	if len(f) < 5 {
		return ""
	}
	return f[3]
}

func (r *Redriver) note(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reason) < 3 {
		r.reason = append(r.reason, reason)
	}
}

// shard is the summary row of id (made on first use).
func (r *Redriver) shard(id, arn string) *ShardSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.shards[id]
	if s == nil {
		s = &ShardSummary{ShardID: id}
		r.shards[id] = s
	}
	if s.StreamARN == "" {
		s.StreamARN = arn
	}
	return s
}

// list adds a dry run's round to the summary.
func (r *Redriver) list(g *gather) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, its := range g.shards() {
		s := r.shards[id]
		for _, it := range its {
			s.Records++
			s.span(it.rec.SequenceNumber, it.rec.ApproximateArrivalTimestamp)
		}
	}
	for id, rgs := range g.ranges {
		s := r.shards[id]
		for _, rg := range rgs {
			s.Records += int64(rg.BatchSize)
			s.span(rg.Start, rg.FirstArrival)
			s.span(rg.End, rg.LastArrival)
		}
	}
	r.sum.Kept += len(g.msgs)
	r.sum.Duplicates += g.dups
}

// span widens the shard's sequence and time range to seq and at.
func (s *ShardSummary) span(seq string, at time.Time) {
	if s.FirstSeq == "" || stream.CompareSeq(seq, s.FirstSeq) < 0 {
		s.FirstSeq = seq
	}
	if s.LastSeq == "" || stream.CompareSeq(seq, s.LastSeq) > 0 {
		s.LastSeq = seq
	}
	if !at.IsZero() && (s.FirstArrival.IsZero() || at.Before(s.FirstArrival)) {
		s.FirstArrival = at
	}
	if at.After(s.LastArrival) {
		s.LastArrival = at
	}
}

// Summary is the account so far; safe from any goroutine.
func (r *Redriver) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sum
	s.Shards = nil
	for _, sh := range r.shards {
		s.Shards = append(s.Shards, *sh)
	}
	slices.SortFunc(s.Shards, func(a, b ShardSummary) int { return strings.Compare(a.ShardID, b.ShardID) })
	return s
}

// Dispatch is each shard's delivery counts so far: the dispatcher's own
// after each round's delivery of the shard, and while it runs, Handled,
// HandledBytes and GivenUp moved on as records are done (for the metrics
// endpoint and the progress line).
func (r *Redriver) Dispatch() map[string]dispatch.Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]dispatch.Stats, len(r.disp)+len(r.live))
	for k, v := range r.disp {
		out[k] = v
	}
	for k, l := range r.live {
		st := out[k]
		st.Handled += max(l.done-l.givenUp, 0)
		st.HandledBytes += max(l.doneBytes-l.givenUpBytes, 0)
		st.GivenUp += l.givenUp
		out[k] = st
	}
	return out
}

// DryRunReceiveWarn: a dry run of an SQS queue whose redrive policy's
// maxReceiveCount is this or less warns before it receives anything.
// Every receive counts toward maxReceiveCount (SQS has no peek): a dry
// run receives each message once, the redrive once more, and each
// redrive that leaves a message (a handler failing again) once more; a
// message past the count goes to the dead-letter queue at its next
// receive instead of being given. 5 is the least Lambda recommends for
// an SQS event source's queue.
const DryRunReceiveWarn = 5

// receiveLimited is a source whose reads count toward a limit past which
// the service moves a message elsewhere: an SQS queue's redrive policy.
type receiveLimited interface {
	// ReceiveLimit is the maxReceiveCount and the dead-letter queue's
	// ARN; 0 when the queue has no redrive policy.
	ReceiveLimit() (maxReceives int, deadLetter string)
}

// backlogged is a source that knows about how many messages it held
// when Check ran.
type backlogged interface {
	Backlog() int
}

// warnReceiveLimit says, in one line, that a dry run could send messages
// to a dead-letter queue.
func (r *Redriver) warnReceiveLimit(src Source) {
	rl, ok := src.(receiveLimited)
	if !ok {
		return
	}
	limit, dlq := rl.ReceiveLimit()
	if limit <= 0 {
		return
	}
	r.mu.Lock()
	r.sum.ReceiveLimit = limit
	r.mu.Unlock()
	if limit > DryRunReceiveWarn {
		return
	}
	r.log.Warn(fmt.Sprintf("%s has a redrive policy with maxReceiveCount %d (dead-letter queue %s) and every receive counts: "+
		"this dry run receives each message once, so a message received %d times already goes to the dead-letter queue instead of being listed, "+
		"and one it brings to %d goes there when the redrive receives it; raise maxReceiveCount above %d before a dry run, or redrive without one",
		src, limit, dlq, limit, limit, DryRunReceiveWarn))
}

// dryRunEnd counts what a dry run could not list (a FIFO queue's held
// back messages) and the messages it brought to the receive limit.
func (r *Redriver) dryRunEnd(src Source, msgs []*Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if limit := r.sum.ReceiveLimit; limit > 0 {
		for _, m := range msgs {
			if m.Receives >= limit {
				r.sum.AtReceiveLimit++
			}
		}
		if r.sum.AtReceiveLimit > 0 {
			r.log.Warn("messages have now been received maxReceiveCount times: SQS moves them to the dead-letter queue at their next receive, the redrive's, instead of giving them",
				"messages", r.sum.AtReceiveLimit, "maxReceiveCount", limit)
		}
	}
	if b, ok := src.(backlogged); ok && partial(src) {
		if n := b.Backlog() - r.sum.Messages; n > 0 {
			r.sum.Unlisted = n
			r.log.Warn("a FIFO queue gives a message group's next messages only once the earlier ones are deleted, and a dry run deletes nothing: some messages were not listed (the redrive reads them all, in order)",
				"listed", r.sum.Messages, "notListed", n)
		}
	}
}

// partial reports whether a source gives its messages only as earlier
// ones are cleaned up (a FIFO queue).
func partial(src Source) bool {
	p, ok := src.(interface{ Partial() bool })
	return ok && p.Partial()
}

func cleanedIn(g *gather) int {
	n := 0
	for _, h := range g.msgs {
		if h.done {
			n++
		}
	}
	return n
}
