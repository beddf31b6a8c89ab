package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/window"
)

var _ Deliverer = (*Windowed)(nil)

// maxShardIDLen is the longest shard id Kinesis gives, for the byte
// reserve of a window's fields.
const maxShardIDLen = 128

// errHalted cuts a call made after a window's early termination could not
// finish (the shard is stopping): not an attempt, and nothing of it is
// reported done.
var errHalted = fmt.Errorf("%w: the window's early termination did not finish before stopping", errCut)

// Windowed delivers one shard's records to a stream.WindowHandler in
// tumbling windows, as Lambda's TumblingWindowInSeconds does; package
// window says how windows are cut, when they close and what is
// checkpointed. Inside a window it drives a Dispatcher, so batches,
// retries, bisect, partial failures, record age, give-up, deadlines, byte
// limits and Stats work as for plain batches; each call carries the
// window and the state the previous call returned.
//
// done is called only when a window's final invoke has succeeded (or its
// early termination's), with the window's last record: the records of a
// window still open are never reported done. After Deliver, Idle or
// ShardEnd returns an error, the open window is dropped, unfinished: the
// caller must read the shard again from the position after the last one
// reported done (as a new owner does), and the window starts again with a
// fresh state. A drain does not finish a window either.
//
// One call is in flight at a time: a parallelization factor does not
// apply. Like Dispatcher, it is not safe for concurrent use: Deliver,
// Idle, ShardEnd and Stats are called from the shard's goroutine.
type Windowed struct {
	d    *Dispatcher // calls w.call for the records of the open window
	h    stream.WindowHandler
	size time.Duration
	src  stream.Source
	log  *slog.Logger

	// The open window, on the shard's goroutine (Deliver, Idle, ShardEnd
	// and the inner dispatcher's done callbacks).
	open    bool
	floor   time.Time       // the end of the last window closed
	pending bool            // records done since the window opened or was terminated early
	last    stream.Position // the last of them
	givenUp int64           // d.stats.GivenUp at the last inner done
	// While Deliver runs, for an early termination inside a done callback.
	ctx  context.Context
	stop <-chan struct{}
	done func(stream.Position)
	halt error // why an early termination did not finish

	mu sync.Mutex // guards what handler goroutines read and write:
	// cur is the next call's shard, window and state (written only on
	// the shard's goroutine, which reads it without the lock).
	cur     window.Call
	halted  bool
	answers map[string]map[string]string // request id → the state its call returned
}

// NewWindowed returns a Windowed of windows of size (window.CheckSize:
// whole seconds, 1–900) calling h. cfg is a Dispatcher's Config;
// cfg.Handler is not used. Byte limits: each call's event holds the
// window's fields and a state of up to window.MaxStateBytes besides the
// records, so the records of a call get MaxBatchBytes less that reserve
// (invoke.WindowOverhead, for the longest shard id and the largest state).
// A final invoke carries no records and is not bounded.
func NewWindowed(cfg Config, size time.Duration, h stream.WindowHandler) (*Windowed, error) {
	if h == nil {
		return nil, errors.New("dispatch: a window handler is required")
	}
	if err := window.CheckSize(size); err != nil {
		return nil, err
	}
	w := &Windowed{h: h, size: size, src: cfg.Source, answers: make(map[string]map[string]string)}
	cfg.Handler = w.call
	if cfg.MaxBatchBytes == 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.MaxBatchBytes > 0 {
		reserve := invoke.WindowOverhead(cfg.Source, strings.Repeat("x", maxShardIDLen), window.MaxStateBytes)
		if cfg.MaxBatchBytes <= reserve {
			return nil, fmt.Errorf("max batch bytes %d: with a tumbling window an event holds up to %d bytes of window fields and state besides its records; allowed more than that", cfg.MaxBatchBytes, reserve)
		}
		cfg.MaxBatchBytes -= reserve
	}
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	w.d, w.log = d, d.log
	return w, nil
}

// Stats returns the inner dispatcher's counts. Final invokes count as
// batches of no records (with their failures, throttles, timeouts and
// retries); Handled counts records the handler took, which are checkpointed
// only when their window closes.
func (w *Windowed) Stats() Stats { return w.d.Stats() }

// Open returns the open window, if there is one.
func (w *Windowed) Open() (window.Window, bool) { return w.cur.Window, w.open }

