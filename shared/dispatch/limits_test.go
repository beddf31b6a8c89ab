package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/stream"
)

// bigRecs returns n records of size bytes of data each.
func bigRecs(n, size int) []stream.Record {
	out := recs(n)
	for i := range out {
		out[i].Data = bytes.Repeat([]byte{byte('a' + i%26)}, size)
	}
	return out
}

// sizingHandler records the size of every event as invoke.Marshal writes
// it, and the records of each.
type sizingHandler struct {
	sizes []int
	calls [][]string
}

func (h *sizingHandler) handle(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	b, err := invoke.Marshal(ev)
	if err != nil {
		return events.KinesisEventResponse{}, err
	}
	h.sizes = append(h.sizes, len(b))
	var ids []string
	for _, r := range ev.Records {
		ids = append(ids, r.Kinesis.SequenceNumber)
	}
	h.calls = append(h.calls, ids)
	return events.KinesisEventResponse{}, nil
}

// TestDeliverMaxBatchBytes: 100 records of 80 KB (8.5 MB as JSON) with the
// default batch size used to make one event Lambda refuses (6 MB) forever;
// batches now end before MaxBatchBytes, each as full as it can be.
func TestDeliverMaxBatchBytes(t *testing.T) {
	src := stream.Source{StreamARN: "arn:aws:kinesis:us-east-2:123456789012:stream/s", Region: "us-east-2"}
	tests := []struct {
		name  string
		max   int // 0: the default
		batch int
		recs  []stream.Record
	}{
		{"100 records of 80 KB, the defaults", 0, 0, bigRecs(100, 80_000)},
		{"uneven records, a small limit", 4000, 100, func() []stream.Record {
			rs := recs(60)
			for i := range rs {
				rs[i].Data = bytes.Repeat([]byte("<&>"), (i*37)%300)
				rs[i].PartitionKey = fmt.Sprintf("key\u2028%d\x01é", i)
			}
			return rs
		}()},
		{"batch size still applies", 1 << 20, 7, recs(20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &sizingHandler{}
			d := newDispatcher(t, Config{Handler: h.handle, Source: src, MaxBatchBytes: tt.max, BatchSize: tt.batch, MaxRetryAttempts: 0})
			max, batch := tt.max, tt.batch
			if max == 0 {
				max = DefaultMaxBatchBytes
			}
			if batch == 0 {
				batch = 100
			}
			dl := &doneLog{t: t}
			if err := d.Deliver(context.Background(), nil, tt.recs, dl.done); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if got, want := slices.Concat(h.calls...), seqs(tt.recs); !slices.Equal(got, want) {
				t.Fatalf("the handler saw %d records, want all %d in order", len(got), len(want))
			}
			next := 0
			for i, size := range h.sizes {
				n := len(h.calls[i])
				next += n
				if size > max {
					t.Errorf("call %d: event of %d bytes, more than %d", i, size, max)
				}
				if next == len(tt.recs) || n == batch {
					continue
				}
				// Full: one record more would not have fit.
				ev := stream.Event(src, tt.recs[next-n:next+1])
				b, _ := invoke.Marshal(ev)
				if len(b) <= max {
					t.Errorf("call %d: %d records (%d bytes), but %d records make %d bytes, within %d", i, n, size, n+1, len(b), max)
				}
			}
			if len(h.sizes) < 2 {
				t.Errorf("%d calls, want the records split", len(h.sizes))
			}
			if got := d.Stats(); got.Handled != int64(len(tt.recs)) || got.Failures != 0 {
				t.Errorf("Stats = %+v, want %d handled and no failure", got, len(tt.recs))
			}
		})
	}
}

