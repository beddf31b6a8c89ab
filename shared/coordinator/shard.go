package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/shardline/shardline/shared/checkpoint"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
)

// shardConsumer is one take of a shard, from its start to its end
// (Worker.consume): what the shard reads, delivers and checkpoints with.
type shardConsumer struct {
	w   *Worker
	s   *streamInfo // the lease's stream
	h   *held
	st  *shardStats
	log *slog.Logger
	l   lease.Lease // as taken

	tracker *checkpoint.Tracker
	// With a parallelization factor the shard's records go to lanes that
	// run on goroutines of their own and report done from there, while
	// this one reads on (dispatch.Lanes). cpMu (lock, unlock) then guards
	// the tracker, cpErr and lastDone. Before the lease is written
	// (released, parked; ended once the lanes are flushed) or let go, the
	// lanes are stopped and waited for: no handler call starts after, and
	// the last position done is final.
	parallel bool
	lanes    *dispatch.Lanes
	cpMu     sync.Mutex
	ticking  chan struct{} // closed to stop the lanes' checkpoint ticker
	ticked   sync.WaitGroup
	cpErr    error
	lastDone stream.Position

	disp   dispatch.Deliverer    // one batch at a time; nil with lanes
	win    *dispatch.Windowed    // with a tumbling window
	onDone func(stream.Position) // done, as the dispatchers call it
	result consumeResult         // what afterCalls stopped with

	pub    fetch.Publisher // the shard's records
	filter *kpl.Filter
	resume *stream.Position // records at or before it are done
	recs   []stream.Record
	pend   pending
	drops  dropReporter
}

// newShardConsumer starts a take of the shard h holds, counted in st.
func newShardConsumer(w *Worker, h *held, st *shardStats) *shardConsumer {
	l := h.snapshot()
	log := w.log.With("shard", l.Key)
	st.setCheckpoint(l.Checkpoint)
	st.newTake()
	if l.Park != nil {
		log.Info("retrying parked shard", "reason", l.Park.Reason, "parked since", l.Park.Since, "times", l.Park.Count)
	}
	c := &shardConsumer{
		w: w, s: w.streamOf(l), h: h, st: st, log: log, l: l,
		tracker:  checkpoint.New(w.cfg.CheckpointInterval, l.Checkpoint, time.Now()),
		parallel: w.cfg.ParallelizationFactor > 1 && w.cfg.TumblingWindow <= 0,
		drops:    dropReporter{log: log, every: w.cfg.CheckpointInterval},
	}
	c.onDone = c.done
	return c
}

// lock and unlock guard what the lanes report done from (cpMu), with
// lanes only.
func (c *shardConsumer) lock() {
	if c.parallel {
		c.cpMu.Lock()
	}
}

func (c *shardConsumer) unlock() {
	if c.parallel {
		c.cpMu.Unlock()
	}
}

// stopLanes stops the lanes and their checkpoint ticker, and waits for
// them.
func (c *shardConsumer) stopLanes() error {
	if c.lanes == nil {
		return nil
	}
	err := c.lanes.Close()
	if c.ticking != nil {
		close(c.ticking)
		c.ticking = nil
	}
	c.ticked.Wait()
	return err
}

// release flushes what was done and gives the lease up.
func (c *shardConsumer) release() {
	c.w.flushAndRelease(c.h, c.stopAtPending(), c.log)
}

// park writes what was done and parks the lease with reason.
func (c *shardConsumer) park(reason error) consumeResult {
	c.w.park(c.h, c.stopAtPending(), reason, c.log)
	c.st.setParked(reason.Error())
	return consumeResult{parked: true}
}

// closePublisher lets go of what the publisher holds open (a fan-out
// subscription) before the lease is written or let go, so that the next
// owner's subscription does not meet this one. The deferred Close in run
// covers every other way out.
func (c *shardConsumer) closePublisher() {
	if c.pub != nil {
		_ = c.pub.Close()
	}
}

// stopAtPending stops the lanes and returns the position done not yet
// written, if any: the lease's final checkpoint.
func (c *shardConsumer) stopAtPending() *stream.Position {
	c.closePublisher()
	_ = c.stopLanes()
	var final *stream.Position
	if p, ok := c.tracker.Pending(); ok {
		final = &p
		c.st.setCheckpoint(p)
	}
	return final
}

