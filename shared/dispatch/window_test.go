package dispatch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/window"
)

// w0 starts a minute: windows of a minute are w0+0s, w0+60s, w0+120s…
var w0 = time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)

var winSource = stream.Source{StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s", Region: "us-east-1"}

// wrecs returns records with sequence numbers 1000, 1001, … that arrived
// at w0 plus each offset.
func wrecs(offsets ...time.Duration) []stream.Record {
	out := make([]stream.Record, len(offsets))
	for i, o := range offsets {
		out[i] = stream.Record{ShardID: testShard, SequenceNumber: strconv.Itoa(1000 + i), PartitionKey: "k",
			Data: []byte("d"), ApproximateArrivalTimestamp: w0.Add(o)}
	}
	return out
}

// fakeWindow is a window handler that keeps, in its state, how many
// records it saw ("n") and their sequence numbers ("seqs"), and records
// every call. answer, when set, may change the response of call i.
type fakeWindow struct {
	mu     sync.Mutex
	calls  []string
	events []events.KinesisTimeWindowEvent
	answer func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error)
}

func (f *fakeWindow) handle(_ context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	f.mu.Lock()
	i := len(f.calls)
	f.calls = append(f.calls, describe(ev))
	f.events = append(f.events, ev)
	answer := f.answer
	f.mu.Unlock()
	state := maps.Clone(ev.State)
	if !ev.IsFinalInvokeForWindow {
		n, _ := strconv.Atoi(state["n"])
		state["n"] = strconv.Itoa(n + len(ev.Records))
		for _, r := range ev.Records {
			state["seqs"] = strings.TrimPrefix(state["seqs"]+","+r.Kinesis.SequenceNumber, ",")
		}
	} else {
		state = map[string]string{}
	}
	resp := events.KinesisTimeWindowEventResponse{}
	resp.State = state
	if answer != nil {
		return answer(i, ev, resp)
	}
	return resp, nil
}

func (f *fakeWindow) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// describe renders a call: "15:04:00 [1000 1001] {n=2 seqs=1000,1001}",
// with "final" or "final early" for final invokes.
func describe(ev events.KinesisTimeWindowEvent) string {
	var b strings.Builder
	b.WriteString(ev.Window.Start.UTC().Format("15:04:05"))
	if ev.IsFinalInvokeForWindow {
		b.WriteString(" final")
	}
	if ev.IsWindowTerminatedEarly {
		b.WriteString(" early")
	}
	if len(ev.Records) > 0 || !ev.IsFinalInvokeForWindow {
		ids := make([]string, len(ev.Records))
		for i, r := range ev.Records {
			ids[i] = r.Kinesis.SequenceNumber
		}
		fmt.Fprintf(&b, " %v", ids)
	}
	b.WriteString(" {")
	for i, k := range slices.Sorted(maps.Keys(ev.State)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := ev.State[k]
		if len(v) > 100 {
			v = fmt.Sprintf("<%d bytes>", len(v))
		}
		b.WriteString(k + "=" + v)
	}
	b.WriteString("}")
	return b.String()
}

func newWindowed(t *testing.T, cfg Config, h stream.WindowHandler) *Windowed {
	t.Helper()
	cfg.Source = winSource
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Nanosecond
	}
	if cfg.MaxRetryBackoff == 0 {
		cfg.MaxRetryBackoff = time.Nanosecond
	}
	w, err := NewWindowed(cfg, time.Minute, h)
	if err != nil {
		t.Fatalf("NewWindowed: %v", err)
	}
	return w
}

