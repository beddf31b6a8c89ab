package coordinator

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shardline/shardline/shared/checkpoint"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/stream"
)

type consumeResult struct {
	ended bool
	err   error // the shard had to stop; the worker stops too
}

// consume is one shard's goroutine: read, de-aggregate, drop what the
// checkpoint says is done, dispatch, checkpoint; at the end of the shard
// write SHARD_END; when drained, flush and release; when the lease is lost,
// return without writing.
func (w *Worker) consume(h *held, st *shardStats) consumeResult {
	l := h.snapshot()
	log := w.log.With("shard", l.Key)
	start := l.Checkpoint
	if start.Seq == "" {
		start.Seq = w.cfg.InitialPosition
	}
	var resume *stream.Position // records at or before it are done
	if !start.IsSentinel() {
		resume = &start
	}
	st.setCheckpoint(l.Checkpoint)

	tracker := checkpoint.New(w.cfg.CheckpointInterval, l.Checkpoint, time.Now())
	// release flushes what was done and gives the lease up.
	release := func() {
		var final *stream.Position
		if p, ok := tracker.Pending(); ok {
			final = &p
			st.setCheckpoint(p)
		}
		w.flushAndRelease(h, final, log)
	}
	fail := func(err error) consumeResult {
		log.Error("shard stopped", "error", err)
		release()
		return consumeResult{err: err}
	}
	lost := func() (consumeResult, bool) {
		cause := h.lost()
		if cause != nil {
			log.Warn("lease lost; shard stopped without writing", "cause", cause)
		}
		return consumeResult{}, cause != nil
	}
	hr, err := kpl.ParseHashRange(l.StartingHashKey, l.EndingHashKey)
	if err != nil {
		log.Warn("lease has an unreadable hash range; records are not filtered by it", "error", err)
		hr = kpl.HashRange{}
	}
	reader, err := fetch.New(w.cfg.Kinesis, fetch.Config{
		StreamName: w.cfg.StreamName, ShardID: l.Key, Start: start, Timestamp: w.cfg.InitialTimestamp,
		RetryWaitTime: w.cfg.RetryWaitTime, RetryMaxAttempts: w.cfg.RetryMaxAttempts, Logger: log,
	})
	if err != nil {
		return fail(err)
	}
	// Every handler call first makes sure the lease is still ours.
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if err := h.ensureFresh(ctx, w.table, w.cfg.FailoverTime); err != nil {
			return events.KinesisEventResponse{}, err
		}
		return w.cfg.Handler(ctx, ev)
	}
	disp, err := dispatch.New(dispatch.Config{
		Handler: handler, Source: w.source, FunctionARN: w.cfg.FunctionARN,
		BatchSize: w.cfg.BatchSize, MaxRetryAttempts: w.cfg.MaxRetryAttempts, MaxRecordAge: w.cfg.MaxRecordAge,
		BisectOnError: w.cfg.BisectOnError, OnFailure: w.cfg.OnFailure, Logger: log,
	})
	if err != nil {
		return fail(err)
	}
	var cpErr error
	// checkpointIfDue writes the position done once the interval has
	// passed: after records are done, and after every read, so a pending
	// checkpoint is written even when no more records come.
	checkpointIfDue := func() {
		if pos, due := tracker.Due(time.Now()); due && cpErr == nil {
			// Bounded: a failed write is tried again at the next interval.
			ctx, cancel := context.WithTimeout(h.ctx, w.cfg.FailoverTime/2)
			defer cancel()
			if err := h.checkpoint(ctx, w.table, pos, nil); err != nil {
				cpErr = err
				return
			}
			tracker.Written(pos, time.Now())
			st.setCheckpoint(pos)
		}
	}
	done := func(p stream.Position) {
		tracker.Done(p)
		st.addDone()
		checkpointIfDue()
	}
	log.Info("shard started", "from", start.String())
	var recs []stream.Record
	for {
		b, err := w.read(h.fetchCtx, l.Key, reader, hr, resume, &recs, st)
		if err != nil {
			if res, ok := lost(); ok {
				return res
			}
			if h.fetchCtx.Err() != nil {
				break // draining
			}
			return fail(err)
		}
		if len(recs) > 0 {
			err := disp.Deliver(h.ctx, h.stop, recs, done)
			st.setDispatch(disp.Stats())
			if res, ok := lost(); ok {
				return res
			}
			if errors.Is(err, dispatch.ErrStopping) {
				break
			}
			if err != nil {
				return fail(err)
			}
		}
		if cpErr != nil {
			if res, ok := lost(); ok {
				return res
			}
			log.Warn("checkpoint write failed; will retry", "error", Explain(cpErr))
			cpErr = nil
		}
		checkpointIfDue()
		if b.End {
			children := make([]string, 0, len(b.Children))
			for _, c := range b.Children {
				children = append(children, aws.ToString(c.ShardId))
			}
			end := stream.Position{Seq: stream.ShardEnd}
			if err := w.writeRetrying(h, log, func(ctx context.Context) error {
				return h.checkpoint(ctx, w.table, end, children)
			}); err != nil {
				log.Warn("lease lost before SHARD_END was written", "error", err)
				return consumeResult{}
			}
			st.setCheckpoint(end)
			log.Info("shard ended", "children", children)
			w.flushAndRelease(h, nil, log)
			return consumeResult{ended: true}
		}
	}
	release()
	return consumeResult{}
}

// read fetches the next batch into recs, de-aggregated and with the records
// the checkpoint covers dropped. With MaxBatchingWindow it keeps reading
// until the batch is full, the window passes or the shard ends.
func (w *Worker) read(ctx context.Context, shardID string, r *fetch.Reader, hr kpl.HashRange, resume *stream.Position, recs *[]stream.Record, st *shardStats) (fetch.Batch, error) {
	*recs = (*recs)[:0]
	deadline := time.Now().Add(w.cfg.MaxBatchingWindow)
	for {
		b, err := r.Next(ctx)
		if err != nil {
			return b, err
		}
		var ks kpl.Stats
		for i := range b.Records {
			var s kpl.Stats
			*recs, s = kpl.Deaggregate(*recs, shardID, &b.Records[i], hr)
			ks.Add(s)
		}
		if resume != nil {
			kept := (*recs)[:0]
			for _, rec := range *recs {
				if rec.Position().After(*resume) {
					kept = append(kept, rec)
				}
			}
			*recs = kept
		}
		st.addRead(ks, b.MillisBehindLatest)
		if ks.DroppedOutOfRange > 0 {
			w.log.Debug("user records outside the shard's hash range dropped", "shard", shardID, "count", ks.DroppedOutOfRange)
		}
		if ks.Malformed > 0 {
			w.log.Warn("malformed KPL aggregates delivered as they are", "shard", shardID, "count", ks.Malformed)
		}
		if b.End || w.cfg.MaxBatchingWindow <= 0 || len(*recs) >= w.cfg.BatchSize || !time.Now().Before(deadline) {
			return b, nil
		}
	}
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
	if h.lost() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, w.cfg.DrainTimeout)
	defer cancel()
	wait := 100 * time.Millisecond
	for {
		err := h.release(ctx, w.table, final)
		if err == nil || h.lost() != nil {
			return
		}
		if ctx.Err() != nil {
			log.Warn("release failed; the lease will expire after the failover time", "error", Explain(err))
			return
		}
		log.Warn("release failed; retrying", "error", Explain(err), "wait", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}
