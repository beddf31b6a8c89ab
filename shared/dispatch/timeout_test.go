package dispatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// guard is how long a test waits for Deliver before calling it hung.
const guard = 10 * time.Second

// deliverWithin runs Deliver and fails the test if it does not return
// within guard (the old dispatcher waited for a hung handler forever).
func deliverWithin(t *testing.T, d *Dispatcher, ctx context.Context, recs []stream.Record, dl *doneLog) error {
	t.Helper()
	res := make(chan error, 1)
	var got []stream.Position
	go func() {
		// done runs on Deliver's goroutine; hand the positions over at
		// the end.
		err := d.Deliver(ctx, nil, recs, func(p stream.Position) { got = append(got, p) })
		res <- err
	}()
	select {
	case err := <-res:
		for _, p := range got {
			dl.done(p)
		}
		return err
	case <-time.After(guard):
		t.Fatalf("Deliver did not return within %s", guard)
		return nil
	}
}

// hung is a handler that ignores its context and does not return until
// the test ends. It counts its calls and keeps their contexts.
type hung struct {
	mu      sync.Mutex
	ctxs    []context.Context
	running int
	release chan struct{}
}

func newHung(t *testing.T) *hung {
	h := &hung{release: make(chan struct{})}
	t.Cleanup(func() {
		close(h.release)
		testwait.Until(t, guard, "the abandoned calls to return", func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.running == 0
		})
	})
	return h
}

func (h *hung) handle(ctx context.Context, _ events.KinesisEvent) (events.KinesisEventResponse, error) {
	h.mu.Lock()
	h.ctxs = append(h.ctxs, ctx)
	h.running++
	h.mu.Unlock()
	<-h.release
	h.mu.Lock()
	h.running--
	h.mu.Unlock()
	return events.KinesisEventResponse{}, nil
}

func (h *hung) calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ctxs)
}

// TestDeliverHandlerDeadline: every call's context has the handler
// timeout as its deadline, on the context that carries the
// lambdacontext.LambdaContext, as aws-lambda-go's invoke loop sets it.
func TestDeliverHandlerDeadline(t *testing.T) {
	for _, timeout := range []time.Duration{0, time.Minute} {
		want := timeout
		if want == 0 {
			want = DefaultHandlerTimeout
		}
		h := &fakeHandler{}
		d := newDispatcher(t, Config{Handler: h.handle, HandlerTimeout: timeout, BatchSize: 1})
		before := time.Now()
		if err := d.Deliver(context.Background(), nil, recs(2), func(stream.Position) {}); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		after := time.Now()
		for i, ctx := range h.ctxs {
			dl, ok := ctx.Deadline()
			if !ok {
				t.Fatalf("HandlerTimeout %s: call %d: the handler's context has no deadline", timeout, i)
			}
			if dl.Before(before.Add(want)) || dl.After(after.Add(want)) {
				t.Errorf("HandlerTimeout %s: call %d: deadline %s from the call, want %s", timeout, i, dl.Sub(before), want)
			}
			if _, ok := lambdacontext.FromContext(ctx); !ok {
				t.Errorf("call %d: the context with the deadline has no LambdaContext", i)
			}
		}
	}
}