func checkCalls(t *testing.T, f *fakeWindow, want []string) {
	t.Helper()
	if got := f.got(); !slices.Equal(got, want) {
		t.Errorf("calls:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func checkDone(t *testing.T, dl *doneLog, want ...string) {
	t.Helper()
	got := make([]string, len(dl.got))
	for i, p := range dl.got {
		got[i] = p.String()
	}
	if !slices.Equal(got, want) {
		t.Errorf("done = %v, want %v", got, want)
	}
}

// TestWindowedThreeWindows: records of three windows go in batches that
// never mix windows, each with the state the previous call returned; a
// record of a later window closes the open one with a final invoke, and
// only then is its last record done. The last window closes when the
// shard is idle past its end plus the grace; a late record after that
// counts in the next window.
func TestWindowedThreeWindows(t *testing.T) {
	f := &fakeWindow{}
	w := newWindowed(t, Config{BatchSize: 2, MaxRetryAttempts: -1}, f.handle)
	dl := &doneLog{t: t}
	all := wrecs(0, 10*time.Second, 59999*time.Millisecond, 60*time.Second, 61*time.Second, 125*time.Second, 130*time.Second)
	if err := w.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000 1001] {}",
		"15:04:00 [1002] {n=2 seqs=1000,1001}",
		"15:04:00 final {n=3 seqs=1000,1001,1002}",
		"15:05:00 [1003 1004] {}",
		"15:05:00 final {n=2 seqs=1003,1004}",
		"15:06:00 [1005 1006] {}",
	})
	checkDone(t, dl, "1002", "1004")
	if win, open := w.Open(); !open || win.String() != "2026-01-02T15:06:00Z/2026-01-02T15:07:00Z" {
		t.Errorf("Open() = %v, %v; want 15:06–15:07, true", win, open)
	}

	// The event's window fields.
	ev := f.events[2]
	if ev.ShardID != testShard || ev.EventSourceARN != winSource.StreamARN || ev.Records == nil || len(ev.Records) != 0 {
		t.Errorf("final event: shardId %q, eventSourceARN %q, records %#v", ev.ShardID, ev.EventSourceARN, ev.Records)
	}
	if got, want := window.Format(ev.Window.End.Time), "2026-01-02T15:05:00Z"; got != want {
		t.Errorf("window end = %s, want %s", got, want)
	}

	end := w0.Add(3 * time.Minute)
	for _, idle := range []struct {
		now      time.Time
		caughtUp bool
	}{
		{end.Add(-time.Second), true},                    // not ended
		{end.Add(window.Grace - time.Millisecond), true}, // within the grace
		{end.Add(time.Hour), false},                      // behind: a later record will close it
	} {
		if err := w.Idle(context.Background(), nil, idle.now, idle.caughtUp, dl.done); err != nil {
			t.Fatalf("Idle: %v", err)
		}
	}
	if got := len(f.got()); got != 6 {
		t.Fatalf("Idle before the end plus grace, or behind, made calls: %d, want 6", got)
	}
	if err := w.Idle(context.Background(), nil, end.Add(window.Grace), true, dl.done); err != nil {
		t.Fatalf("Idle: %v", err)
	}
	checkDone(t, dl, "1002", "1004", "1006")
	if _, open := w.Open(); open {
		t.Errorf("window still open after Idle closed it")
	}
	// Nothing open: Idle does nothing.
	if err := w.Idle(context.Background(), nil, end.Add(time.Hour), true, dl.done); err != nil {
		t.Fatalf("Idle: %v", err)
	}

	// A record of the closed window that shows up late counts in the next.
	late := stream.Record{ShardID: testShard, SequenceNumber: "1007", ApproximateArrivalTimestamp: end.Add(-time.Second)}
	if err := w.Deliver(context.Background(), nil, []stream.Record{late}, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := f.got()
	if want := []string{"15:06:00 final {n=2 seqs=1005,1006}", "15:07:00 [1007] {}"}; !slices.Equal(got[6:], want) {
		t.Errorf("calls after the idle close = %v, want %v", got[6:], want)
	}
	if s := w.Stats(); s.Batches != 8 || s.Handled != 8 || s.Records != 8 {
		t.Errorf("Stats = %+v, want 8 batches (final invokes included), 8 records, 8 handled", s)
	}
}

// TestWindowedEarlyTermination: a state over 1 MB ends the window early
// with that state; its records are done; the same window goes on with a
// fresh state.
func TestWindowedEarlyTermination(t *testing.T) {
	big := strings.Repeat("x", window.MaxStateBytes)
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if len(ev.Records) == 1 && ev.Records[0].Kinesis.SequenceNumber == "1001" {
			resp.State["pad"] = big
		}
		return resp, nil
	}}
	w := newWindowed(t, Config{BatchSize: 1, MaxRetryAttempts: -1}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, wrecs(0, time.Second, 2*time.Second, 61*time.Second), dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000] {}",
		"15:04:00 [1001] {n=1 seqs=1000}",
		fmt.Sprintf("15:04:00 final early {n=2 pad=<%d bytes> seqs=1000,1001}", len(big)),
		"15:04:00 [1002] {}",
		"15:04:00 final {n=1 seqs=1002}",
		"15:05:00 [1003] {}",
	})
	checkDone(t, dl, "1001", "1002")
}

