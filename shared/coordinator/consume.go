package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/checkpoint"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/metrics"
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
	l := h.snapshot()
	log := w.log.With("shard", l.Key)
	st.setCheckpoint(l.Checkpoint)
	st.newTake()
	if l.Park != nil {
		log.Info("retrying parked shard", "reason", l.Park.Reason, "parked since", l.Park.Since, "times", l.Park.Count)
	}

	tracker := checkpoint.New(w.cfg.CheckpointInterval, l.Checkpoint, time.Now())
	// With a parallelization factor the shard's records go to lanes that
	// run on goroutines of their own and report done from there, while
	// this one reads on (dispatch.Lanes). cpMu (lock, unlock) then guards
	// the tracker, cpErr and lastDone. Before the lease is written
	// (released, parked; ended once the lanes are flushed) or let go, the
	// lanes are stopped and waited for: no handler call starts after, and
	// the last position done is final.
	parallel := w.cfg.ParallelizationFactor > 1 && w.cfg.TumblingWindow <= 0
	var lanes *dispatch.Lanes
	var cpMu sync.Mutex
	lock := func() {
		if parallel {
			cpMu.Lock()
		}
	}
	unlock := func() {
		if parallel {
			cpMu.Unlock()
		}
	}
	var ticking chan struct{} // closed to stop the lanes' checkpoint ticker
	var ticked sync.WaitGroup
	stopLanes := func() error {
		if lanes == nil {
			return nil
		}
		err := lanes.Close()
		if ticking != nil {
			close(ticking)
			ticking = nil
		}
		ticked.Wait()
		return err
	}
	// release flushes what was done and gives the lease up.
	release := func() {
		_ = stopLanes()
		var final *stream.Position
		if p, ok := tracker.Pending(); ok {
			final = &p
			st.setCheckpoint(p)
		}
		w.flushAndRelease(h, final, log)
	}
	park := func(reason error) consumeResult {
		_ = stopLanes()
		var final *stream.Position
		if p, ok := tracker.Pending(); ok {
			final = &p
			st.setCheckpoint(p)
		}
		w.park(h, final, reason, log)
		st.setParked(reason.Error())
		return consumeResult{parked: true}
	}
	lost := func() (consumeResult, bool) {
		cause := h.lost()
		if cause != nil {
			_ = stopLanes() // their calls' contexts have ended: they stop at once
		}
		if cause != nil && !errors.Is(cause, errReleased) {
			w.counters.lostLeases.Add(1)
			log.Warn("lease lost; shard stopped without writing", "cause", cause)
		}
		return consumeResult{}, cause != nil
	}
	// end writes SHARD_END with the children and releases the lease; with
	// lanes, only after flushLanes.
	end := func(children []string) consumeResult {
		endPos := stream.Position{Seq: stream.ShardEnd}
		if err := w.writeRetrying(h, log, func(ctx context.Context) error {
			return w.countCheckpoint(h.checkpoint(ctx, w.table, endPos, children))
		}); err != nil {
			log.Warn("lease lost before SHARD_END was written", "error", err)
			return consumeResult{}
		}
		st.setCheckpoint(endPos)
		log.Info("shard ended", "children", children)
		w.flushAndRelease(h, nil, log)
		return consumeResult{ended: true}
	}

	start, ts, err := w.startOf(h, log)
	if err != nil {
		if res, ok := lost(); ok {
			return res
		}
		if h.fetchCtx.Err() != nil {
			release()
			return consumeResult{}
		}
		return park(err)
	}
	var resume *stream.Position // records at or before it are done
	if !start.IsSentinel() {
		resume = &start
	}
	hr, err := kpl.ParseHashRange(l.StartingHashKey, l.EndingHashKey)
	switch {
	case w.cfg.DeliverOutOfRange:
		hr = kpl.HashRange{} // -out-of-range deliver: no filter
	case err != nil:
		log.Warn("lease has an unreadable hash range; records are not filtered by it", "error", err)
		hr = kpl.HashRange{}
	}
	filter := kpl.NewFilter(hr, w.keys)
	defer filter.Release()
	reader, err := fetch.New(w.reads, fetch.Config{
		StreamName: w.cfg.StreamName, ShardID: l.Key, Start: start, Timestamp: ts, NoTiming: w.cfg.MetricsLevel == metrics.None,
		RetryWaitTime: w.cfg.RetryWaitTime, RetryMaxAttempts: w.cfg.RetryMaxAttempts, Logger: log,
		IdleInterval: w.cfg.IdleTimeBetweenReads,
	})
	if err != nil {
		return park(err)
	}
	// Every handler call first makes sure the lease is still ours.
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if err := h.ensureFresh(ctx, w.table, w.cfg.FailoverTime); err != nil {
			return events.KinesisEventResponse{}, err
		}
		return w.cfg.Handler(ctx, ev)
	}
	dcfg := dispatch.Config{
		Handler: handler, Source: w.source, FunctionARN: w.cfg.FunctionARN,
		BatchSize: w.cfg.BatchSize, MaxRetryAttempts: w.cfg.MaxRetryAttempts, MaxRecordAge: w.cfg.MaxRecordAge,
		BisectOnError: w.cfg.BisectOnError, OnFailure: w.cfg.OnFailure, Logger: log,
		HandlerTimeout: w.cfg.HandlerTimeout, Deadline: w.cfg.Deadline, MaxBatchBytes: w.cfg.MaxBatchBytes,
		OversizeAlone: w.cfg.OversizeAlone, IgnoreItemFailures: w.cfg.IgnoreItemFailures,
		NoTiming: w.cfg.MetricsLevel == metrics.None,
	}
	if !w.cfg.RemoteHandler {
		dcfg.Reread = w.rereader(l.Key)
	}
	var disp dispatch.Deliverer // one batch at a time; nil with lanes
	var win *dispatch.Windowed  // with a tumbling window
	// afterCalls handles what a delivery (or a window's close, or the
	// lanes) returned: stop, park, or go on.
	type next int
	const (
		goOn next = iota
		stopNow
	)
	var result consumeResult
	afterCalls := func(err error) next {
		if lanes != nil {
			st.setDispatch(lanes.Stats())
		} else {
			st.setDispatch(disp.Stats())
		}
		if res, ok := lost(); ok {
			result = res
			return stopNow
		}
		if errors.Is(err, dispatch.ErrStopping) {
			release()
			return stopNow
		}
		if err != nil {
			result = park(err)
			return stopNow
		}
		return goOn
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
			if err := w.countCheckpoint(h.checkpoint(ctx, w.table, pos, nil)); err != nil {
				cpErr = err
				return
			}
			tracker.Written(pos, time.Now())
			st.setCheckpoint(pos)
			st.setParked("")
		}
	}
	// done is called in shard order, one call at a time (with a
	// parallelization factor, from the lanes' goroutines).
	var lastDone stream.Position
	done := func(p stream.Position) {
		lock()
		defer unlock()
		lastDone = p
		tracker.Done(p)
		h.setDone(p)
		st.addDone()
		checkpointIfDue()
	}
	switch {
	case w.cfg.TumblingWindow > 0:
		wh := func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
			if err := h.ensureFresh(ctx, w.table, w.cfg.FailoverTime); err != nil {
				return events.KinesisTimeWindowEventResponse{}, err
			}
			return w.cfg.WindowHandler(ctx, ev)
		}
		win, err = dispatch.NewWindowed(dcfg, w.cfg.TumblingWindow, wh)
		disp = win
	case parallel:
		lanes, err = dispatch.NewLanes(h.ctx, h.stop, dcfg, dispatch.LanesConfig{
			Factor: w.cfg.ParallelizationFactor, Ahead: w.laneAhead(), MaxBatchingWindow: w.cfg.MaxBatchingWindow, Done: done,
		})
	default:
		disp, err = dispatch.New(dcfg)
	}
	if err != nil {
		return park(err)
	}
	if lanes != nil {
		// A checkpoint not yet due when the lanes last reported is written
		// when it falls due, even while this goroutine waits for room in
		// the lanes and none of them finishes a record (one is stuck).
		ticking = make(chan struct{})
		stopTick := ticking
		ticked.Go(func() {
			t := time.NewTicker(w.cfg.CheckpointInterval)
			defer t.Stop()
			for {
				select {
				case <-stopTick:
					return
				case <-t.C:
				}
				lock()
				if cpErr != nil && h.lost() == nil {
					log.Warn("checkpoint write failed; will retry", "error", Explain(cpErr))
					cpErr = nil
				}
				checkpointIfDue()
				unlock()
			}
		})
	}
	// flushLanes waits until the lanes are done with every record given
	// them (the shard ends), and stops them; false when the shard stops
	// instead (see afterCalls).
	flushLanes := func() bool {
		if lanes == nil {
			return true
		}
		err := lanes.Flush()
		if cerr := stopLanes(); cerr != nil {
			err = cerr
		}
		return afterCalls(err) == goOn
	}
	drops := dropReporter{log: log, every: w.cfg.CheckpointInterval}
	log.Info("shard started", "from", describeStart(start, ts))
	var recs []stream.Record
	var pend pending
	// With lanes, each lane waits for its own batch to fill: the reader
	// does not wait for the batching window.
	window := w.cfg.MaxBatchingWindow
	if lanes != nil {
		window = 0
	}
	for {
		b, err := w.read(h.fetchCtx, l.Key, reader, filter, resume, &recs, &pend, st, h, &drops, window)
		if err != nil {
			if res, ok := lost(); ok {
				return res
			}
			if h.fetchCtx.Err() != nil {
				break // draining
			}
			if isNotFound(err) {
				gone, children, cerr := w.shardGone(h.ctx, l.Key)
				switch {
				case cerr != nil:
					return park(fmt.Errorf("read %s: %w; and checking the stream: %w", l.Key, Explain(err), Explain(cerr)))
				case gone:
					log.Warn("shard no longer exists in the stream (past its retention, or never existed); treated as ended so that its children start", "children", children)
					drops.flush()
					if !flushLanes() {
						return result
					}
					return end(children)
				}
			}
			return park(readProblem(err, l.Key, start))
		}
		// tail is the read's last user record: records the filter drops
		// after the last one delivered are done once the others are.
		var tail stream.Position
		if len(recs) > 0 {
			tail = recs[len(recs)-1].Position()
		}
		if w.cfg.Filter != nil {
			recs = w.filter(recs, st)
		}
		if lanes != nil {
			// Queued in the lanes (which copy them), unless they hold the
			// read-ahead bound: then it waits for room.
			lanes.SetAhead(w.laneAhead())
			err := lanes.Add(recs, tail)
			// As below: an idle shard does not keep a large read.
			clear(recs)
			if cap(recs) > 4*w.cfg.BatchSize {
				recs = nil
			}
			if err != nil {
				if cerr := stopLanes(); cerr != nil {
					err = cerr
				}
				afterCalls(err) // a lane's error, a drain or a lost lease: stop
				drops.flush()
				return result
			}
			st.setDispatch(lanes.Stats())
		} else if len(recs) > 0 {
			stop := h.stop
			if pend.cut {
				// The window's records, cut by the drain, are the batch in
				// flight: delivered although the drain has begun, within
				// its bounds (DrainTimeout, the function's Deadline).
				stop, pend.cut = nil, false
			}
			err := disp.Deliver(h.ctx, stop, recs, done)
			// Nothing of a delivered batch stays reachable: an idle shard
			// does not keep its largest read alive.
			clear(recs)
			if cap(recs) > 4*w.cfg.BatchSize {
				recs = nil
			}
			if afterCalls(err) == stopNow {
				drops.flush()
				return result
			}
		} else if win != nil {
			// A caught-up shard closes its window once the clock is past it.
			if afterCalls(win.Idle(h.ctx, h.stop, time.Now(), b.MillisBehindLatest == 0, done)) == stopNow {
				drops.flush()
				return result
			}
		}
		// With a window, records are done only when their window closes;
		// lanes report the read's tail themselves (Add).
		if win == nil && lanes == nil && tail.Seq != "" && (lastDone.Seq == "" || lastDone.IsSentinel() || tail.After(lastDone)) {
			done(tail)
		}
		lock()
		failed := cpErr
		cpErr = nil
		unlock()
		if failed != nil {
			if res, ok := lost(); ok {
				return res
			}
			log.Warn("checkpoint write failed; will retry", "error", Explain(failed))
		}
		lock()
		checkpointIfDue()
		unlock()
		drops.maybeWarn(time.Now())
		if b.End && win != nil {
			// The last window of the shard is finished before SHARD_END.
			if afterCalls(win.ShardEnd(h.ctx, h.stop, done)) == stopNow {
				drops.flush()
				return result
			}
		}
		if b.End {
			children := make([]string, 0, len(b.Children))
			for _, c := range b.Children {
				children = append(children, aws.ToString(c.ShardId))
			}
			drops.flush()
			if !flushLanes() {
				return result
			}
			return end(children)
		}
	}
	drops.flush()
	// Draining: the lanes finish their calls in flight; one that gave up
	// meanwhile parks the shard, as a delivery's error does.
	if lanes != nil {
		if w.cfg.MaxBatchingWindow > 0 {
			// The drain ends the lanes' batching windows: each delivers
			// what it gathered, as one lane does (within DrainTimeout and
			// the function's Deadline).
			lanes.Cut()
		}
		if afterCalls(stopLanes()) == stopNow {
			return result
		}
	}
	release()
	return consumeResult{}
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
func (w *Worker) shardGone(ctx context.Context, shardID string) (bool, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := w.cfg.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(w.cfg.StreamName)}); err != nil {
		if isNotFound(err) {
			return false, nil, nil // the stream is gone: park
		}
		return false, nil, err
	}
	list, err := shards.List(ctx, w.cfg.Kinesis, w.cfg.StreamName)
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