// Deliver hands recs to the handler window by window, in order. A record
// of a later window than the open one first closes it with the final
// invoke, and then done reports the closed window's last record. The
// records of the last window stay open: a later Deliver, Idle or
// ShardEnd closes it. Returns as Dispatcher.Deliver does; on an error the
// open window is dropped (see Windowed).
func (w *Windowed) Deliver(ctx context.Context, stop <-chan struct{}, recs []stream.Record, done func(stream.Position)) error {
	w.ctx, w.stop, w.done = ctx, stop, done
	defer func() { w.ctx, w.stop, w.done = nil, nil, nil }()
	for len(recs) > 0 {
		if stopped(stop) {
			w.drop()
			return ErrStopping
		}
		if w.open && !recs[0].ApproximateArrivalTimestamp.Before(w.cur.Window.End) {
			if err := w.closeWindow(ctx, stop, done); err != nil {
				w.drop()
				return err
			}
		}
		if !w.open {
			w.openFor(&recs[0])
		}
		n := window.Span(recs, w.cur.Window.End)
		err := w.d.Deliver(ctx, stop, recs[:n:n], w.innerDone)
		if w.halt != nil {
			err = w.halt // the calls cut after it say less
		}
		if err != nil {
			w.drop()
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// Idle closes the open window when the shard is caught up (caughtUp: the
// last read found nothing more, MillisBehindLatest 0) and now, the wall
// clock, is window.Grace past the window's end: the final invoke, then
// done with the window's last record. Call it after a read that returned
// no records. It returns nil when there is nothing to close; errors as
// Deliver.
func (w *Windowed) Idle(ctx context.Context, stop <-chan struct{}, now time.Time, caughtUp bool, done func(stream.Position)) error {
	if !w.open || !w.cur.Window.Closable(now, caughtUp) {
		return nil
	}
	if err := w.closeWindow(ctx, stop, done); err != nil {
		w.drop()
		return err
	}
	return nil
}

// ShardEnd closes the open window at once, as Lambda does when a shard
// ends (its children start windows of their own): call it when the shard
// has no more records, before its end is checkpointed.
func (w *Windowed) ShardEnd(ctx context.Context, stop <-chan struct{}, done func(stream.Position)) error {
	if !w.open {
		return nil
	}
	if err := w.closeWindow(ctx, stop, done); err != nil {
		w.drop()
		return err
	}
	return nil
}

// openFor opens the window rec counts in, with a fresh state.
func (w *Windowed) openFor(rec *stream.Record) {
	win := window.Assign(rec.ApproximateArrivalTimestamp, w.floor, w.size)
	w.setCall(window.Call{ShardID: rec.ShardID, Window: win, State: map[string]string{}})
	w.open, w.pending, w.last, w.halt = true, false, stream.Position{}, nil
	w.givenUp = w.d.stats.GivenUp
	w.log.Debug("window opened", "window", win.String())
}

// closeWindow makes the final invoke of the open window, if any record
// was done in it since it opened (or was terminated early), reports its
// last record done and closes it.
func (w *Windowed) closeWindow(ctx context.Context, stop <-chan struct{}, done func(stream.Position)) error {
	if w.pending {
		if err := w.final(ctx, stop, false); err != nil {
			return err
		}
		done(w.last)
		w.log.Debug("window closed", "window", w.cur.Window.String(), "last", w.last.String())
	}
	w.floor = w.cur.Window.End
	w.open, w.pending = false, false
	w.setCall(window.Call{})
	return nil
}

// drop forgets the open window, unfinished.
func (w *Windowed) drop() {
	if w.open {
		w.log.Info("window left unfinished: its records are not checkpointed, and the next reader starts it again",
			"window", w.cur.Window.String())
	}
	w.open, w.pending, w.halt = false, false, nil
	w.mu.Lock()
	w.cur, w.halted = window.Call{}, false
	clear(w.answers)
	w.mu.Unlock()
}

func (w *Windowed) setCall(c window.Call) {
	w.mu.Lock()
	w.cur = c
	w.mu.Unlock()
}

// call is the inner dispatcher's handler: the window handler with the
// open window and a copy of the state, so that a failed call changes
// nothing. The state it returns is kept under the call's request id, for
// innerDone to take when the dispatcher accepts the call.
func (w *Windowed) call(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	w.mu.Lock()
	c, halted := w.cur, w.halted
	w.mu.Unlock()
	if halted {
		return events.KinesisEventResponse{}, errHalted
	}
	c.State = maps.Clone(c.State)
	resp, err := w.h(ctx, window.Wrap(ev, w.src, c))
	if err != nil {
		return events.KinesisEventResponse{}, err
	}
	if resp.State == nil {
		return events.KinesisEventResponse{}, fmt.Errorf("window %s: %w", c.Window, window.ErrNoState)
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		state := maps.Clone(resp.State)
		w.mu.Lock()
		// Only the last call's answer can be accepted (calls are serial
		// within a shard): an earlier one, whose call failed, is dropped,
		// or a stuck shard's retries would each keep a state of up to
		// 1 MB for ever.
		clear(w.answers)
		w.answers[lc.AwsRequestID] = state
		w.mu.Unlock()
	}
	return events.KinesisEventResponse{BatchItemFailures: resp.BatchItemFailures}, nil
}

// innerDone is the inner dispatcher's done: records of the open window up
// to pos are handled, by the last call (which returned the state to keep)
// or given up (the state stays). A state over window.MaxStateBytes
// terminates the window early at once.
func (w *Windowed) innerDone(pos stream.Position) {
	givenUp := w.d.stats.GivenUp != w.givenUp
	w.givenUp = w.d.stats.GivenUp
	w.mu.Lock()
	state, answered := w.answers[w.d.lastRequestID]
	clear(w.answers)
	keep := answered && !givenUp && !w.halted
	if keep {
		w.cur.State = state
	}
	halted := w.halted
	w.mu.Unlock()
	if halted {
		return
	}
	w.last, w.pending = pos, true
	if keep && window.TooLarge(state) {
		w.terminateEarly()
	}
}

// terminateEarly makes the final invoke with the state that is too large,
// reports the records so far done and goes on in the same window with a
// fresh state. If it cannot finish (the shard is stopping), the window
// halts: the calls left are cut and Deliver returns why.
func (w *Windowed) terminateEarly() {
	w.log.Warn("window state over its limit: the window ends early and goes on with a fresh state, as on Lambda",
		"window", w.cur.Window.String(), "state bytes", window.StateSize(w.cur.State), "limit", window.MaxStateBytes)
	if err := w.final(w.ctx, w.stop, true); err != nil {
		w.halt = err
		w.mu.Lock()
		w.halted = true
		w.mu.Unlock()
		return
	}
	w.done(w.last)
	w.pending = false
	w.mu.Lock()
	w.cur.State = map[string]string{}
	w.mu.Unlock()
}

// final makes the open window's final invoke (isFinalInvokeForWindow; with
// early, isWindowTerminatedEarly too) with its state and no records, and
// retries it with the dispatcher's back-off until it succeeds: it is
// never given up, as Lambda pauses the shard until it succeeds. Only
// stop, ctx or Deadline end it, with ErrStopping or ctx's cause.
func (w *Windowed) final(ctx context.Context, stop <-chan struct{}, early bool) error {
	d := w.d
	win := w.cur.Window.String()
	for n := 0; ; n++ {
		if stopped(stop) {
			return fmt.Errorf("%w: before the final invoke of window %s", ErrStopping, win)
		}
		err := w.finalCall(ctx, early)
		if err == nil {
			return nil
		}
		if cerr := context.Cause(ctx); cerr != nil {
			return cerr
		}
		if errors.Is(err, errCut) {
			w.log.Warn("final invoke cut at the deadline; the window stays for the next run", "window", win, "error", err.Error())
			return fmt.Errorf("%w: final invoke of window %s: %w", ErrStopping, win, err)
		}
		switch {
		case errors.Is(err, stream.ErrThrottled):
			d.stats.Throttles++
		case errors.Is(err, stream.ErrNotInvoked):
			d.stats.NotInvoked++
		default:
			if errors.Is(err, stream.ErrHandlerTimeout) {
				d.stats.Timeouts++
			}
			d.stats.Failures++
			d.stats.Retries++
		}
		wait := backoff(d.cfg.RetryBackoff, n, d.cfg.MaxRetryBackoff)
		w.log.Warn("final invoke of the window failed; retrying: the shard waits until it succeeds, as on Lambda",
			"window", win, "terminated early", early, "tries", n+1, "wait", wait, "error", err.Error())
		if err := d.wait(ctx, stop, wait); err != nil {
			return err
		}
	}
}

// finalCall makes one final invoke, with a deadline as every call has.
func (w *Windowed) finalCall(ctx context.Context, early bool) error {
	d := w.d
	if !d.cfg.Deadline.IsZero() && !time.Now().Before(d.cfg.Deadline) {
		return errCut
	}
	d.stats.Batches++
	hctx, cancel := d.callContext(ctx)
	defer cancel()
	lc := &lambdacontext.LambdaContext{AwsRequestID: requestID(), InvokedFunctionArn: d.cfg.FunctionARN}
	c := w.cur
	c.State, c.Final, c.TerminatedEarly = maps.Clone(c.State), true, early
	ev := window.Event(w.src, c, nil)
	debug := d.log.Enabled(ctx, slog.LevelDebug)
	var began time.Time
	if debug {
		began = time.Now()
	}
	resp, err := runAbandoning(lambdacontext.NewContext(hctx, lc), d.late, func(ctx context.Context) (events.KinesisTimeWindowEventResponse, error) {
		return w.h(ctx, ev)
	})
	if err == nil && resp.State == nil {
		err = fmt.Errorf("final invoke of window %s: %w", c.Window, window.ErrNoState)
	}
	if debug {
		d.logCall(ctx, nil, lc.AwsRequestID, time.Since(began), -1, err, "window", c.Window.String(), "final", true, "terminatedEarly", early)
	}
	return err
}

// runAbandoning calls fn in a goroutine of its own and waits for its
// answer until ctx ends; then it stops waiting and leaves the call running,
// as Dispatcher.run does. late explains an error given as ctx ended.
func runAbandoning[T any](ctx context.Context, late func(context.Context, error) error, fn func(context.Context) (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	answer := make(chan result, 1) // the abandoned call's answer goes nowhere
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				r = result{err: &PanicError{Value: v}}
			}
			answer <- r
		}()
		r.v, r.err = fn(ctx)
	}()
	select {
	case r := <-answer:
		return r.v, late(ctx, r.err)
	case <-ctx.Done():
	}
	select {
	case r := <-answer:
		return r.v, late(ctx, r.err)
	default:
	}
	var zero T
	return zero, fmt.Errorf("%w (the call was abandoned and may still be running)", context.Cause(ctx))
}