// TestDeliverRecordTooLarge: a record that makes an event larger than
// MaxBatchBytes on its own is never sent; it goes the give-up path.
func TestDeliverRecordTooLarge(t *testing.T) {
	all := recs(3)
	all[1].Data = bytes.Repeat([]byte("x"), 5000)
	for _, withDest := range []bool{false, true} {
		t.Run(fmt.Sprintf("destination=%v", withDest), func(t *testing.T) {
			h := &fakeHandler{}
			dl := &doneLog{t: t}
			cfg := Config{Handler: h.handle, MaxBatchBytes: 2000, MaxRetryAttempts: -1}
			var dest *fakeDestination
			if withDest {
				dest = &fakeDestination{dl: dl}
				cfg.OnFailure = dest
			}
			d := newDispatcher(t, cfg)
			err := d.Deliver(context.Background(), nil, all, dl.done)
			if !withDest {
				var ge *GiveUpError
				if !errors.As(err, &ge) {
					t.Fatalf("Deliver = %v, want a *GiveUpError", err)
				}
				if ge.Reason != ReasonTooLarge || ge.First != all[1].Position() || ge.Last != all[1].Position() || ge.Attempts != 0 {
					t.Errorf("GiveUpError = %+v, want record %v alone, reason %q, 0 attempts", ge, all[1].Position(), ReasonTooLarge)
				}
				if !errors.Is(err, stream.ErrTooLarge) {
					t.Errorf("Deliver = %v, want it to wrap stream.ErrTooLarge", err)
				}
				if want := [][]string{seqs(all[:1])}; !equalCalls(h.calls, want) {
					t.Errorf("calls = %v, want %v", h.calls, want)
				}
				if want := positions(all[0]); !slices.Equal(dl.got, want) {
					t.Errorf("done = %v, want %v", dl.got, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Deliver = %v, want nil", err)
			}
			if want := [][]string{seqs(all[:1]), seqs(all[2:])}; !equalCalls(h.calls, want) {
				t.Errorf("calls = %v, want %v (the large record never sent)", h.calls, want)
			}
			if len(dest.sent) != 1 || !slices.Equal(seqs(dest.sent[0].Records), seqs(all[1:2])) || dest.sent[0].Reason != ReasonTooLarge {
				t.Errorf("destination got %+v, want record %s with reason %q", dest.sent, all[1].SequenceNumber, ReasonTooLarge)
			}
			if want := positions(all...); !slices.Equal(dl.got, want) {
				t.Errorf("done = %v, want %v", dl.got, want)
			}
			if got := d.Stats(); got.Handled != 2 || got.GivenUp != 1 || got.Failures != 0 {
				t.Errorf("Stats = %+v, want 2 handled, 1 given up, no failure", got)
			}
		})
	}
}

// TestDeliverTooLargeSplits: when the handler's host refuses a batch as
// too large (stream.ErrTooLarge, Lambda's 413), the batch is split in two
// and each half sent, without using up an attempt; a single record it
// refuses is given up with that reason.
func TestDeliverTooLargeSplits(t *testing.T) {
	all := recs(5)
	all[4].Data = bytes.Repeat([]byte("x"), 100) // refused even alone
	refuse := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		size := 0
		for _, r := range ev.Records {
			size += len(r.Kinesis.Data)
		}
		if len(ev.Records) > 2 || size > 50 {
			return events.KinesisEventResponse{}, fmt.Errorf("invoke fn: %w: status 413", stream.ErrTooLarge)
		}
		return events.KinesisEventResponse{}, nil
	}
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){refuse}}
	dl := &doneLog{t: t}
	dest := &fakeDestination{dl: dl}
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: 0, OnFailure: dest})
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver = %v, want nil", err)
	}
	want := [][]string{
		seqs(all),      // refused: split 2 + 3
		seqs(all[:2]),  // ok
		seqs(all[2:]),  // refused: split 1 + 2
		seqs(all[2:3]), // ok
		seqs(all[3:]),  // refused (size): split 1 + 1
		seqs(all[3:4]), // ok
		seqs(all[4:]),  // refused alone: given up
	}
	if !equalCalls(h.calls, want) {
		t.Errorf("calls = %v, want %v", h.calls, want)
	}
	if len(dest.sent) != 1 || dest.sent[0].Reason != ReasonTooLarge || dest.sent[0].Attempts != 0 {
		t.Errorf("destination got %+v, want the last record, reason %q, 0 attempts", dest.sent, ReasonTooLarge)
	}
	if got, want := dl.got, positions(all[1], all[2], all[3], all[4]); !slices.Equal(got, want) {
		t.Errorf("done = %v, want %v", got, want)
	}
	if got, want := counts(d.Stats()), (Stats{Batches: 7, Records: 15, Handled: 4, GivenUp: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// logRecorder keeps every log record's message and attributes.
type logRecorder struct {
	mu   sync.Mutex
	recs []map[string]any
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]any{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, m)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) with(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.recs {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestDeliverThrottled: a throttled call (stream.ErrThrottled, Lambda's
// 429) is retried with a capped back-off; it uses up no retry attempt and
// never bisects the batch.
func TestDeliverThrottled(t *testing.T) {
	throttled := fail(fmt.Errorf("invoke fn: %w: TooManyRequestsException", stream.ErrThrottled))
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
		throttled, throttled, throttled, throttled, throttled, ok(),
	}}
	logs := &logRecorder{}
	all := recs(4)
	dl := &doneLog{t: t}
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: 0, BisectOnError: true,
		RetryBackoff: time.Millisecond, MaxRetryBackoff: 4 * time.Millisecond, Logger: slog.New(logs)})
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver = %v, want nil", err)
	}
	if want := slices.Repeat([][]string{seqs(all)}, 6); !equalCalls(h.calls, want) {
		t.Errorf("calls = %v, want the whole batch 6 times (no bisecting)", h.calls)
	}
	if got, want := counts(d.Stats()), (Stats{Batches: 6, Records: 24, Handled: 4, Throttles: 5}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	var waits []time.Duration
	for _, m := range logs.with("handler throttled; retrying") {
		waits = append(waits, m["wait"].(time.Duration))
	}
	ms := time.Millisecond
	if want := []time.Duration{ms, 2 * ms, 4 * ms, 4 * ms, 4 * ms}; !slices.Equal(waits, want) {
		t.Errorf("throttle back-offs = %v, want %v", waits, want)
	}
}

