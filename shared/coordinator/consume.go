package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/stream"
)

type consumeResult struct {
	ended  bool // read to SHARD_END (or gone from the stream)
	parked bool // could not go on; parked in the lease table
}

// consume is one shard's goroutine: read, de-aggregate, drop what the
// checkpoint says is done, dispatch, checkpoint; at the end of the shard
// write SHARD_END; when drained, flush and release; when the lease is lost,
// return without writing. A shard that cannot go on is parked: its reason
// is written to the lease, which is released, and no worker takes it
// again before its back-off has passed. Nothing a shard meets stops the
// worker or another shard.
func (w *Worker) consume(h *held, st *shardStats) consumeResult {
	return newShardConsumer(w, h, st).run()
}

// startOf works out where the shard starts: the lease's checkpoint, or the
// initial position for a lease without one. LATEST is fixed once, as
// AT_TIMESTAMP now, in the lease, so that a later owner (after a release,
// a restart, a failover, the next scheduled invocation) does not skip what
// was written meanwhile. AT_TIMESTAMP takes its time from the lease, or
// else from -initial-timestamp.
func (w *Worker) startOf(h *held, log *slog.Logger) (stream.Position, time.Time, error) {
	l := h.snapshot()
	start := l.Checkpoint
	if start.Seq == "" {
		start.Seq = w.cfg.InitialPosition
	}
	switch start.Seq {
	case stream.Latest:
		ts := time.Now()
		if err := w.writeRetrying(h, log, func(ctx context.Context) error { return h.checkpointAt(ctx, w.table, ts) }); err != nil {
			return stream.Position{}, time.Time{}, err
		}
		log.Info("LATEST fixed as AT_TIMESTAMP in the lease", "timestamp", ts.UTC().Format(time.RFC3339Nano))
		return stream.Position{Seq: stream.AtTimestamp}, ts, nil
	case stream.AtTimestamp:
		ts := l.Timestamp
		if ts.IsZero() {
			ts = w.cfg.InitialTimestamp
		}
		if ts.IsZero() {
			return stream.Position{}, time.Time{}, fmt.Errorf("checkpoint AT_TIMESTAMP has no timestamp in the lease and -initial-timestamp is not set: give -initial-timestamp, or move it with poller reset -shard %s -to AT_TIMESTAMP -timestamp T", l.Key)
		}
		return start, ts, nil
	}
	return start, time.Time{}, nil
}

func describeStart(p stream.Position, ts time.Time) string {
	if p.Seq == stream.AtTimestamp {
		return "AT_TIMESTAMP " + ts.UTC().Format(time.RFC3339Nano)
	}
	return p.String()
}

// readProblem turns a read error no retry mends into the reason a shard is
// parked, with what to do about it.
func readProblem(err error, shardID string, start stream.Position) error {
	var ia *types.InvalidArgumentException
	if (errors.As(err, &ia) || isNotFound(err)) && !start.IsSentinel() {
		return fmt.Errorf("read %s from checkpoint %s: %w (is the checkpoint a sequence number of this shard? poller reset -shard %s moves it)", shardID, start, Explain(err), shardID)
	}
	return fmt.Errorf("read %s: %w", shardID, Explain(err))
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// shardGone checks, after the stream answered that a shard does not exist,
// whether the stream itself does and the shard is not listed: then the
// shard is gone (trimmed past its retention, or a lease for a shard that
// never was) and its children, as the listing names them, are returned.
// A listed shard is not gone (kinesis-mock answers ResourceNotFound for a
// sequence number the shard does not hold).
func (w *Worker) shardGone(ctx context.Context, s *streamInfo, shardID string) (bool, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := w.cfg.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.name)}); err != nil {
		if isNotFound(err) {
			return false, nil, nil // the stream is gone: park
		}
		return false, nil, err
	}
	list, err := shards.List(ctx, w.cfg.Kinesis, s.name)
	if err != nil {
		return false, nil, err
	}
	var children []string
	for _, s := range list {
		if s.ID == shardID {
			return false, nil, nil // listed: it is the position that is not found
		}
		if slices.Contains(s.Parents, shardID) {
			children = append(children, s.ID)
		}
	}
	return true, children, nil
}

// pending is what a shard has read and not yet de-aggregated: the rest of
// the last GetRecords answer.
type pending struct {
	recs  []types.Record
	good  []bool      // per record of recs: KPL checksum known right (kpl.CheckAll), or nil
	batch fetch.Batch // the answer (End, Children, MillisBehindLatest)
	// cut: the last read's batching window was ended by the drain; its
	// records are the batch in flight, delivered before the drain ends.
	cut bool
}

// chunk is how many user records read de-aggregates at a time: what one
// Deliver call can have in flight. The rest of an answer waits as Kinesis
// records (whose data the user records share), so that a shard holds its
// answer's bytes and at most a chunk of user records, whatever the
// records per aggregate.
func (w *Worker) chunk() int {
	return max(1, w.cfg.BatchSize) * max(1, w.cfg.ParallelizationFactor)
}