// lost reports whether the lease was let go (lost, or released), and
// then stops the lanes.
func (c *shardConsumer) lost() (consumeResult, bool) {
	cause := c.h.lost()
	if cause != nil {
		c.closePublisher()
		_ = c.stopLanes() // their calls' contexts have ended: they stop at once
	}
	if cause != nil && !errors.Is(cause, errReleased) {
		c.w.counters.lostLeases.Add(1)
		c.log.Warn("lease lost; shard stopped without writing", "cause", cause)
	}
	return consumeResult{}, cause != nil
}

// end writes SHARD_END with the children and releases the lease; with
// lanes, only after flushLanes.
func (c *shardConsumer) end(children []string) consumeResult {
	c.closePublisher()
	w, h := c.w, c.h
	endPos := stream.Position{Seq: stream.ShardEnd}
	if err := w.writeRetrying(h, c.log, func(ctx context.Context) error {
		return w.countCheckpoint(h.checkpoint(ctx, w.table, endPos, children))
	}); err != nil {
		c.log.Warn("lease lost before SHARD_END was written", "error", err)
		return consumeResult{}
	}
	c.st.setCheckpoint(endPos)
	c.log.Info("shard ended", "children", children)
	w.flushAndRelease(h, nil, c.log)
	return consumeResult{ended: true}
}

// run consumes the shard until it ends, stops or drains.
func (c *shardConsumer) run() consumeResult {
	w, h, log := c.w, c.h, c.log
	start, ts, err := w.startOf(h, log)
	if err != nil {
		if res, ok := c.lost(); ok {
			return res
		}
		if h.fetchCtx.Err() != nil {
			c.release()
			return consumeResult{}
		}
		return c.park(err)
	}
	if !start.IsSentinel() {
		c.resume = &start
	}
	l := c.l
	hr, err := kpl.ParseHashRange(l.StartingHashKey, l.EndingHashKey)
	switch {
	case w.cfg.DeliverOutOfRange:
		hr = kpl.HashRange{} // -out-of-range deliver: no filter
	case err != nil:
		log.Warn("lease has an unreadable hash range; records are not filtered by it", "error", err)
		hr = kpl.HashRange{}
	}
	c.filter = kpl.NewFilter(hr, w.keys)
	defer c.filter.Release()
	if c.s == nil { // a former stream's: not read
		log.Warn("lease of a stream not in -stream-name: released", "stream", l.StreamID)
		c.release()
		return consumeResult{}
	}
	c.pub, err = w.publisher(c.s, l, start, ts, log)
	if err != nil {
		return c.park(err)
	}
	defer c.pub.Close() // however the take ends: released, parked, lost, ended
	c.st.setMode(c.pub.Mode())
	if err := c.startDispatch(); err != nil {
		return c.park(err)
	}
	log.Info("shard started", "from", describeStart(start, ts))
	return c.loop(start)
}