// TestWindowedEarlyTerminationLastRecord: when the state grows too large
// with the window's last record, the early termination is its only final
// invoke.
func TestWindowedEarlyTerminationLastRecord(t *testing.T) {
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if i == 0 {
			resp.State["pad"] = strings.Repeat("x", window.MaxStateBytes)
		}
		return resp, nil
	}}
	w := newWindowed(t, Config{MaxRetryAttempts: -1}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, wrecs(0, 61*time.Second), dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000] {}",
		fmt.Sprintf("15:04:00 final early {n=1 pad=<%d bytes> seqs=1000}", window.MaxStateBytes),
		"15:05:00 [1001] {}",
	})
	checkDone(t, dl, "1000")
}

// TestWindowedMissingState: a response without state is a failed attempt,
// retried with the same records and state; a final invoke without state
// is retried too.
func TestWindowedMissingState(t *testing.T) {
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if i == 0 || i == 2 {
			ev.State["dirty"] = "the handler wrote to its input" // must not reach the retry
			return events.KinesisTimeWindowEventResponse{}, nil
		}
		return resp, nil
	}}
	w := newWindowed(t, Config{MaxRetryAttempts: -1}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, wrecs(0, time.Second), dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if err := w.ShardEnd(context.Background(), nil, dl.done); err != nil {
		t.Fatalf("ShardEnd: %v", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000 1001] {}",
		"15:04:00 [1000 1001] {}",
		"15:04:00 final {n=2 seqs=1000,1001}",
		"15:04:00 final {n=2 seqs=1000,1001}",
	})
	checkDone(t, dl, "1001")
	if s := w.Stats(); s.Batches != 4 || s.Failures != 2 || s.Retries != 2 {
		t.Errorf("Stats = %+v, want 4 batches, 2 failures, 2 retries", s)
	}
}

// TestWindowedMissingStateGivesUp: a response without state uses up the
// retry attempts like any failure.
func TestWindowedMissingStateGivesUp(t *testing.T) {
	f := &fakeWindow{answer: func(int, events.KinesisTimeWindowEvent, events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		return events.KinesisTimeWindowEventResponse{}, nil
	}}
	w := newWindowed(t, Config{MaxRetryAttempts: 1}, f.handle)
	dl := &doneLog{t: t}
	err := w.Deliver(context.Background(), nil, wrecs(0), dl.done)
	var gu *GiveUpError
	if !errors.As(err, &gu) || !errors.Is(err, window.ErrNoState) {
		t.Fatalf("Deliver error = %v, want a *GiveUpError wrapping window.ErrNoState", err)
	}
	checkDone(t, dl)
}

// TestWindowedPartialFailure: batchItemFailures resume at the lowest
// failed item, in order, with the state the partial call returned.
func TestWindowedPartialFailure(t *testing.T) {
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if i == 0 { // handled 1000 and 1001 only
			resp.State = map[string]string{"n": "2", "seqs": "1000,1001"}
			resp.BatchItemFailures = []events.KinesisBatchItemFailure{{ItemIdentifier: "1003"}, {ItemIdentifier: "1002"}}
		}
		return resp, nil
	}}
	w := newWindowed(t, Config{BatchSize: 10, MaxRetryAttempts: -1}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, wrecs(0, time.Second, 2*time.Second, 3*time.Second), dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	checkDone(t, dl) // nothing before the window closes
	if err := w.ShardEnd(context.Background(), nil, dl.done); err != nil {
		t.Fatalf("ShardEnd: %v", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000 1001 1002 1003] {}",
		"15:04:00 [1002 1003] {n=2 seqs=1000,1001}",
		"15:04:00 final {n=4 seqs=1000,1001,1002,1003}",
	})
	checkDone(t, dl, "1003")
}

// TestWindowedBisect: with bisect-on-error, each half carries the state
// the half before it returned.
func TestWindowedBisect(t *testing.T) {
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if i == 0 {
			return events.KinesisTimeWindowEventResponse{}, errors.New("boom")
		}
		return resp, nil
	}}
	w := newWindowed(t, Config{BatchSize: 10, MaxRetryAttempts: -1, BisectOnError: true}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, wrecs(0, time.Second, 2*time.Second, 3*time.Second), dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if err := w.ShardEnd(context.Background(), nil, dl.done); err != nil {
		t.Fatalf("ShardEnd: %v", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000 1001 1002 1003] {}",
		"15:04:00 [1000 1001] {}",
		"15:04:00 [1002 1003] {n=2 seqs=1000,1001}",
		"15:04:00 final {n=4 seqs=1000,1001,1002,1003}",
	})
	checkDone(t, dl, "1003")
}