// filter keeps the records the filter matches, in place, and counts the
// others.
func (w *Worker) filter(recs []stream.Record, st *shardStats) []stream.Record {
	kept := recs[:0]
	for i := range recs {
		if w.cfg.Filter.Match(recs[i].PartitionKey, recs[i].Data) {
			kept = append(kept, recs[i])
		}
	}
	if n := len(recs) - len(kept); n > 0 {
		clear(recs[len(kept):])
		st.addFiltered(int64(n))
	}
	return kept
}

// dropReporter logs user records dropped outside the shard's hash range
// (as KCL drops them) with a WARN at most once per interval.
type dropReporter struct {
	log     *slog.Logger
	every   time.Duration
	pending int64
	last    time.Time
}

func (d *dropReporter) add(n int64) { d.pending += n }

func (d *dropReporter) maybeWarn(now time.Time) {
	if d.pending == 0 || now.Sub(d.last) < d.every {
		return
	}
	d.flush()
	d.last = now
}

func (d *dropReporter) flush() {
	if d.pending == 0 {
		return
	}
	d.log.Warn("user records outside the shard's hash range dropped, as KCL drops them (aggregates not made by the KPL?); poller status shows the total", "count", d.pending)
	d.pending = 0
}

// writeRetrying retries a lease write through transient faults until it
// succeeds or the lease is lost (then it returns the cause).
func (w *Worker) writeRetrying(h *held, log *slog.Logger, fn func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		err := fn(h.ctx)
		if err == nil {
			return nil
		}
		if lost := h.lost(); lost != nil {
			return lost
		}
		log.Warn("lease write failed; retrying", "error", Explain(err), "wait", wait)
		select {
		case <-h.ctx.Done():
			return context.Cause(h.ctx)
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// flushAndRelease writes the final checkpoint (if any) and releases the
// lease, so another worker can take it at once. A lost lease writes nothing.
// It gives up after DrainTimeout; the lease then expires after the failover
// time and the next owner starts from the last checkpoint written.
func (w *Worker) flushAndRelease(h *held, final *stream.Position, log *slog.Logger) {
	if w.releaseWith(h, log, "release", func(ctx context.Context) error { return h.release(ctx, w.table, final) }) {
		if l := h.snapshot(); l.MidHandoff() {
			log.Info("lease handed off", "to", l.Owner, "checkpoint", releasedAt(h, final))
			return
		}
		log.Info("lease released", "checkpoint", releasedAt(h, final))
	}
}

// releasedAt is the checkpoint a lease was released at: final, or the
// one it had.
func releasedAt(h *held, final *stream.Position) string {
	if final != nil {
		return final.String()
	}
	return h.snapshot().Checkpoint.String()
}

// park gives the lease up as parked, with its back-off: one ERROR line when
// the shard parks, an INFO line when a retry parks it again.
func (w *Worker) park(h *held, final *stream.Position, reason error, log *slog.Logger) {
	now := time.Now()
	p := lease.Park{Reason: reason.Error(), Since: now, Count: 1}
	if prev := h.snapshot().Park; prev != nil {
		p.Since, p.Count = prev.Since, prev.Count+1
	}
	wait := parkWait(w.cfg.ParkRetryWait, w.cfg.MaxParkRetryWait, p.Count)
	p.Until = now.Add(wait)
	key := h.snapshot().Key
	// Written first, said after: a worker that lost the lease meanwhile
	// (stolen while failing) writes no park and says nothing of it.
	if !w.releaseWith(h, log, "park", func(ctx context.Context) error { return h.park(ctx, w.table, final, p) }) {
		log.Info("park not written (the lease was lost, or the lease table did not answer); whoever takes the shard next retries it", "reason", p.Reason)
		return
	}
	w.mu.Lock()
	w.parked[key] = p
	w.mu.Unlock()
	if p.Count == 1 {
		log.Error("shard parked: it cannot go on, and nothing passes its checkpoint; it is retried with back-off, and poller resume retries it at once",
			"reason", p.Reason, "retry in", wait)
	} else {
		log.Info("shard still parked", "reason", p.Reason, "times", p.Count, "retry in", wait)
	}
}

// parkWait is the back-off before the n-th retry of a parked shard.
func parkWait(base, most time.Duration, n int64) time.Duration {
	d := base
	for i := int64(1); i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// releaseWith retries a releasing write (release or park) until it
// succeeds, the lease is lost, or DrainTimeout passes. It reports whether
// the write succeeded.
func (w *Worker) releaseWith(h *held, log *slog.Logger, what string, fn func(context.Context) error) bool {
	if h.lost() != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(h.ctx, w.cfg.DrainTimeout)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil {
			return true
		}
		if h.lost() != nil {
			return false
		}
		if ctx.Err() != nil {
			log.Warn(what+" failed; the lease will expire after the failover time", "error", Explain(err))
			return false
		}
		log.Warn(what+" failed; retrying", "error", Explain(err), "wait", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
