package redrive

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/stream"
)

// deliver hands one round's records to the handler, shard by shard
// concurrently, and cleans up each message as soon as every record it
// holds is done. ctx ending stops it between batches: the batches in
// flight finish, and what is done is cleaned up.
func (r *Redriver) deliver(ctx context.Context, g *gather, seen map[string]bool) error {
	dctx := context.WithoutCancel(ctx)
	stop := make(chan struct{})
	var stopOnce sync.Once
	closeStop := func() { stopOnce.Do(func() { close(stop) }) }
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
			return
		}
		closeStop()
	}()
	c := newCleaner(dctx, r)
	// A message whose every record was done in an earlier round (or
	// that holds none) is done now.
	for _, h := range g.msgs {
		if h.pending == 0 && h.bad == nil {
			h.done = true
			c.add(h)
		}
	}
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for id, its := range g.shards() {
		wg.Go(func() {
			// r.mu guards held and seen while shards deliver.
			err := r.deliverShard(dctx, stop, id, its, func(it *item) {
				var ready []*held
				r.mu.Lock()
				seen[key(&it.rec)] = true
				for _, h := range it.owners {
					if h.pending--; h.pending == 0 && h.bad == nil && !h.done {
						h.done = true
						ready = append(ready, h)
					}
				}
				r.mu.Unlock()
				for _, h := range ready {
					c.add(h)
				}
			})
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
			}
		})
	}
	wg.Wait()
	closeStop()
	c.close()
	r.mu.Lock()
	r.sum.Duplicates += g.dups
	for _, h := range g.msgs {
		if h.done {
			r.sum.Cleaned++
		} else {
			r.sum.Kept++
		}
	}
	r.mu.Unlock()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	if firstErr != nil && r.cfg.Dispatch.OnFailure != nil {
		return firstErr // a destination that refused: nothing more can go there
	}
	return nil
}

// errShardStopped marks records of a shard whose delivery stopped in an
// earlier round: they wait, so that a key's records stay in order.
var errShardStopped = errors.New("an earlier record of the shard was not handled")

// deliverShard delivers one shard's records in order, calling done for
// each record done (handled or given up to -on-failure), in order.
func (r *Redriver) deliverShard(ctx context.Context, stop <-chan struct{}, id string, its []*item, done func(*item)) error {
	sh := r.shard(id, "")
	r.mu.Lock()
	stopped := sh.Stopped
	arn := sh.StreamARN
	sh.Records += int64(len(its))
	for _, it := range its {
		sh.span(it.rec.SequenceNumber, it.rec.ApproximateArrivalTimestamp)
	}
	r.mu.Unlock()
	if stopped != "" {
		r.leave(sh, its, errShardStopped)
		return nil
	}
	cfg := r.cfg.Dispatch
	region := regionOf(arn)
	if region == "" {
		region = r.cfg.Region
	}
	cfg.Source = stream.Source{StreamARN: arn, Region: region}
	cfg.Logger = r.log.With("shard", id)
	live := &liveCount{}
	if cfg.OnFailure != nil && cfg.OnFailure != dispatch.Discard { // Discard stays itself: the dispatcher logs its drops as drops
		cfg.OnFailure = &countingDestination{Destination: cfg.OnFailure, r: r, live: live}
	}
	d, err := dispatch.NewDeliverer(cfg, r.cfg.ParallelizationFactor)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.live[id] = live
	r.mu.Unlock()
	recs := make([]stream.Record, len(its))
	for i, it := range its {
		recs[i] = it.rec
	}
	next := 0
	err = d.Deliver(ctx, stop, recs, func(pos stream.Position) {
		for next < len(its) && !its[next].rec.Position().After(pos) {
			r.mu.Lock()
			live.done++
			live.doneBytes += int64(len(its[next].rec.Data))
			r.mu.Unlock()
			done(its[next])
			next++
		}
	})
	st := d.Stats()
	r.mu.Lock()
	delete(r.live, id)
	sh.Handled += st.Handled
	sh.GivenUp += st.GivenUp
	r.disp[id] = addStats(r.disp[id], st)
	r.mu.Unlock()
	if err == nil {
		return nil
	}
	var gu *dispatch.GiveUpError
	switch {
	case errors.As(err, &gu):
		err = fmt.Errorf("records %s..%s of %s failed %d times (%s) and there is no -on-failure: they and the shard's later records stay in the source",
			gu.First, gu.Last, id, gu.Attempts, gu.Reason)
		r.log.Error("records failed again; the shard's delivery stops", "first", gu.First.String(), "last", gu.Last.String(), "attempts", gu.Attempts, "error", errText(gu.Err))
	case errors.Is(err, dispatch.ErrStopping):
		err = errors.New("interrupted")
	default:
		r.log.Error("the shard's delivery stopped", "shard", id, "error", err.Error())
	}
	r.leave(sh, its[next:], err)
	r.note(err.Error())
	return err
}