// TestDeliverThrottledTooOld: throttled records still expire at
// MaxRecordAge, as on Lambda.
func TestDeliverThrottledTooOld(t *testing.T) {
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
		fail(fmt.Errorf("%w", stream.ErrThrottled)),
	}}
	dl := &doneLog{t: t}
	dest := &fakeDestination{dl: dl}
	nows := 0
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: -1, MaxRecordAge: time.Minute, OnFailure: dest,
		Now: func() time.Time {
			if nows++; nows == 1 { // the check before the first call
				return t0
			}
			return t0.Add(time.Hour)
		}})
	if err := d.Deliver(context.Background(), nil, recs(2), dl.done); err != nil {
		t.Fatalf("Deliver = %v, want nil", err)
	}
	if len(dest.sent) != 1 || dest.sent[0].Reason != ReasonRecordAge || dest.sent[0].Attempts != 0 {
		t.Errorf("destination got %+v, want both records, reason %q, 0 attempts", dest.sent, ReasonRecordAge)
	}
	if got := d.Stats(); got.Throttles != 1 || got.Failures != 0 || got.GivenUp != 2 {
		t.Errorf("Stats = %+v, want 1 throttle, no failure, 2 given up", got)
	}
}

// TestStatsCounts: Records counts every record handed over (retries
// again), Handled each record the handler finished with once, GivenUp
// each record sent to the destination.
func TestStatsCounts(t *testing.T) {
	all := recs(6)
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
		partial("1002"),       // 0, 1 handled; 2..5 again
		fail(errors.New("x")), // 2..5 fail
		partial("1004"),       // 2, 3 handled; 4, 5 again
		fail(errors.New("x")), // 4, 5 given up (attempts exhausted)
	}}
	dl := &doneLog{t: t}
	dest := &fakeDestination{dl: dl}
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: 3, OnFailure: dest})
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	want := Stats{Batches: 4, Records: 6 + 4 + 4 + 2, Handled: 4, Failures: 4, Retries: 3, GivenUp: 2}
	if got := counts(d.Stats()); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// TestDeliverKeepsNothing: once Deliver returns, nothing of the batches it
// delivered stays reachable from the dispatcher, not even after a call it
// abandoned at its deadline has returned.
func TestDeliverKeepsNothing(t *testing.T) {
	release := make(chan struct{})
	returned := make(chan struct{})
	var called atomic.Bool
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if !called.Swap(true) { // the first call hangs past its deadline
			defer close(returned)
			<-release
		}
		return events.KinesisEventResponse{}, nil
	}
	dest := &fakeDestination{dl: &doneLog{t: t}}
	d := newDispatcher(t, Config{Handler: h, HandlerTimeout: 20 * time.Millisecond, MaxRetryAttempts: -1,
		MaxBatchBytes: 3000, OnFailure: dest})
	data := func() []weak.Pointer[byte] {
		rs := bigRecs(6, 1000)
		rs[3].Data = bytes.Repeat([]byte("y"), 4000) // too large: to the destination
		var ptrs []weak.Pointer[byte]
		for i := range rs {
			ptrs = append(ptrs, weak.Make(&rs[i].Data[0]))
		}
		dl := &doneLog{t: t}
		if err := deliverWithin(t, d, context.Background(), rs, dl); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		return ptrs
	}()
	dest.sent = nil // the destination is the test's, not the dispatcher's
	close(release)
	<-returned
	reachable := func() []int {
		var out []int
		for i, p := range data {
			if p.Value() != nil {
				out = append(out, i)
			}
		}
		return out
	}
	// The abandoned goroutine may still be unwinding: collect until it is
	// gone, within a deadline.
	for deadline := time.Now().Add(time.Second); len(reachable()) > 0 && time.Now().Before(deadline); {
		runtime.GC()
	}
	if left := reachable(); len(left) > 0 {
		t.Errorf("the data of records %v is still reachable after Deliver returned", left)
	}
	runtime.KeepAlive(d)
}

// TestDeliverOversizeAlone: for an in-process handler (no request limit)
// a record larger than MaxBatchBytes is delivered in a batch of its own,
// not given up; the byte limit still splits the others.
func TestDeliverOversizeAlone(t *testing.T) {
	all := recs(3)
	all[1].Data = bytes.Repeat([]byte("x"), 5000)
	h := &fakeHandler{}
	dl := &doneLog{t: t}
	d := newDispatcher(t, Config{Handler: h.handle, MaxBatchBytes: 2000, MaxRetryAttempts: -1, OversizeAlone: true})
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver = %v, want nil", err)
	}
	if want := [][]string{seqs(all[:1]), seqs(all[1:2]), seqs(all[2:])}; !equalCalls(h.calls, want) {
		t.Errorf("calls = %v, want %v (the large record alone)", h.calls, want)
	}
	if d.Stats().GivenUp != 0 || d.Stats().Handled != 3 {
		t.Errorf("stats %+v, want 3 handled, none given up", d.Stats())
	}
}