// TestDeliverHandlerTimeout: a call that outlives HandlerTimeout is a
// failed attempt wrapping stream.ErrHandlerTimeout, whether the handler
// gives up with its context or ignores it and never returns.
func TestDeliverHandlerTimeout(t *testing.T) {
	t.Run("handler ignores its context and never returns", func(t *testing.T) {
		h := newHung(t)
		dl := &doneLog{t: t}
		d := newDispatcher(t, Config{Handler: h.handle, HandlerTimeout: 20 * time.Millisecond, MaxRetryAttempts: 1})
		err := deliverWithin(t, d, context.Background(), recs(3), dl)
		var ge *GiveUpError
		if !errors.As(err, &ge) {
			t.Fatalf("Deliver = %v, want a *GiveUpError", err)
		}
		if !errors.Is(err, stream.ErrHandlerTimeout) {
			t.Errorf("Deliver = %v, want it to wrap stream.ErrHandlerTimeout", err)
		}
		if ge.Attempts != 2 || ge.Reason != ReasonRetriesExhausted {
			t.Errorf("gave up after %d attempts (%s), want 2 (%s)", ge.Attempts, ge.Reason, ReasonRetriesExhausted)
		}
		if got, want := h.calls(), 2; got != want {
			t.Errorf("handler called %d times, want %d", got, want)
		}
		if len(dl.got) != 0 {
			t.Errorf("done = %v, want none", dl.got)
		}
		if got, want := counts(d.Stats()), (Stats{Batches: 2, Records: 6, Failures: 2, Retries: 1, Timeouts: 2}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("handler returns its context's error", func(t *testing.T) {
		var calls atomic.Int32
		h := func(ctx context.Context, _ events.KinesisEvent) (events.KinesisEventResponse, error) {
			if calls.Add(1) == 1 {
				<-ctx.Done()
				return events.KinesisEventResponse{}, ctx.Err()
			}
			return events.KinesisEventResponse{}, nil
		}
		dl := &doneLog{t: t}
		all := recs(3)
		d := newDispatcher(t, Config{Handler: h, HandlerTimeout: 20 * time.Millisecond, MaxRetryAttempts: 1})
		if err := deliverWithin(t, d, context.Background(), all, dl); err != nil {
			t.Fatalf("Deliver = %v, want nil", err)
		}
		if got, want := dl.got, positions(all[2]); !slices.Equal(got, want) {
			t.Errorf("done = %v, want %v", got, want)
		}
		if got, want := counts(d.Stats()), (Stats{Batches: 2, Records: 6, Handled: 3, Failures: 1, Retries: 1, Timeouts: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("to the on-failure destination with the timeout as last error", func(t *testing.T) {
		h := newHung(t)
		dl := &doneLog{t: t}
		dest := &fakeDestination{dl: dl}
		all := recs(2)
		d := newDispatcher(t, Config{Handler: h.handle, HandlerTimeout: 20 * time.Millisecond, OnFailure: dest})
		if err := deliverWithin(t, d, context.Background(), all, dl); err != nil {
			t.Fatalf("Deliver = %v, want nil", err)
		}
		if len(dest.sent) != 1 || dest.sent[0].Reason != ReasonRetriesExhausted {
			t.Fatalf("destination got %+v, want one failure (%s)", dest.sent, ReasonRetriesExhausted)
		}
		if got, want := dest.sent[0].LastError, "handler call outlived its 20ms deadline"; len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("LastError = %q, want it to start with %q", got, want)
		}
		if got, want := dl.got, positions(all[1]); !slices.Equal(got, want) {
			t.Errorf("done = %v, want %v", got, want)
		}
	})
}

// TestDeliverDeadline: Deadline caps every call; a call it cuts is not an
// attempt, and Deliver returns ErrStopping with those records not done.
func TestDeliverDeadline(t *testing.T) {
	t.Run("a hung call is cut", func(t *testing.T) {
		h := newHung(t)
		dl := &doneLog{t: t}
		deadline := time.Now().Add(50 * time.Millisecond)
		d := newDispatcher(t, Config{Handler: h.handle, Deadline: deadline, MaxRetryAttempts: 0})
		err := deliverWithin(t, d, context.Background(), recs(3), dl)
		if !errors.Is(err, ErrStopping) {
			t.Fatalf("Deliver = %v, want ErrStopping", err)
		}
		var ge *GiveUpError
		if errors.As(err, &ge) || errors.Is(err, stream.ErrHandlerTimeout) {
			t.Errorf("Deliver = %v: a call cut by the deadline is not an attempt", err)
		}
		if len(dl.got) != 0 {
			t.Errorf("done = %v, want none", dl.got)
		}
		if got, want := counts(d.Stats()), (Stats{Batches: 1, Records: 3}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		h.mu.Lock()
		got, _ := h.ctxs[0].Deadline()
		h.mu.Unlock()
		if !got.Equal(deadline) {
			t.Errorf("the handler's deadline is %v, want Deadline %v (before HandlerTimeout)", got, deadline)
		}
	})
	t.Run("a call that gives up with its context is cut", func(t *testing.T) {
		h := func(ctx context.Context, _ events.KinesisEvent) (events.KinesisEventResponse, error) {
			<-ctx.Done()
			return events.KinesisEventResponse{}, ctx.Err()
		}
		all := recs(4)
		first := true
		h2 := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			if first { // the first batch succeeds
				first = false
				return events.KinesisEventResponse{}, nil
			}
			return h(ctx, ev)
		}
		dl := &doneLog{t: t}
		d := newDispatcher(t, Config{Handler: h2, BatchSize: 2, Deadline: time.Now().Add(50 * time.Millisecond), MaxRetryAttempts: -1})
		err := deliverWithin(t, d, context.Background(), all, dl)
		if !errors.Is(err, ErrStopping) {
			t.Fatalf("Deliver = %v, want ErrStopping", err)
		}
		if got, want := dl.got, positions(all[1]); !slices.Equal(got, want) {
			t.Errorf("done = %v, want %v (nothing of the cut batch)", got, want)
		}
		if got := d.Stats(); got.Failures != 0 || got.Timeouts != 0 || got.Handled != 2 {
			t.Errorf("Stats = %+v, want no failure, no timeout, 2 handled", got)
		}
	})
	t.Run("past the deadline nothing is called", func(t *testing.T) {
		h := &fakeHandler{}
		dl := &doneLog{t: t}
		d := newDispatcher(t, Config{Handler: h.handle, Deadline: time.Now().Add(-time.Millisecond)})
		if err := deliverWithin(t, d, context.Background(), recs(3), dl); !errors.Is(err, ErrStopping) {
			t.Fatalf("Deliver = %v, want ErrStopping", err)
		}
		if len(h.calls) != 0 || len(dl.got) != 0 {
			t.Errorf("calls = %v, done = %v; want none", h.calls, dl.got)
		}
	})
	t.Run("no back-off runs past the deadline", func(t *testing.T) {
		h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){fail(errors.New("boom"))}}
		dl := &doneLog{t: t}
		d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: -1, RetryBackoff: time.Hour, MaxRetryBackoff: time.Hour,
			Deadline: time.Now().Add(time.Minute)})
		if err := deliverWithin(t, d, context.Background(), recs(3), dl); !errors.Is(err, ErrStopping) {
			t.Fatalf("Deliver = %v, want ErrStopping", err)
		}
		if got, want := len(h.calls), 1; got != want {
			t.Errorf("handler called %d times, want %d", got, want)
		}
		if len(dl.got) != 0 {
			t.Errorf("done = %v, want none", dl.got)
		}
	})
}

// TestDeliverPanic: a panic is a failed attempt (a *PanicError).
func TestDeliverPanic(t *testing.T) {
	h := func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) { panic("bad record") }
	dl := &doneLog{t: t}
	d := newDispatcher(t, Config{Handler: h, MaxRetryAttempts: 1})
	err := deliverWithin(t, d, context.Background(), recs(2), dl)
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "bad record" {
		t.Fatalf("Deliver = %v, want a *PanicError with the panic's value", err)
	}
	var ge *GiveUpError
	if !errors.As(err, &ge) || ge.Attempts != 2 {
		t.Errorf("Deliver = %v, want a *GiveUpError after 2 attempts", err)
	}
	if got := d.Stats(); got.Failures != 2 || got.Timeouts != 0 {
		t.Errorf("Stats = %+v, want 2 failures and no timeout", got)
	}
}

// TestDeliverCancelledWhileHung: when Deliver's context ends (the lease is
// lost) Deliver returns its cause at once, even if the handler hangs.
func TestDeliverCancelledWhileHung(t *testing.T) {
	h := newHung(t)
	cause := errors.New("lease lost")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	d := newDispatcher(t, Config{Handler: h.handle})
	res := make(chan error, 1)
	go func() { res <- d.Deliver(ctx, nil, recs(2), func(stream.Position) { t.Error("done called") }) }()
	testwait.Until(t, guard, "the handler to be called", func() bool { return h.calls() > 0 })
	cancel(cause)
	select {
	case err := <-res:
		if !errors.Is(err, cause) {
			t.Errorf("Deliver = %v, want %v", err, cause)
		}
	case <-time.After(guard):
		t.Fatal("Deliver did not return after its context ended")
	}
}

// TestAbandonedCallsDoNotPileUp (issue 17): a handler that ignores its
// context outlives every attempt's timeout; past MaxAbandonedCalls still
// running, the next attempt waits for one to return instead of starting
// another call, so a stuck handler holds a bounded number of goroutines
// and events per shard, not one per attempt. Once they return, calls go on.
func TestAbandonedCallsDoNotPileUp(t *testing.T) {
	release := make(chan struct{})
	var running, most, calls atomic.Int32
	h := func(ctx context.Context, _ events.KinesisEvent) (events.KinesisEventResponse, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		calls.Add(1)
		<-release // ignores ctx
		return events.KinesisEventResponse{}, nil
	}
	dl := &doneLog{t: t}
	d := newDispatcher(t, Config{Handler: h, HandlerTimeout: 10 * time.Millisecond, MaxRetryAttempts: 9})
	err := deliverWithin(t, d, context.Background(), recs(3), dl)
	if !errors.Is(err, stream.ErrHandlerTimeout) {
		t.Fatalf("Deliver = %v, want the timeout after 10 attempts", err)
	}
	if got := most.Load(); got != MaxAbandonedCalls {
		t.Errorf("%d calls ran at once over 10 attempts, want %d", got, MaxAbandonedCalls)
	}
	close(release)
	if err := deliverWithin(t, d, context.Background(), recs(3), dl); err != nil {
		t.Fatalf("Deliver after the calls returned = %v", err)
	}
	if got := calls.Load(); got != MaxAbandonedCalls+1 {
		t.Errorf("handler called %d times, want %d (the abandoned ones, then one that succeeded)", got, MaxAbandonedCalls+1)
	}
}