// read puts the next user records into recs: de-aggregated, a chunk at a
// time, with the records the checkpoint covers dropped; it reads from
// Kinesis only when nothing is pending. With a batching window it keeps
// reading until the batch is full (records or bytes), the window passes or
// the shard ends (lanes wait for their own batches: they read with none).
// The Batch returned has End (and Children) only with the last records of
// the shard's last answer.
func (w *Worker) read(ctx context.Context, shardID string, r *fetch.Reader, filter *kpl.Filter, resume *stream.Position, recs *[]stream.Record, p *pending, st *shardStats, h *held, drops *dropReporter, window time.Duration) (fetch.Batch, error) {
	*recs = (*recs)[:0]
	p.cut = false
	deadline := time.Now().Add(window)
	bytes := 0
	chunk := w.chunk()
	for {
		if len(p.recs) == 0 {
			r.SetTargetBytes(w.readTarget())
			b, err := r.Next(ctx)
			if w.cfg.MetricsLevel != metrics.None { // only metric backends read it
				st.setFetch(r.Stats())
			}
			if err != nil && len(*recs) > 0 && errors.Is(context.Cause(h.fetchCtx), errStopping) {
				// A drain ends the batching window: the records gathered
				// so far are delivered now, as Lambda invokes with what it
				// has when the window ends (a scheduled run whose window
				// is as long as the run would otherwise deliver nothing).
				out := p.batch
				out.End, out.Children = false, nil
				p.cut = true
				return out, nil
			}
			if err != nil {
				return b, err
			}
			p.recs, b.Records = b.Records, nil
			p.good = kpl.CheckAll(p.recs) // the aggregates' checksums side by side
			p.batch = b
		}
		var ks kpl.Stats
		from := len(*recs)
		i := 0
		for ; i < len(p.recs) && len(*recs) < chunk; i++ {
			var s kpl.Stats
			*recs, s = filter.Deaggregate(*recs, shardID, &p.recs[i], p.good != nil && p.good[i])
			ks.Add(s)
		}
		clear(p.recs[:i]) // let each answer record go once de-aggregated
		p.recs = p.recs[i:]
		if p.good != nil {
			p.good = p.good[i:]
		}
		if len(p.recs) == 0 {
			p.recs, p.good = nil, nil
		}
		if resume != nil {
			kept := (*recs)[:from]
			for _, rec := range (*recs)[from:] {
				if rec.Position().After(*resume) {
					kept = append(kept, rec)
				}
			}
			clear((*recs)[len(kept):])
			*recs = kept
		}
		for _, rec := range (*recs)[from:] {
			bytes += len(rec.Data)
		}
		st.addRead(ks, p.batch.MillisBehindLatest)
		if ks.DroppedOutOfRange > 0 {
			drops.add(int64(ks.DroppedOutOfRange))
			h.addDropped(int64(ks.DroppedOutOfRange))
		}
		if ks.Malformed > 0 {
			w.log.Warn("malformed KPL aggregates delivered as they are", "shard", shardID, "count", ks.Malformed)
		}
		out := p.batch
		if len(p.recs) > 0 {
			// More of this answer is pending: not its end yet.
			out.End, out.Children = false, nil
			if len(*recs) >= chunk || len(*recs) >= w.cfg.BatchSize && window > 0 {
				return out, nil
			}
			continue // all dropped (at or before the checkpoint): go on
		}
		if out.End || window <= 0 || len(*recs) >= w.cfg.BatchSize || bytes >= w.cfg.MaxBatchBytes || !time.Now().Before(deadline) {
			return out, nil
		}
	}
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