// TestWindowedGiveUp: a record given up to the on-failure destination
// inside a window leaves the state as it was; the window goes on, and its
// last record, given up or not, is done when it closes. Without a
// destination the shard stops and nothing of the window is done.
func TestWindowedGiveUp(t *testing.T) {
	poison := func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if len(ev.Records) > 0 && ev.Records[0].Kinesis.SequenceNumber == "1001" {
			return events.KinesisTimeWindowEventResponse{}, errors.New("poison")
		}
		return resp, nil
	}
	t.Run("to the destination", func(t *testing.T) {
		f := &fakeWindow{answer: poison}
		dl := &doneLog{t: t}
		dest := &fakeDestination{dl: dl}
		w := newWindowed(t, Config{BatchSize: 1, MaxRetryAttempts: 0, OnFailure: dest}, f.handle)
		if err := w.Deliver(context.Background(), nil, wrecs(0, time.Second, 2*time.Second, 61*time.Second), dl.done); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		checkCalls(t, f, []string{
			"15:04:00 [1000] {}",
			"15:04:00 [1001] {n=1 seqs=1000}",
			"15:04:00 [1002] {n=1 seqs=1000}",
			"15:04:00 final {n=2 seqs=1000,1002}",
			"15:05:00 [1003] {}",
		})
		checkDone(t, dl, "1002")
		if len(dest.sent) != 1 || seqs(dest.sent[0].Records)[0] != "1001" || dest.doneThen[0] != 0 {
			t.Errorf("destination got %+v (done by then %v), want record 1001 before anything was done", dest.sent, dest.doneThen)
		}
		if s := w.Stats(); s.GivenUp != 1 {
			t.Errorf("Stats.GivenUp = %d, want 1", s.GivenUp)
		}
	})
	t.Run("a partial failure at the first item, given up, keeps the state", func(t *testing.T) {
		f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
			if len(ev.Records) > 0 && ev.Records[0].Kinesis.SequenceNumber == "1001" {
				resp.BatchItemFailures = []events.KinesisBatchItemFailure{{ItemIdentifier: "1001"}}
			}
			return resp, nil
		}}
		dl := &doneLog{t: t}
		w := newWindowed(t, Config{BatchSize: 1, MaxRetryAttempts: 0, OnFailure: &fakeDestination{dl: dl}}, f.handle)
		if err := w.Deliver(context.Background(), nil, wrecs(0, time.Second, 2*time.Second), dl.done); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if err := w.ShardEnd(context.Background(), nil, dl.done); err != nil {
			t.Fatalf("ShardEnd: %v", err)
		}
		checkCalls(t, f, []string{
			"15:04:00 [1000] {}",
			"15:04:00 [1001] {n=1 seqs=1000}",
			"15:04:00 [1002] {n=1 seqs=1000}",
			"15:04:00 final {n=2 seqs=1000,1002}",
		})
		checkDone(t, dl, "1002")
	})
	t.Run("no destination", func(t *testing.T) {
		f := &fakeWindow{answer: poison}
		dl := &doneLog{t: t}
		w := newWindowed(t, Config{BatchSize: 1, MaxRetryAttempts: 0}, f.handle)
		err := w.Deliver(context.Background(), nil, wrecs(0, time.Second, 2*time.Second, 61*time.Second), dl.done)
		var gu *GiveUpError
		if !errors.As(err, &gu) || gu.First.Seq != "1001" {
			t.Fatalf("Deliver error = %v, want a *GiveUpError at 1001", err)
		}
		checkDone(t, dl)
		if _, open := w.Open(); open {
			t.Errorf("window still open after the give-up: want it dropped, for the next reader to start again")
		}
	})
}

