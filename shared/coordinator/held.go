package coordinator

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/stream"
)

// errStopping is the cause of a shard's fetch context when the worker drains.
var errStopping = errors.New("worker stopping")

// held is a lease this worker holds and the contexts of its consumer. Every
// write to the lease goes through write, one at a time, so each carries the
// counter the previous one returned.
type held struct {
	writing   chan struct{} // a one-slot lock for writes that a context can abandon
	mu        sync.Mutex    // guards lease and lastRenew
	lease     lease.Lease
	lastRenew time.Time
	taken     time.Time

	// handoff, when set, reads the lease after a write found it lost and
	// reports whether the leader asked for it by a graceful handoff
	// (checkpointOwner this worker, leaseOwner the next, the counter as
	// last written): the lease as it is then. onHandoff is called once
	// then: the shard drains, and its release passes the lease on.
	handoff    func(context.Context, lease.Lease) (lease.Lease, bool)
	onHandoff  func()
	handingOff sync.Once

	ctx         context.Context // cancelled (with the cause) when the lease is lost
	cancel      context.CancelCauseFunc
	fetchCtx    context.Context // also cancelled when the worker drains
	fetchCancel context.CancelCauseFunc
	stop        chan struct{}
	stopOnce    sync.Once
	behind      func() int64 // the shard's last MillisBehindLatest, -1 unknown
	// handled is the shard's count of records (and their bytes) handled
	// by this worker, over its takes; reported is what of the records the
	// lease has (under writing), so that each renewal adds the rest.
	handled  func() (records, bytes int64)
	reported int64
	// rate measures the KB/s the handler got for throughputKBps (under
	// writing).
	rate throughput

	progress sync.Mutex
	done     *stream.Position // the last position reported done
	dropped  int64            // records dropped outside the hash range, not yet in the lease
}

// setDone records the last position done, for a drain that has to give the
// shard up while its consumer is stuck in a handler call.
func (h *held) setDone(p stream.Position) {
	h.progress.Lock()
	h.done = &p
	h.progress.Unlock()
}

// lastDone is the last position reported done, or nil.
func (h *held) lastDone() *stream.Position {
	h.progress.Lock()
	defer h.progress.Unlock()
	return h.done
}

// addDropped counts records dropped outside the hash range; the next
// renewal adds them to the lease.
func (h *held) addDropped(n int64) {
	h.progress.Lock()
	h.dropped += n
	h.progress.Unlock()
}

func (h *held) takeDropped() int64 {
	h.progress.Lock()
	defer h.progress.Unlock()
	n := h.dropped
	h.dropped = 0
	return n
}

func (h *held) giveBackDropped(n int64) {
	if n > 0 {
		h.addDropped(n)
	}
}

func newHeld(work context.Context, l lease.Lease) *held {
	h := &held{
		writing: make(chan struct{}, 1), lease: l, lastRenew: time.Now(), taken: time.Now(), rate: throughput{kbps: -1},
		stop: make(chan struct{}), behind: func() int64 { return -1 }, handled: func() (int64, int64) { return 0, 0 },
	}
	h.ctx, h.cancel = context.WithCancelCause(work)
	h.fetchCtx, h.fetchCancel = context.WithCancelCause(h.ctx)
	return h
}

// snapshot returns the lease as last written.
func (h *held) snapshot() lease.Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lease.Clone()
}

// stopFetching asks the consumer to drain: finish the batch in flight,
// checkpoint, release.
func (h *held) stopFetching() { h.stopWith(errStopping) }

// stopWith is stopFetching with the cause given.
func (h *held) stopWith(cause error) {
	h.stopOnce.Do(func() {
		close(h.stop)
		h.fetchCancel(cause)
	})
}

// errHandingOff is the cause of a shard's fetch context when the leader
// asked for its lease: it drains, and its release passes the lease on.
var errHandingOff = errors.New("lease handed off")

// lost reports why the lease is no longer ours, or nil.
func (h *held) lost() error {
	if h.ctx.Err() == nil {
		return nil
	}
	return context.Cause(h.ctx)
}

// write applies one fenced write. On ErrLeaseLost the consumer is cancelled
// with that cause and no later write is attempted. Waiting for an earlier
// write ends with ctx, so every caller's deadline covers the wait too.
func (h *held) write(ctx context.Context, fn func(context.Context, lease.Lease) (lease.Lease, error)) error {
	select {
	case h.writing <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-h.writing }()
	if err := h.lost(); err != nil {
		return err
	}
	l, err := fn(ctx, h.snapshot())
	if errors.Is(err, lease.ErrLeaseLost) && h.handoff != nil {
		if hl, ok := h.handoff(ctx, h.snapshot()); ok {
			// Asked for by a graceful handoff: the write goes on, on the
			// handoff's terms, and the shard drains.
			h.mu.Lock()
			h.lease = hl
			h.mu.Unlock()
			if h.onHandoff != nil {
				h.handingOff.Do(h.onHandoff)
			}
			l, err = fn(ctx, hl)
		}
	}
	if errors.Is(err, lease.ErrLeaseLost) {
		h.cancel(lease.ErrLeaseLost)
		return err
	}
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.lease = l
	h.lastRenew = time.Now()
	h.mu.Unlock()
	return nil
}