// liveCount is what a shard's delivery has done so far, for Dispatch
// while it runs (the dispatcher's own counts are read when it ends).
// Guarded by the Redriver's mu.
type liveCount struct {
	done, doneBytes       int64 // records done: handled or given up
	givenUp, givenUpBytes int64 // records -on-failure accepted
}

// countingDestination counts the records -on-failure accepted.
type countingDestination struct {
	dispatch.Destination
	r    *Redriver
	live *liveCount
}

func (c *countingDestination) Send(ctx context.Context, f dispatch.Failure) error {
	if err := c.Destination.Send(ctx, f); err != nil {
		return err
	}
	var n int64
	for i := range f.Records {
		n += int64(len(f.Records[i].Data))
	}
	c.r.mu.Lock()
	c.live.givenUp += int64(len(f.Records))
	c.live.givenUpBytes += n
	c.r.mu.Unlock()
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// leave counts records not done, and stops the shard for later rounds.
func (r *Redriver) leave(sh *ShardSummary, its []*item, why error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sh.Left += int64(len(its))
	if sh.Stopped == "" {
		sh.Stopped = why.Error()
	}
	for _, it := range its {
		for _, h := range it.owners {
			if h.bad == nil {
				h.bad = why
			}
		}
	}
}

func addStats(a, b dispatch.Stats) dispatch.Stats {
	a.Batches += b.Batches
	a.Records += b.Records
	a.Handled += b.Handled
	a.Failures += b.Failures
	a.Retries += b.Retries
	a.GivenUp += b.GivenUp
	a.Throttles += b.Throttles
	a.NotInvoked += b.NotInvoked
	a.Timeouts += b.Timeouts
	a.HandledBytes += b.HandledBytes
	a.FailedRecords += b.FailedRecords
	a.DestinationFailures += b.DestinationFailures
	return a
}

// cleaner cleans messages up in the background as they are done, a few
// at a time.
type cleaner struct {
	ctx  context.Context
	r    *Redriver
	in   chan *held
	done chan struct{}
}

// cleanBatch and cleanWait bound how many messages one clean-up call
// takes and how long a done message waits for others.
const (
	cleanBatch = 10
	cleanWait  = 50 * time.Millisecond
)

func newCleaner(ctx context.Context, r *Redriver) *cleaner {
	c := &cleaner{ctx: ctx, r: r, in: make(chan *held, 1024), done: make(chan struct{})}
	go c.loop()
	return c
}

func (c *cleaner) add(h *held) { c.in <- h }

func (c *cleaner) close() {
	close(c.in)
	<-c.done
}

func (c *cleaner) loop() {
	defer close(c.done)
	var batch []*held
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case h, ok := <-c.in:
			if !ok {
				c.flush(batch)
				return
			}
			if len(batch) == 0 {
				t.Reset(cleanWait)
			}
			if batch = append(batch, h); len(batch) >= cleanBatch {
				c.flush(batch)
				batch = nil
			}
		case <-t.C:
			c.flush(batch)
			batch = nil
		}
	}
}

func (c *cleaner) flush(batch []*held) {
	if len(batch) == 0 {
		return
	}
	msgs := make([]*Message, len(batch))
	for i, h := range batch {
		msgs[i] = h.msg
	}
	if err := c.r.cfg.Source.Done(c.ctx, msgs); err != nil {
		c.r.log.Error("could not clean up messages whose records were all handled: they stay in the source, and a next redrive hands their records over again",
			"messages", len(msgs), "error", err.Error())
		c.r.note("clean-up failed: " + err.Error())
		c.r.mu.Lock()
		for _, h := range batch {
			h.done = false
			if h.bad == nil {
				h.bad = err
			}
		}
		c.r.mu.Unlock()
	}
}