// TestWindowedFinalRetried: a final invoke that fails or is throttled is
// retried until it succeeds, never given up, whatever MaxRetryAttempts.
func TestWindowedFinalRetried(t *testing.T) {
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		switch i {
		case 1:
			return resp, errors.New("boom")
		case 2:
			return resp, fmt.Errorf("invoke: %w", stream.ErrThrottled)
		case 3:
			panic("final")
		}
		return resp, nil
	}}
	w := newWindowed(t, Config{MaxRetryAttempts: 0}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, wrecs(0, 61*time.Second), dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000] {}",
		"15:04:00 final {n=1 seqs=1000}",
		"15:04:00 final {n=1 seqs=1000}",
		"15:04:00 final {n=1 seqs=1000}",
		"15:04:00 final {n=1 seqs=1000}",
		"15:05:00 [1001] {}",
	})
	checkDone(t, dl, "1000")
	if s := w.Stats(); s.Failures != 2 || s.Throttles != 1 || s.Retries != 2 || s.GivenUp != 0 {
		t.Errorf("Stats = %+v, want 2 failures, 1 throttle, 2 retries, nothing given up", s)
	}
}

// TestWindowedStopDuringFinal: stopping while a final invoke is retried
// ends the wait; the window is left unfinished, nothing done.
func TestWindowedStopDuringFinal(t *testing.T) {
	stop := make(chan struct{})
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if !ev.IsFinalInvokeForWindow {
			return resp, nil
		}
		if i == 3 {
			close(stop)
		}
		return resp, errors.New("boom")
	}}
	w := newWindowed(t, Config{MaxRetryAttempts: -1}, f.handle)
	dl := &doneLog{t: t}
	err := w.Deliver(context.Background(), stop, wrecs(0, 61*time.Second), dl.done)
	if !errors.Is(err, ErrStopping) {
		t.Fatalf("Deliver error = %v, want ErrStopping", err)
	}
	if got := len(f.got()); got != 4 {
		t.Errorf("%d calls, want 4 (one batch, three final invokes)", got)
	}
	checkDone(t, dl)
	if _, open := w.Open(); open {
		t.Errorf("window still open after stopping")
	}
}

// TestWindowedStopDuringEarlyTermination: when the early termination
// cannot finish, nothing of the window is done and the rest of the batch
// is not handed to the handler.
func TestWindowedStopDuringEarlyTermination(t *testing.T) {
	stop := make(chan struct{})
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		switch {
		case ev.IsFinalInvokeForWindow:
			close(stop)
			return resp, errors.New("boom")
		case i == 0:
			resp.State["pad"] = strings.Repeat("x", window.MaxStateBytes)
		}
		return resp, nil
	}}
	// Bisect: the second half is called without a stop check in between.
	w := newWindowed(t, Config{BatchSize: 10, MaxRetryAttempts: -1, BisectOnError: true, HandlerTimeout: time.Minute}, f.handle)
	dl := &doneLog{t: t}
	w.d.cfg.Handler = func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if len(ev.Records) == 2 { // the whole batch: fail it, so that it is bisected
			return events.KinesisEventResponse{}, errors.New("bisect me")
		}
		return w.call(ctx, ev)
	}
	err := w.Deliver(context.Background(), stop, wrecs(0, time.Second), dl.done)
	if !errors.Is(err, ErrStopping) {
		t.Fatalf("Deliver error = %v, want ErrStopping", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000] {}",
		fmt.Sprintf("15:04:00 final early {n=1 pad=<%d bytes> seqs=1000}", window.MaxStateBytes),
	})
	checkDone(t, dl)
}