// renew moves the counter on. Another worker may take the lease once
// failover has passed since the last renewal that succeeded, so the attempt
// is bounded by that moment, and past it the lease is given up as expired
// (the consumer stops without writing).
func (h *held) renew(ctx context.Context, t *lease.Table, failover time.Duration) {
	h.mu.Lock()
	expires := h.lastRenew.Add(failover)
	h.mu.Unlock()
	rctx, cancel := context.WithDeadline(ctx, expires)
	defer cancel()
	err := h.progressWrite(rctx, func(ctx context.Context, l lease.Lease, p lease.Progress) (lease.Lease, error) {
		return t.Renew(ctx, l, p)
	})
	if err == nil || errors.Is(err, lease.ErrLeaseLost) || h.lost() != nil || ctx.Err() != nil {
		return
	}
	if !time.Now().Before(expires) {
		h.cancel(ErrLeaseExpired)
	}
}

// ensureFresh is called before every handler call. When the last renewal
// is older than half the failover time (the worker was paused, or DynamoDB
// is failing) it renews first, so a worker whose lease was taken while it
// was stopped learns it before calling the handler again, not after.
func (h *held) ensureFresh(ctx context.Context, t *lease.Table, failover time.Duration) error {
	h.mu.Lock()
	age := time.Since(h.lastRenew)
	h.mu.Unlock()
	if age < failover/2 {
		return h.lost()
	}
	h.renew(ctx, t, failover)
	return h.lost()
}

// progressWrite is a fenced write that carries the progress a renewal
// reports: the user records handled since the last one that succeeded and
// the dropped ones not yet written. It runs inside h.write, which
// serialises the lease's writes, so nothing is counted twice.
func (h *held) progressWrite(ctx context.Context, write func(context.Context, lease.Lease, lease.Progress) (lease.Lease, error)) error {
	dropped := h.takeDropped()
	err := h.write(ctx, func(ctx context.Context, l lease.Lease) (lease.Lease, error) {
		handled, bytes := h.handled()
		now := time.Now()
		rate := h.rate.next(bytes, now)
		out, err := write(ctx, l, lease.Progress{Time: now, MillisBehindLatest: h.behind(), DroppedOutOfRange: dropped,
			RecordsHandled: handled - h.reported, ThroughputKBps: rate.kbps})
		if err == nil {
			h.reported = handled
			h.rate = rate
		}
		return out, err
	})
	if err != nil {
		h.giveBackDropped(dropped)
	}
	return err
}

// throughput is a moving average of the KB/s a shard's handler got
// (KCL 3.x's throughputKBps: its lease balancer weighs leases by it), as
// of the last progress written.
type throughput struct {
	bytes int64     // the handled bytes counted then
	at    time.Time // when; zero before the first measurement
	kbps  float64   // -1 before the first write
}

// throughputAlpha is the weight of the newest sample, KCL's.
const throughputAlpha = 0.5

// next is the throughput with bytes handled as of now: the KB/s since the
// last measurement, averaged in. A first sample is taken as it is.
func (r throughput) next(bytes int64, now time.Time) throughput {
	secs := now.Sub(r.at).Seconds()
	if r.at.IsZero() || secs <= 0 {
		return throughput{bytes: bytes, at: now, kbps: r.kbps}
	}
	sample := float64(bytes-r.bytes) / 1024 / secs
	if r.kbps >= 0 {
		sample = throughputAlpha*sample + (1-throughputAlpha)*r.kbps
	}
	return throughput{bytes: bytes, at: now, kbps: sample}
}

// checkpoint writes pos (fenced), with what a renewal writes: a shard that
// checkpoints often needs no renewals besides (see fresh).
func (h *held) checkpoint(ctx context.Context, t *lease.Table, pos stream.Position, children []string) error {
	return h.progressWrite(ctx, func(ctx context.Context, l lease.Lease, p lease.Progress) (lease.Lease, error) {
		return t.Checkpoint(ctx, l, pos, children, p)
	})
}

// fresh reports whether the lease was written (renewed or checkpointed)
// less than d ago.
func (h *held) fresh(d time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Since(h.lastRenew) < d
}

// checkpointAt fixes the lease's start as AT_TIMESTAMP ts (fenced).
func (h *held) checkpointAt(ctx context.Context, t *lease.Table, ts time.Time) error {
	return h.write(ctx, func(ctx context.Context, l lease.Lease) (lease.Lease, error) {
		return t.CheckpointAt(ctx, l, ts)
	})
}

// park writes pos (if not nil) and the park, and gives the lease up.
func (h *held) park(ctx context.Context, t *lease.Table, pos *stream.Position, p lease.Park) error {
	return h.write(ctx, func(ctx context.Context, l lease.Lease) (lease.Lease, error) {
		if err := t.Park(ctx, l, pos, p); err != nil {
			return lease.Lease{}, err
		}
		h.cancel(errReleased)
		return l, nil
	})
}

// release writes pos (if not nil) and gives the lease up.
func (h *held) release(ctx context.Context, t *lease.Table, pos *stream.Position) error {
	return h.write(ctx, func(ctx context.Context, l lease.Lease) (lease.Lease, error) {
		if err := t.Release(ctx, l, pos); err != nil {
			return lease.Lease{}, err
		}
		h.cancel(errReleased)
		return l, nil
	})
}

var errReleased = errors.New("lease released")