// publisher is where the records of the shard of l come from, from
// start (ts with AT_TIMESTAMP): a GetRecords Reader.
func (w *Worker) publisher(s *streamInfo, l lease.Lease, start stream.Position, ts time.Time, log *slog.Logger) (fetch.Publisher, error) {
	cfg := fetch.Config{
		StreamName: s.name, ShardID: l.Shard(), Start: start, Timestamp: ts, NoTiming: w.cfg.MetricsLevel == metrics.None,
		RetryWaitTime: w.cfg.RetryWaitTime, RetryMaxAttempts: w.cfg.RetryMaxAttempts, Logger: log,
		IdleInterval: w.cfg.IdleTimeBetweenReads, ConsumerARN: s.consumerARN, QuietTimeout: w.cfg.SubscriptionQuietTimeout,
	}
	if s.consumerARN != "" { // enhanced fan-out
		s, err := fetch.NewSubscriber(w.subscribe, cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	r, err := fetch.New(w.reads, cfg)
	if err != nil {
		return nil, err // not a Publisher holding a nil *Reader
	}
	return r, nil
}

// handle is the handler the dispatchers call: every handler call first
// makes sure the lease is still ours.
func (c *shardConsumer) handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	if err := c.h.ensureFresh(ctx, c.w.table, c.w.cfg.FailoverTime); err != nil {
		return events.KinesisEventResponse{}, err
	}
	return c.w.cfg.Handler(ctx, ev)
}

// handleWindow is handle for a tumbling window's calls.
func (c *shardConsumer) handleWindow(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	if err := c.h.ensureFresh(ctx, c.w.table, c.w.cfg.FailoverTime); err != nil {
		return events.KinesisTimeWindowEventResponse{}, err
	}
	return c.w.cfg.WindowHandler(ctx, ev)
}

// startDispatch makes what hands the records to the handler: a
// dispatcher, a tumbling window, or lanes with their checkpoint ticker.
func (c *shardConsumer) startDispatch() error {
	w, h := c.w, c.h
	dcfg := dispatch.Config{
		Handler: c.handle, Source: c.s.source, FunctionARN: w.cfg.FunctionARN,
		BatchSize: w.cfg.BatchSize, MaxRetryAttempts: w.cfg.MaxRetryAttempts, MaxRecordAge: w.cfg.MaxRecordAge,
		BisectOnError: w.cfg.BisectOnError, OnFailure: w.cfg.OnFailure, Logger: c.log,
		HandlerTimeout: w.cfg.HandlerTimeout, Deadline: w.cfg.Deadline, MaxBatchBytes: w.cfg.MaxBatchBytes,
		OversizeAlone: w.cfg.OversizeAlone, IgnoreItemFailures: w.cfg.IgnoreItemFailures,
		NoTiming: w.cfg.MetricsLevel == metrics.None,
	}
	if !w.cfg.RemoteHandler {
		dcfg.Reread = w.rereader(c.s, c.l.Shard())
	}
	var err error
	switch {
	case w.cfg.TumblingWindow > 0:
		c.win, err = dispatch.NewWindowed(dcfg, w.cfg.TumblingWindow, c.handleWindow)
		c.disp = c.win
	case c.parallel:
		c.lanes, err = dispatch.NewLanes(h.ctx, h.stop, dcfg, dispatch.LanesConfig{
			Factor: w.cfg.ParallelizationFactor, Ahead: w.laneAhead(), MaxBatchingWindow: w.cfg.MaxBatchingWindow, Done: c.onDone,
		})
	default:
		c.disp, err = dispatch.New(dcfg)
	}
	if err != nil {
		return err
	}
	if c.lanes != nil {
		// A checkpoint not yet due when the lanes last reported is written
		// when it falls due, even while this goroutine waits for room in
		// the lanes and none of them finishes a record (one is stuck).
		c.ticking = make(chan struct{})
		stopTick := c.ticking
		c.ticked.Go(func() { c.tick(stopTick) })
	}
	return nil
}

// tick is the lanes' checkpoint ticker, until stop is closed.
func (c *shardConsumer) tick(stop <-chan struct{}) {
	t := time.NewTicker(c.w.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		c.lock()
		if c.cpErr != nil && c.h.lost() == nil {
			c.log.Warn("checkpoint write failed; will retry", "error", Explain(c.cpErr))
			c.cpErr = nil
		}
		c.checkpointIfDue()
		c.unlock()
	}
}

// flow is what afterCalls decides.
type flow int

const (
	goOn flow = iota
	stopNow
)

// afterCalls handles what a delivery (or a window's close, or the
// lanes) returned: stop, park, or go on.
func (c *shardConsumer) afterCalls(err error) flow {
	if c.lanes != nil {
		c.st.setDispatch(c.lanes.Stats())
	} else {
		c.st.setDispatch(c.disp.Stats())
	}
	if res, ok := c.lost(); ok {
		c.result = res
		return stopNow
	}
	if errors.Is(err, dispatch.ErrStopping) {
		c.release()
		return stopNow
	}
	if err != nil {
		c.result = c.park(err)
		return stopNow
	}
	return goOn
}

// checkpointIfDue writes the position done once the interval has
// passed: after records are done, and after every read, so a pending
// checkpoint is written even when no more records come.
func (c *shardConsumer) checkpointIfDue() {
	if pos, due := c.tracker.Due(time.Now()); due && c.cpErr == nil {
		// Bounded: a failed write is tried again at the next interval.
		ctx, cancel := context.WithTimeout(c.h.ctx, c.w.cfg.FailoverTime/2)
		defer cancel()
		if err := c.w.countCheckpoint(c.h.checkpoint(ctx, c.w.table, pos, nil)); err != nil {
			c.cpErr = err
			return
		}
		c.tracker.Written(pos, time.Now())
		c.st.setCheckpoint(pos)
		c.st.setParked("")
	}
}

// done is called in shard order, one call at a time (with a
// parallelization factor, from the lanes' goroutines).
func (c *shardConsumer) done(p stream.Position) {
	c.lock()
	defer c.unlock()
	c.lastDone = p
	c.tracker.Done(p)
	c.h.setDone(p)
	c.st.addDone()
	c.checkpointIfDue()
}

// flushLanes waits until the lanes are done with every record given
// them (the shard ends), and stops them; false when the shard stops
// instead (see afterCalls).
func (c *shardConsumer) flushLanes() bool {
	if c.lanes == nil {
		return true
	}
	err := c.lanes.Flush()
	if cerr := c.stopLanes(); cerr != nil {
		err = cerr
	}
	return c.afterCalls(err) == goOn
}

// loop reads and delivers the shard's records until it ends, stops or
// drains.
func (c *shardConsumer) loop(start stream.Position) consumeResult {
	w, h := c.w, c.h
	// With lanes, each lane waits for its own batch to fill: the reader
	// does not wait for the batching window.
	window := w.cfg.MaxBatchingWindow
	if c.lanes != nil {
		window = 0
	}
	for {
		b, err := c.read(h.fetchCtx, window)
		if err != nil {
			if res, ok := c.lost(); ok {
				return res
			}
			if h.fetchCtx.Err() != nil {
				break // draining
			}
			return c.readFailed(err, start)
		}
		// tail is the read's last user record: records the filter drops
		// after the last one delivered are done once the others are.
		var tail stream.Position
		if len(c.recs) > 0 {
			tail = c.recs[len(c.recs)-1].Position()
		}
		if w.cfg.Filter != nil {
			c.recs = w.filter(c.recs, c.st)
		}
		if c.deliver(b, tail) == stopNow {
			c.drops.flush()
			return c.result
		}
		// With a window, records are done only when their window closes;
		// lanes report the read's tail themselves (Add).
		if c.win == nil && c.lanes == nil && tail.Seq != "" && (c.lastDone.Seq == "" || c.lastDone.IsSentinel() || tail.After(c.lastDone)) {
			c.done(tail)
		}
		if res, ok := c.checkpointAfterRead(); ok {
			return res
		}
		c.drops.maybeWarn(time.Now())
		if b.End && c.win != nil {
			// The last window of the shard is finished before SHARD_END.
			if c.afterCalls(c.win.ShardEnd(h.ctx, h.stop, c.onDone)) == stopNow {
				c.drops.flush()
				return c.result
			}
		}
		if b.End {
			children := make([]string, 0, len(b.Children))
			for _, ch := range b.Children {
				children = append(children, aws.ToString(ch.ShardId))
			}
			c.drops.flush()
			if !c.flushLanes() {
				return c.result
			}
			c.w.createChildren(h.ctx, c.s, b.Children)
			return c.end(children)
		}
	}
	return c.drain()
}

// readFailed parks the shard after a read error no retry mends, or ends
// it when the shard is gone from the stream.
func (c *shardConsumer) readFailed(err error, start stream.Position) consumeResult {
	if isNotFound(err) {
		gone, children, cerr := c.w.shardGone(c.h.ctx, c.s, c.l.Shard())
		switch {
		case cerr != nil:
			return c.park(fmt.Errorf("read %s: %w; and checking the stream: %w", c.l.Key, Explain(err), Explain(cerr)))
		case gone:
			c.log.Warn("shard no longer exists in the stream (past its retention, or never existed); treated as ended so that its children start", "children", children)
			c.drops.flush()
			if !c.flushLanes() {
				return c.result
			}
			return c.end(children)
		}
	}
	return c.park(readProblem(err, c.l.Key, start))
}

// trimRecs lets go of the records delivered: nothing of a delivered batch
// stays reachable, and a shard keeps its slice for the next read only if
// it is small (at most 4 batches, and within the shard's share of the read
// budget), so that an idle shard does not keep its largest read alive, nor
// a worker holding many shards a large slice for each (an enhanced fan-out
// event can hold thousands of user records).
func (c *shardConsumer) trimRecs() {
	clear(c.recs)
	keep := min(4*c.w.cfg.BatchSize, max(64, c.w.laneAhead()/int(unsafe.Sizeof(stream.Record{}))))
	if cap(c.recs) > keep {
		c.recs = nil
	}
}

// deliver hands a read's records (tail its last user record) to the
// lanes or the dispatcher, or closes a caught-up shard's window; stopNow
// when the shard stops (c.result).
func (c *shardConsumer) deliver(b fetch.Batch, tail stream.Position) flow {
	w, h := c.w, c.h
	if c.lanes != nil {
		// Queued in the lanes (which copy them), unless they hold the
		// read-ahead bound: then it waits for room.
		c.lanes.SetAhead(w.laneAhead())
		err := c.lanes.Add(c.recs, tail)
		c.trimRecs() // as below
		if err != nil {
			if cerr := c.stopLanes(); cerr != nil {
				err = cerr
			}
			c.afterCalls(err) // a lane's error, a drain or a lost lease: stop
			return stopNow
		}
		c.st.setDispatch(c.lanes.Stats())
	} else if len(c.recs) > 0 {
		stop := h.stop
		if c.pend.cut {
			// The window's records, cut by the drain, are the batch in
			// flight: delivered although the drain has begun, within
			// its bounds (DrainTimeout, the function's Deadline).
			stop, c.pend.cut = nil, false
		}
		err := c.disp.Deliver(h.ctx, stop, c.recs, c.onDone)
		c.trimRecs()
		return c.afterCalls(err)
	} else if c.win != nil {
		// A caught-up shard closes its window once the clock is past it.
		return c.afterCalls(c.win.Idle(h.ctx, h.stop, time.Now(), b.MillisBehindLatest == 0, c.onDone))
	}
	return goOn
}

// checkpointAfterRead reports a checkpoint write that failed (it is tried again)
// and writes the position done if due; true when the lease is lost.
func (c *shardConsumer) checkpointAfterRead() (consumeResult, bool) {
	c.lock()
	failed := c.cpErr
	c.cpErr = nil
	c.unlock()
	if failed != nil {
		if res, ok := c.lost(); ok {
			return res, true
		}
		c.log.Warn("checkpoint write failed; will retry", "error", Explain(failed))
	}
	c.lock()
	c.checkpointIfDue()
	c.unlock()
	return consumeResult{}, false
}

// drain ends a draining shard: its lanes finish, and the lease is
// released.
func (c *shardConsumer) drain() consumeResult {
	c.drops.flush()
	// Draining: the lanes finish their calls in flight; one that gave up
	// meanwhile parks the shard, as a delivery's error does.
	if c.lanes != nil {
		if c.w.cfg.MaxBatchingWindow > 0 {
			// The drain ends the lanes' batching windows: each delivers
			// what it gathered, as one lane does (within DrainTimeout and
			// the function's Deadline).
			c.lanes.Cut()
		}
		if c.afterCalls(c.stopLanes()) == stopNow {
			return c.result
		}
	}
	c.release()
	return consumeResult{}
}

// read puts the next user records into c.recs: de-aggregated, a chunk at
// a time, with the records the checkpoint covers dropped; it reads from
// Kinesis only when nothing is pending. With a batching window it keeps
// reading until the batch is full (records or bytes), the window passes or
// the shard ends (lanes wait for their own batches: they read with none).
// The Batch returned has End (and Children) only with the last records of
// the shard's last answer.
func (c *shardConsumer) read(ctx context.Context, window time.Duration) (fetch.Batch, error) {
	w, r, st, h := c.w, c.pub, c.st, c.h
	recs, p := &c.recs, &c.pend
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
			*recs, s = c.filter.Deaggregate(*recs, c.l.Key, &p.recs[i], p.good != nil && p.good[i])
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
		if c.resume != nil {
			kept := (*recs)[:from]
			for _, rec := range (*recs)[from:] {
				if rec.Position().After(*c.resume) {
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
			c.drops.add(int64(ks.DroppedOutOfRange))
			h.addDropped(int64(ks.DroppedOutOfRange))
		}
		if ks.Malformed > 0 {
			w.log.Warn("malformed KPL aggregates delivered as they are", "shard", c.l.Key, "count", ks.Malformed)
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