// TestWindowedDrain: a drain leaves the open window unfinished.
func TestWindowedDrain(t *testing.T) {
	f := &fakeWindow{}
	w := newWindowed(t, Config{MaxRetryAttempts: -1}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, wrecs(0), dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	stop := make(chan struct{})
	close(stop)
	if err := w.Deliver(context.Background(), stop, wrecs(0, 61*time.Second)[1:], dl.done); !errors.Is(err, ErrStopping) {
		t.Fatalf("Deliver after stop = %v, want ErrStopping", err)
	}
	if err := w.Idle(context.Background(), stop, w0.Add(time.Hour), true, dl.done); err != nil {
		t.Fatalf("Idle with no window: %v", err)
	}
	checkCalls(t, f, []string{"15:04:00 [1000] {}"})
	checkDone(t, dl)
}

// TestWindowedAbandonedCall: the state a timed-out call returns late is
// never taken.
func TestWindowedAbandonedCall(t *testing.T) {
	release, returned := make(chan struct{}), make(chan struct{})
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if i == 0 {
			<-release
			defer close(returned)
			resp.State = map[string]string{"late": "the abandoned call's state"}
		}
		return resp, nil
	}}
	w := newWindowed(t, Config{MaxRetryAttempts: -1, HandlerTimeout: 50 * time.Millisecond}, f.handle)
	dl := &doneLog{t: t}
	all := wrecs(0, time.Second)
	if err := w.Deliver(context.Background(), nil, all[:1], dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	close(release)
	<-returned
	if err := w.Deliver(context.Background(), nil, all[1:], dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if err := w.ShardEnd(context.Background(), nil, dl.done); err != nil {
		t.Fatalf("ShardEnd: %v", err)
	}
	checkCalls(t, f, []string{
		"15:04:00 [1000] {}",
		"15:04:00 [1000] {}",
		"15:04:00 [1001] {n=1 seqs=1000}",
		"15:04:00 final {n=2 seqs=1000,1001}",
	})
	checkDone(t, dl, "1001")
	if s := w.Stats(); s.Timeouts != 1 {
		t.Errorf("Stats.Timeouts = %d, want 1", s.Timeouts)
	}
}

// TestWindowedByteLimit: batches leave room for the window's fields and a
// state of up to 1 MB: no event passes MaxBatchBytes.
func TestWindowedByteLimit(t *testing.T) {
	reserve := invoke.WindowOverhead(winSource, strings.Repeat("x", maxShardIDLen), window.MaxStateBytes)
	if _, err := NewWindowed(Config{Source: winSource, MaxBatchBytes: reserve}, time.Minute, (&fakeWindow{}).handle); err == nil ||
		!strings.Contains(err.Error(), strconv.Itoa(reserve)) {
		t.Errorf("NewWindowed with MaxBatchBytes %d = %v, want an error naming it", reserve, err)
	}
	all := wrecs(0, time.Second, 2*time.Second, 3*time.Second, 4*time.Second)
	sizer := invoke.NewSizer(winSource)
	limit := reserve + invoke.EventSize(2, 2*sizer.Record(&all[0])) // two records a call
	var over []int
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		if b, _ := invoke.MarshalWindow(ev); len(b) > limit {
			over = append(over, len(b))
		}
		// A state of exactly the limit: carried on, as large as it gets.
		resp.State = map[string]string{"pad": ""}
		resp.State["pad"] = strings.Repeat("x", window.MaxStateBytes-window.StateSize(resp.State))
		return resp, nil
	}}
	w := newWindowed(t, Config{BatchSize: 100, MaxRetryAttempts: -1, MaxBatchBytes: limit}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := f.got()
	if len(got) != 3 || len(over) > 0 {
		t.Errorf("calls %v; events over the limit %d: %v", got, limit, over)
	}
}

// TestNewWindowed: the window length is checked.
func TestNewWindowed(t *testing.T) {
	h := (&fakeWindow{}).handle
	for _, size := range []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 901 * time.Second} {
		if _, err := NewWindowed(Config{}, size, h); err == nil {
			t.Errorf("NewWindowed(size %s) = nil error, want one", size)
		}
	}
	if _, err := NewWindowed(Config{}, time.Minute, nil); err == nil {
		t.Errorf("NewWindowed(nil handler) = nil error, want one")
	}
	if _, err := NewWindowed(Config{MaxBatchBytes: -1}, 900*time.Second, h); err != nil {
		t.Errorf("NewWindowed(no byte limit, 900s) = %v", err)
	}
}

// TestWindowedFailedCallsKeepNoState (issue 17): a call that fails its
// first record returns a state no one can use; retried many times, at
// most one answer is kept (a stuck shard used to keep each one: 360 MB an
// hour at 1 MB states).
func TestWindowedFailedCallsKeepNoState(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	var w *Windowed
	maxKept := 0
	f := &fakeWindow{answer: func(i int, ev events.KinesisTimeWindowEvent, resp events.KinesisTimeWindowEventResponse) (events.KinesisTimeWindowEventResponse, error) {
		w.mu.Lock()
		maxKept = max(maxKept, len(w.answers))
		w.mu.Unlock()
		resp.State = map[string]string{"big": big}
		if i < 50 && len(ev.Records) > 0 {
			resp.BatchItemFailures = []events.KinesisBatchItemFailure{{ItemIdentifier: ev.Records[0].Kinesis.SequenceNumber}}
		}
		return resp, nil
	}}
	w = newWindowed(t, Config{BatchSize: 10, MaxRetryAttempts: -1}, f.handle)
	dl := &doneLog{t: t}
	if err := w.Deliver(context.Background(), nil, wrecs(0, time.Second), dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if maxKept > 1 {
		t.Errorf("%d answers kept at once over 50 failed calls, want at most 1", maxKept)
	}
}
