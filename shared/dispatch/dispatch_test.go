package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/stream"
)

const testShard = "shardId-000000000006"

var t0 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// recs returns n plain records with sequence numbers 1000, 1001, ….
func recs(n int) []stream.Record {
	out := make([]stream.Record, n)
	for i := range out {
		out[i] = stream.Record{
			ShardID:                     testShard,
			SequenceNumber:              fmt.Sprint(1000 + i),
			PartitionKey:                fmt.Sprintf("pk-%d", i),
			Data:                        []byte(fmt.Sprintf("data-%d", i)),
			ApproximateArrivalTimestamp: t0,
		}
	}
	return out
}

// aggregated returns user records: seq 2000 subs 0..2, then seq 2001 subs 0..1.
func aggregated() []stream.Record {
	var out []stream.Record
	for _, a := range []struct {
		seq  string
		subs int
	}{{"2000", 3}, {"2001", 2}} {
		for s := range a.subs {
			out = append(out, stream.Record{ShardID: testShard, SequenceNumber: a.seq, SubSequenceNumber: int64(s), Aggregated: true})
		}
	}
	return out
}

func failures(ids ...string) events.KinesisEventResponse {
	var resp events.KinesisEventResponse
	for _, id := range ids {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: id})
	}
	return resp
}

func TestFailedIndex(t *testing.T) {
	plain := recs(5)
	agg := aggregated()
	tests := []struct {
		name  string
		batch []stream.Record
		resp  events.KinesisEventResponse
		want  int
	}{
		{"none", plain, events.KinesisEventResponse{}, -1},
		{"empty list", plain, events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}, -1},
		{"one", plain, failures("1002"), 2},
		{"first", plain, failures("1000"), 0},
		{"lowest of several", plain, failures("1004", "1001", "1003"), 1},
		{"unknown id fails the whole batch", plain, failures("1003", "9999"), 0},
		{"empty id fails the whole batch", plain, failures("1003", ""), 0},
		{"seq:sub", agg, failures("2000:2"), 2},
		{"seq:sub of the second aggregate", agg, failures("2001:1"), 4},
		{"bare seq names the aggregate's first user record", agg, failures("2001"), 3},
		{"bare seq and seq:sub, lowest wins", agg, failures("2001", "2000:1"), 1},
		{"seq:sub past the aggregate is unknown", agg, failures("2000:3"), 0},
		{"seq:sub on a plain record is unknown", plain, failures("1002:0"), 0},
		{"eventID instead of item id is unknown", plain, failures(testShard + ":1002"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FailedIndex(tt.batch, tt.resp); got != tt.want {
				t.Errorf("FailedIndex = %d, want %d", got, tt.want)
			}
		})
	}
}

// fakeHandler answers each call with the next scripted answer (the last
// one repeats) and records the sequence numbers of every batch it saw.
type fakeHandler struct {
	answers []func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error)
	calls   [][]string
	ctxs    []context.Context
}

func (f *fakeHandler) handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var ids []string
	for _, r := range ev.Records {
		id := r.Kinesis.SequenceNumber
		if parts := strings.Split(r.EventID, ":"); len(parts) == 3 {
			id += ":" + parts[2]
		}
		ids = append(ids, id)
	}
	f.calls = append(f.calls, ids)
	f.ctxs = append(f.ctxs, ctx)
	if len(f.answers) == 0 {
		return events.KinesisEventResponse{}, nil
	}
	a := f.answers[min(len(f.calls), len(f.answers))-1]
	return a(ctx, ev)
}

func ok() func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
	return func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}
}

func fail(err error) func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
	return func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, err
	}
}

func partial(ids ...string) func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
	return func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return failures(ids...), nil
	}
}

// doneLog records done positions and checks that they increase.
type doneLog struct {
	t   *testing.T
	got []stream.Position
}

func (d *doneLog) done(p stream.Position) {
	d.t.Helper()
	if n := len(d.got); n > 0 && !p.After(d.got[n-1]) {
		d.t.Errorf("done(%v) after done(%v): want increasing positions", p, d.got[n-1])
	}
	d.got = append(d.got, p)
}

func seqs(rs []stream.Record) []string {
	out := make([]string, len(rs))
	for i := range rs {
		out[i] = rs[i].ItemIdentifier()
	}
	return out
}

func positions(rs ...stream.Record) []stream.Position {
	out := make([]stream.Position, len(rs))
	for i := range rs {
		out[i] = rs[i].Position()
	}
	return out
}

func newDispatcher(t *testing.T, cfg Config) *Dispatcher {
	t.Helper()
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Nanosecond
	}
	if cfg.MaxRetryBackoff == 0 {
		cfg.MaxRetryBackoff = time.Nanosecond
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func equalCalls(got, want [][]string) bool {
	return slices.EqualFunc(got, want, func(a, b []string) bool { return slices.Equal(a, b) })
}

func TestNew(t *testing.T) {
	h := func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no handler", Config{}, "handler"},
		{"batch size too big", Config{Handler: h, BatchSize: 10001}, "batch-size 10001"},
		{"batch size negative", Config{Handler: h, BatchSize: -1}, "batch-size -1"},
		{"handler timeout negative", Config{Handler: h, HandlerTimeout: -time.Second}, "handler-timeout -1s"},
		{"defaults", Config{Handler: h}, ""},
		{"largest batch", Config{Handler: h, BatchSize: 10000}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("New: %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("New error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDeliverBatches(t *testing.T) {
	all := recs(250)
	h := &fakeHandler{}
	d := newDispatcher(t, Config{Handler: h.handle, BatchSize: 100})
	dl := &doneLog{t: t}
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	want := [][]string{seqs(all[:100]), seqs(all[100:200]), seqs(all[200:])}
	if !equalCalls(h.calls, want) {
		t.Errorf("handler saw %d batches of sizes %v, want sizes 100, 100, 50 in order", len(h.calls), lens(h.calls))
	}
	if got, want := dl.got, positions(all[99], all[199], all[249]); !slices.Equal(got, want) {
		t.Errorf("done = %v, want %v", got, want)
	}
	if got, want := counts(d.Stats()), (Stats{Batches: 3, Records: 250, Handled: 250}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func lens(calls [][]string) []int {
	out := make([]int, len(calls))
	for i, c := range calls {
		out[i] = len(c)
	}
	return out
}

func TestDeliverEmpty(t *testing.T) {
	h := &fakeHandler{}
	d := newDispatcher(t, Config{Handler: h.handle})
	dl := &doneLog{t: t}
	if err := d.Deliver(context.Background(), nil, nil, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(h.calls) != 0 || len(dl.got) != 0 {
		t.Errorf("calls = %v, done = %v; want none", h.calls, dl.got)
	}
}

func TestDeliverRetries(t *testing.T) {
	errBoom := errors.New("boom")
	five := recs(5)
	agg := aggregated()
	tests := []struct {
		name      string
		recs      []stream.Record
		answers   []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error)
		wantCalls [][]string
		wantDone  []stream.Position
	}{
		{
			name:      "partial failure resumes at the failed item",
			recs:      five,
			answers:   []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){partial("1002"), ok()},
			wantCalls: [][]string{seqs(five), seqs(five[2:])},
			wantDone:  positions(five[1], five[4]),
		},
		{
			name:      "partial failure at the first item reports nothing done",
			recs:      five,
			answers:   []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){partial("1000", "1003"), ok()},
			wantCalls: [][]string{seqs(five), seqs(five)},
			wantDone:  positions(five[4]),
		},
		{
			name:      "partial failures twice",
			recs:      five,
			answers:   []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){partial("1004", "1001"), partial("1003"), ok()},
			wantCalls: [][]string{seqs(five), seqs(five[1:]), seqs(five[3:])},
			wantDone:  positions(five[0], five[2], five[4]),
		},
		{
			name:      "partial failure inside an aggregate",
			recs:      agg,
			answers:   []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){partial("2000:2"), ok()},
			wantCalls: [][]string{seqs(agg), seqs(agg[2:])},
			wantDone:  positions(agg[1], agg[4]),
		},
		{
			name:      "bare sequence number of an aggregate resumes at its first user record",
			recs:      agg,
			answers:   []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){partial("2001"), ok()},
			wantCalls: [][]string{seqs(agg), seqs(agg[3:])},
			wantDone:  positions(agg[2], agg[4]),
		},
		{
			name:      "unknown item id retries the whole batch",
			recs:      five,
			answers:   []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){partial("1003", "nope"), ok()},
			wantCalls: [][]string{seqs(five), seqs(five)},
			wantDone:  positions(five[4]),
		},
		{
			name:      "handler error retries the whole batch",
			recs:      five,
			answers:   []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){fail(errBoom), fail(errBoom), ok()},
			wantCalls: [][]string{seqs(five), seqs(five), seqs(five)},
			wantDone:  positions(five[4]),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fakeHandler{answers: tt.answers}
			d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: -1})
			dl := &doneLog{t: t}
			if err := d.Deliver(context.Background(), nil, tt.recs, dl.done); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if !equalCalls(h.calls, tt.wantCalls) {
				t.Errorf("handler calls = %v, want %v", h.calls, tt.wantCalls)
			}
			if !slices.Equal(dl.got, tt.wantDone) {
				t.Errorf("done = %v, want %v", dl.got, tt.wantDone)
			}
		})
	}
}

// fakeDestination records what it is sent, and what was done by then.
type fakeDestination struct {
	dl       *doneLog
	sent     []Failure
	doneThen []int // len(dl.got) at each Send
	err      error
}

func (f *fakeDestination) Send(_ context.Context, fl Failure) error {
	f.sent = append(f.sent, fl)
	f.doneThen = append(f.doneThen, len(f.dl.got))
	return f.err
}

func TestDeliverGiveUp(t *testing.T) {
	errBoom := errors.New("boom")
	five := recs(5)
	tests := []struct {
		name        string
		cfg         Config
		answer      func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error)
		now         time.Time
		wantCalls   int
		wantFirst   int // index of the first record given up
		wantReason  string
		wantAtts    int
		wantLastErr string
	}{
		{
			name:        "retry attempts exhausted",
			cfg:         Config{MaxRetryAttempts: 2},
			answer:      fail(errBoom),
			now:         t0,
			wantCalls:   3,
			wantFirst:   0,
			wantReason:  "retry attempts exhausted",
			wantAtts:    3,
			wantLastErr: "boom",
		},
		{
			name:       "no retries",
			cfg:        Config{MaxRetryAttempts: 0},
			answer:     fail(errBoom),
			now:        t0,
			wantCalls:  1,
			wantReason: "retry attempts exhausted", wantAtts: 1, wantLastErr: "boom",
		},
		{
			name:       "retry attempts exhausted after a partial failure",
			cfg:        Config{MaxRetryAttempts: 1},
			answer:     partial("1002"),
			now:        t0,
			wantCalls:  2,
			wantFirst:  2,
			wantReason: "retry attempts exhausted", wantAtts: 2,
		},
		{
			// Checked before every call: records already too old are
			// given up without a call.
			name:       "record age exceeded",
			cfg:        Config{MaxRetryAttempts: -1, MaxRecordAge: time.Minute},
			answer:     fail(errBoom),
			now:        t0.Add(time.Minute + time.Millisecond),
			wantCalls:  0,
			wantReason: "record age exceeded", wantAtts: 0,
		},
	}
	for _, tt := range tests {
		for _, withDest := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/destination=%v", tt.name, withDest), func(t *testing.T) {
				h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){tt.answer}}
				dl := &doneLog{t: t}
				cfg := tt.cfg
				cfg.Handler = h.handle
				cfg.Now = func() time.Time { return tt.now }
				var dest *fakeDestination
				if withDest {
					dest = &fakeDestination{dl: dl}
					cfg.OnFailure = dest
				}
				d := newDispatcher(t, cfg)
				err := d.Deliver(context.Background(), nil, five, dl.done)
				if got := len(h.calls); got != tt.wantCalls {
					t.Errorf("handler called %d times, want %d", got, tt.wantCalls)
				}
				// Records before the failed one were handled, once each.
				if got, want := d.Stats().Handled, int64(tt.wantFirst); got != want {
					t.Errorf("Stats.Handled = %d, want %d", got, want)
				}
				var before []stream.Position
				if tt.wantFirst > 0 {
					before = positions(five[tt.wantFirst-1])
				}
				if !withDest {
					var ge *GiveUpError
					if !errors.As(err, &ge) {
						t.Fatalf("Deliver = %v, want a *GiveUpError", err)
					}
					if got, want := ge.First, five[tt.wantFirst].Position(); got != want {
						t.Errorf("GiveUpError.First = %v, want %v", got, want)
					}
					if got, want := ge.Last, five[4].Position(); got != want {
						t.Errorf("GiveUpError.Last = %v, want %v", got, want)
					}
					if got, want := ge.ShardID, testShard; got != want {
						t.Errorf("GiveUpError.ShardID = %q, want %q", got, want)
					}
					if got, want := ge.Attempts, tt.wantAtts; got != want {
						t.Errorf("GiveUpError.Attempts = %d, want %d", got, want)
					}
					if got, want := ge.Reason, tt.wantReason; got != want {
						t.Errorf("GiveUpError.Reason = %q, want %q", got, want)
					}
					if tt.wantLastErr != "" && !errors.Is(err, errBoom) {
						t.Errorf("errors.Is(%v, errBoom) = false, want true", err)
					}
					if !strings.Contains(err.Error(), testShard) {
						t.Errorf("error %q does not name the shard", err)
					}
					// done never passes a record that was not handled.
					if !slices.Equal(dl.got, before) {
						t.Errorf("done = %v, want %v", dl.got, before)
					}
					return
				}
				if err != nil {
					t.Fatalf("Deliver = %v, want nil", err)
				}
				if len(dest.sent) != 1 {
					t.Fatalf("destination got %d failures, want 1", len(dest.sent))
				}
				f := dest.sent[0]
				if got, want := seqs(f.Records), seqs(five[tt.wantFirst:]); !slices.Equal(got, want) {
					t.Errorf("sent records %v, want %v", got, want)
				}
				if f.ShardID != testShard || f.Reason != tt.wantReason || f.Attempts != tt.wantAtts ||
					f.LastError != tt.wantLastErr || !f.Time.Equal(tt.now) {
					t.Errorf("sent %+v, want shard %s reason %q attempts %d lastError %q time %v",
						f, testShard, tt.wantReason, tt.wantAtts, tt.wantLastErr, tt.now)
				}
				if got, want := dest.doneThen[0], len(before); got != want {
					t.Errorf("done called %d times before Send, want %d (Send comes before done)", got, want)
				}
				if got, want := dl.got, append(before, five[4].Position()); !slices.Equal(got, want) {
					t.Errorf("done = %v, want %v", got, want)
				}
				if got, want := d.Stats().GivenUp, int64(5-tt.wantFirst); got != want {
					t.Errorf("Stats.GivenUp = %d, want %d", got, want)
				}
			})
		}
	}
}

func TestDeliverDestinationFails(t *testing.T) {
	errStore := errors.New("disk full")
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){fail(errors.New("boom"))}}
	dl := &doneLog{t: t}
	dest := &fakeDestination{dl: dl, err: errStore}
	d := newDispatcher(t, Config{Handler: h.handle, OnFailure: dest})
	err := d.Deliver(context.Background(), nil, recs(3), dl.done)
	if !errors.Is(err, errStore) {
		t.Errorf("Deliver = %v, want it to wrap %v", err, errStore)
	}
	if len(dl.got) != 0 {
		t.Errorf("done = %v after a failed Send, want none", dl.got)
	}
}

func TestDeliverRecordAgeNotReached(t *testing.T) {
	errBoom := errors.New("boom")
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){fail(errBoom), fail(errBoom), ok()}}
	dl := &doneLog{t: t}
	all := recs(3)
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: -1, MaxRecordAge: time.Minute,
		Now: func() time.Time { return t0.Add(time.Minute) }}) // exactly the age: not older
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got, want := len(h.calls), 3; got != want {
		t.Errorf("handler called %d times, want %d", got, want)
	}
	if got, want := dl.got, positions(all[2]); !slices.Equal(got, want) {
		t.Errorf("done = %v, want %v", got, want)
	}
	if got, want := counts(d.Stats()), (Stats{Batches: 3, Records: 9, Handled: 3, Failures: 2, Retries: 2}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestDeliverBisect(t *testing.T) {
	all := recs(4)
	poison := all[2].SequenceNumber
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
		func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			for _, r := range ev.Records {
				if r.Kinesis.SequenceNumber == poison {
					return events.KinesisEventResponse{}, errors.New("poison")
				}
			}
			return events.KinesisEventResponse{}, nil
		},
	}}
	dl := &doneLog{t: t}
	dest := &fakeDestination{dl: dl}
	d := newDispatcher(t, Config{Handler: h.handle, BisectOnError: true, MaxRetryAttempts: 1, OnFailure: dest})
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	wantCalls := [][]string{
		seqs(all),      // fails: split
		seqs(all[:2]),  // ok
		seqs(all[2:]),  // fails: split
		seqs(all[2:3]), // fails: one record, retried
		seqs(all[2:3]), // fails: given up
		seqs(all[3:]),  // ok
	}
	if !equalCalls(h.calls, wantCalls) {
		t.Errorf("handler calls = %v, want %v", h.calls, wantCalls)
	}
	if len(dest.sent) != 1 || !slices.Equal(seqs(dest.sent[0].Records), seqs(all[2:3])) {
		t.Errorf("destination got %+v, want only record %s", dest.sent, poison)
	}
	if got, want := dl.got, positions(all[1], all[2], all[3]); !slices.Equal(got, want) {
		t.Errorf("done = %v, want %v", got, want)
	}
}

func TestDeliverBisectWithoutDestinationStops(t *testing.T) {
	all := recs(4)
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
		func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			for _, r := range ev.Records {
				if r.Kinesis.SequenceNumber == all[2].SequenceNumber {
					return events.KinesisEventResponse{}, errors.New("poison")
				}
			}
			return events.KinesisEventResponse{}, nil
		},
	}}
	dl := &doneLog{t: t}
	d := newDispatcher(t, Config{Handler: h.handle, BisectOnError: true, MaxRetryAttempts: 0})
	err := d.Deliver(context.Background(), nil, all, dl.done)
	var ge *GiveUpError
	if !errors.As(err, &ge) {
		t.Fatalf("Deliver = %v, want a *GiveUpError", err)
	}
	for _, p := range dl.got {
		if !all[2].Position().After(p) {
			t.Errorf("done(%v) passes the failed record %v", p, all[2].Position())
		}
	}
}

func TestDeliverStop(t *testing.T) {
	t.Run("closed before", func(t *testing.T) {
		h := &fakeHandler{}
		d := newDispatcher(t, Config{Handler: h.handle})
		stop := make(chan struct{})
		close(stop)
		dl := &doneLog{t: t}
		if err := d.Deliver(context.Background(), stop, recs(3), dl.done); !errors.Is(err, ErrStopping) {
			t.Errorf("Deliver = %v, want ErrStopping", err)
		}
		if len(h.calls) != 0 || len(dl.got) != 0 {
			t.Errorf("calls = %v, done = %v; want none", h.calls, dl.got)
		}
	})
	t.Run("closed between batches", func(t *testing.T) {
		stop := make(chan struct{})
		h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
			func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
				close(stop)
				return events.KinesisEventResponse{}, nil
			},
			ok(),
		}}
		all := recs(4)
		d := newDispatcher(t, Config{Handler: h.handle, BatchSize: 2})
		dl := &doneLog{t: t}
		if err := d.Deliver(context.Background(), stop, all, dl.done); !errors.Is(err, ErrStopping) {
			t.Errorf("Deliver = %v, want ErrStopping", err)
		}
		if got, want := len(h.calls), 1; got != want {
			t.Errorf("handler called %d times, want %d", got, want)
		}
		if got, want := dl.got, positions(all[1]); !slices.Equal(got, want) {
			t.Errorf("done = %v, want %v", got, want)
		}
	})
	t.Run("closed during back-off", func(t *testing.T) {
		stop := make(chan struct{})
		h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
			func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
				close(stop)
				return events.KinesisEventResponse{}, errors.New("boom")
			},
			ok(),
		}}
		// A back-off of an hour: only stop can end it.
		d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: -1, RetryBackoff: time.Hour, MaxRetryBackoff: time.Hour})
		dl := &doneLog{t: t}
		if err := d.Deliver(context.Background(), stop, recs(3), dl.done); !errors.Is(err, ErrStopping) {
			t.Errorf("Deliver = %v, want ErrStopping", err)
		}
		if got, want := len(h.calls), 1; got != want {
			t.Errorf("handler called %d times, want %d", got, want)
		}
		if len(dl.got) != 0 {
			t.Errorf("done = %v, want none", dl.got)
		}
	})
}

func TestDeliverContextCancelled(t *testing.T) {
	cause := errors.New("lease lost")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
		func(ctx context.Context, _ events.KinesisEvent) (events.KinesisEventResponse, error) {
			cancel(cause)
			return events.KinesisEventResponse{}, context.Cause(ctx)
		},
	}}
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: -1})
	dl := &doneLog{t: t}
	if err := d.Deliver(ctx, nil, recs(3), dl.done); !errors.Is(err, cause) {
		t.Errorf("Deliver = %v, want %v", err, cause)
	}
	if got, want := len(h.calls), 1; got != want {
		t.Errorf("handler called %d times, want %d", got, want)
	}
	if len(dl.got) != 0 {
		t.Errorf("done = %v, want none", dl.got)
	}
}

type ctxKey struct{}

func TestDeliverHandlerContext(t *testing.T) {
	const arn = "arn:aws:lambda:us-east-2:123456789012:function:fn"
	src := stream.Source{StreamARN: "arn:aws:kinesis:us-east-2:123456789012:stream/s", Region: "us-east-2"}
	var events0 []events.KinesisEvent
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
		func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			events0 = append(events0, ev)
			return events.KinesisEventResponse{}, nil
		},
	}}
	d := newDispatcher(t, Config{Handler: h.handle, FunctionARN: arn, Source: src, BatchSize: 1})
	ctx := context.WithValue(context.Background(), ctxKey{}, "parent")
	if err := d.Deliver(ctx, nil, recs(2), func(stream.Position) {}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got, want := len(h.ctxs), 2; got != want {
		t.Fatalf("handler called %d times, want %d", got, want)
	}
	ids := map[string]bool{}
	for i, hctx := range h.ctxs {
		lc, ok := lambdacontext.FromContext(hctx)
		if !ok {
			t.Fatalf("call %d: context has no lambdacontext.LambdaContext", i)
		}
		if got, want := lc.InvokedFunctionArn, arn; got != want {
			t.Errorf("call %d: InvokedFunctionArn = %q, want %q", i, got, want)
		}
		if lc.AwsRequestID == "" || ids[lc.AwsRequestID] {
			t.Errorf("call %d: AwsRequestID = %q, want a new non-empty id", i, lc.AwsRequestID)
		}
		ids[lc.AwsRequestID] = true
		if got, want := hctx.Value(ctxKey{}), "parent"; got != want {
			t.Errorf("call %d: context value = %v, want %v (derived from Deliver's ctx)", i, got, want)
		}
	}
	for i, ev := range events0 {
		r := ev.Records[0]
		if r.EventSourceArn != src.StreamARN || r.AwsRegion != src.Region || r.EventSource != "aws:kinesis" {
			t.Errorf("event %d: source %q region %q eventSource %q, want %q %q %q",
				i, r.EventSourceArn, r.AwsRegion, r.EventSource, src.StreamARN, src.Region, "aws:kinesis")
		}
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		base time.Duration
		n    int
		max  time.Duration
		want time.Duration
	}{
		{100 * time.Millisecond, 0, 10 * time.Second, 100 * time.Millisecond},
		{100 * time.Millisecond, 1, 10 * time.Second, 200 * time.Millisecond},
		{100 * time.Millisecond, 3, 10 * time.Second, 800 * time.Millisecond},
		{100 * time.Millisecond, 10, 10 * time.Second, 10 * time.Second},
		{100 * time.Millisecond, 1000, 10 * time.Second, 10 * time.Second},
		{20 * time.Second, 0, 10 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := backoff(tt.base, tt.n, tt.max); got != tt.want {
			t.Errorf("backoff(%v, %d, %v) = %v, want %v", tt.base, tt.n, tt.max, got, tt.want)
		}
	}
}

// TestDeliverAgePassesWhileRetrying: records that grow too old while a
// failing batch is retried are given up before the next call, with the
// attempts made and the last error.
func TestDeliverAgePassesWhileRetrying(t *testing.T) {
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){fail(errors.New("boom"))}}
	dl := &doneLog{t: t}
	dest := &fakeDestination{dl: dl}
	calls := 0
	now := func() time.Time {
		calls++
		if calls == 1 { // the check before the first call
			return t0
		}
		return t0.Add(time.Hour)
	}
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: -1, MaxRecordAge: time.Minute, OnFailure: dest, Now: now})
	if err := d.Deliver(context.Background(), nil, recs(3), dl.done); err != nil {
		t.Fatalf("Deliver = %v, want nil", err)
	}
	if len(h.calls) != 1 {
		t.Errorf("handler called %d times, want 1", len(h.calls))
	}
	if len(dest.sent) != 1 || dest.sent[0].Reason != ReasonRecordAge || dest.sent[0].Condition != ConditionRecordAge ||
		dest.sent[0].Attempts != 1 || dest.sent[0].LastError != "boom" || len(dest.sent[0].Records) != 3 {
		t.Errorf("destination got %+v, want the 3 records, RecordAgeExceeded after 1 attempt, last error boom", dest.sent)
	}
}

// TestDeliverBisectOnlyOnFunctionErrors: with bisect on, a partial failure
// is split at the reported item and the rest retried (a split, not an
// attempt), never halved; a throttle is never bisected either.
func TestDeliverBisectOnlyOnFunctionErrors(t *testing.T) {
	all := recs(6)
	t.Run("partial failure", func(t *testing.T) {
		h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
			partial(all[2].SequenceNumber), ok(),
		}}
		dl := &doneLog{t: t}
		d := newDispatcher(t, Config{Handler: h.handle, BisectOnError: true, MaxRetryAttempts: 0})
		if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
			t.Fatalf("Deliver = %v, want nil (the split is not an attempt, so 0 retries suffice)", err)
		}
		if want := [][]string{seqs(all), seqs(all[2:])}; !equalCalls(h.calls, want) {
			t.Errorf("calls = %v, want %v: split at the reported item, not halved", h.calls, want)
		}
	})
	t.Run("throttle", func(t *testing.T) {
		h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
			fail(fmt.Errorf("busy: %w", stream.ErrThrottled)), ok(),
		}}
		dl := &doneLog{t: t}
		d := newDispatcher(t, Config{Handler: h.handle, BisectOnError: true, MaxRetryAttempts: 0})
		if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
			t.Fatalf("Deliver = %v, want nil", err)
		}
		if want := [][]string{seqs(all), seqs(all)}; !equalCalls(h.calls, want) {
			t.Errorf("calls = %v, want %v: a throttle is retried whole", h.calls, want)
		}
	})
	t.Run("function error", func(t *testing.T) {
		h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
			fail(errors.New("boom")), ok(),
		}}
		dl := &doneLog{t: t}
		d := newDispatcher(t, Config{Handler: h.handle, BisectOnError: true, MaxRetryAttempts: 0})
		if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
			t.Fatalf("Deliver = %v, want nil", err)
		}
		if want := [][]string{seqs(all), seqs(all[:3]), seqs(all[3:])}; !equalCalls(h.calls, want) {
			t.Errorf("calls = %v, want %v: halved", h.calls, want)
		}
	})
}

// TestDeliverIgnoreItemFailures: without ReportBatchItemFailures Lambda
// ignores batchItemFailures: the batch succeeded.
func TestDeliverIgnoreItemFailures(t *testing.T) {
	all := recs(3)
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){partial(all[1].SequenceNumber)}}
	dl := &doneLog{t: t}
	d := newDispatcher(t, Config{Handler: h.handle, IgnoreItemFailures: true})
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatal(err)
	}
	if len(h.calls) != 1 || d.Stats().Handled != 3 || d.Stats().Failures != 0 {
		t.Errorf("calls %v stats %+v: want one call, 3 handled, no failure", h.calls, d.Stats())
	}
}

// counts keeps the call and record counts of s, for comparing with ==.
func counts(s Stats) Stats {
	return Stats{Batches: s.Batches, Records: s.Records, Handled: s.Handled, Failures: s.Failures, Retries: s.Retries,
		GivenUp: s.GivenUp, Throttles: s.Throttles, Timeouts: s.Timeouts}
}

// TestStatsForMetrics: handled bytes, records in failed calls, refused
// destination sends and the calls' durations are counted too.
func TestStatsForMetrics(t *testing.T) {
	all := recs(4)
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
		partial(all[2].SequenceNumber), ok(),
	}}
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: -1})
	dl := &doneLog{t: t}
	if err := d.Deliver(context.Background(), nil, all, dl.done); err != nil {
		t.Fatal(err)
	}
	s := d.Stats()
	var bytes int64
	for _, r := range all {
		bytes += int64(len(r.Data))
	}
	if s.HandledBytes != bytes || s.FailedRecords != 2 || s.HandlerTime.Count != 2 {
		t.Errorf("stats %+v: want %d handled bytes, 2 failed records, 2 timed calls", s, bytes)
	}
	d = newDispatcher(t, Config{Handler: h.handle, NoTiming: true})
	if err := d.Deliver(context.Background(), nil, all[:1], (&doneLog{t: t}).done); err != nil {
		t.Fatal(err)
	}
	if d.Stats().HandlerTime.Count != 0 {
		t.Error("NoTiming: calls were timed")
	}
}

// TestDeliverDiscard: with -on-failure discard, a batch past its retries
// is dropped as Lambda drops it with no destination: counted as given up,
// one WARN line naming the records, the checkpoint moves past it and the
// next records are delivered.
func TestDeliverDiscard(t *testing.T) {
	var logs bytes.Buffer
	five := recs(5)
	h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){partial("1002"), ok()}}
	dl := &doneLog{t: t}
	d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: 0, BatchSize: 5, OnFailure: Discard,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := d.Deliver(context.Background(), nil, five, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := d.Stats().GivenUp; got != 3 {
		t.Errorf("GivenUp = %d, want 3 (records 1002..1004)", got)
	}
	if len(dl.got) == 0 || dl.got[len(dl.got)-1] != five[4].Position() {
		t.Errorf("done = %v, want the checkpoint past the dropped records", dl.got)
	}
	if n := strings.Count(logs.String(), "records given up and dropped (-on-failure discard)"); n != 1 || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("logs:\n%s\nwant one WARN line for the dropped batch", logs.String())
	}
}

// stored is a stream's stored bytes for Config.Reread: it gives each
// record it holds fresh bytes, counts its calls, and fails the first
// failing calls.
type stored struct {
	mu      sync.Mutex
	data    map[stream.Position]string
	calls   int
	failing int // calls that fail before one works
}

func storedOf(recs []stream.Record) *stored {
	s := &stored{data: map[stream.Position]string{}}
	for _, r := range recs {
		s.data[r.Position()] = string(r.Data)
	}
	return s
}

func (s *stored) reread(_ context.Context, recs []stream.Record) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= s.failing {
		return 0, errors.New("kinesis: ProvisionedThroughputExceededException")
	}
	missing := 0
	for i := range recs {
		d, ok := s.data[recs[i].Position()]
		if !ok {
			missing++
			continue
		}
		recs[i].Data = []byte(d)
	}
	return missing, nil
}

// TestCallsGetTheirOwnData (issue 17): a handler that changes Data in
// place (decodes, decrypts) and fails: the retry, the bisected halves and
// the on-failure destination get the bytes as read, not the changed ones
// (read again once, then a copy for each call).
func TestCallsGetTheirOwnData(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	h := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		for i := range ev.Records {
			seen = append(seen, string(ev.Records[i].Kinesis.Data))
			copy(ev.Records[i].Kinesis.Data, "XXXX") // in place
		}
		return events.KinesisEventResponse{}, errors.New("always")
	}
	recs := recs(4)
	st := storedOf(recs)
	want := map[string]bool{}
	for _, r := range recs {
		want[string(r.Data)] = true
	}
	dl := &doneLog{t: t}
	dest := &fakeDestination{dl: dl}
	d := newDispatcher(t, Config{Handler: h, MaxRetryAttempts: 1, BisectOnError: true, BatchSize: 4, OnFailure: dest, Reread: st.reread})
	if err := d.Deliver(context.Background(), nil, recs, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	for _, s := range seen {
		if !want[s] {
			t.Fatalf("a call got %q, bytes an earlier call changed (calls saw %q)", s, seen)
		}
	}
	for _, f := range dest.sent {
		for _, r := range f.Records {
			if !want[string(r.Data)] {
				t.Errorf("the destination got %q, changed by a call", r.Data)
			}
		}
	}
	if len(seen) < 8 {
		t.Errorf("%d records in calls, want the retries and halves too", len(seen))
	}
	if st.calls != 1 {
		t.Errorf("the batch was read again %d times, want once (after its first failed call)", st.calls)
	}
}

// TestNoCopyWithoutFailure (issue 17): calls that succeed get the bytes as
// read, with no copy and no second read; a partial failure rereads only
// the records still to do.
func TestNoCopyWithoutFailure(t *testing.T) {
	five := recs(5)
	st := storedOf(five)
	var got [][]byte
	h := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		for i := range ev.Records {
			got = append(got, ev.Records[i].Kinesis.Data)
		}
		if len(got) == 5 { // the first call: records 3 and 4 failed
			return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{{ItemIdentifier: five[3].SequenceNumber}}}, nil
		}
		return events.KinesisEventResponse{}, nil
	}
	dl := &doneLog{t: t}
	var rereadLen int
	d := newDispatcher(t, Config{Handler: h, MaxRetryAttempts: 1, Reread: func(ctx context.Context, recs []stream.Record) (int, error) {
		rereadLen = len(recs)
		return st.reread(ctx, recs)
	}})
	orig := make([]*byte, 5)
	for i := range five {
		orig[i] = &five[i].Data[0]
	}
	if err := d.Deliver(context.Background(), nil, five, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(got) != 7 {
		t.Fatalf("%d records in calls, want 5 then the 2 retried", len(got))
	}
	for i := range 5 {
		if &got[i][0] != orig[i] {
			t.Errorf("the first call's record %d got a copy: want the bytes as read, with no copy", i)
		}
	}
	if rereadLen != 2 || st.calls != 1 {
		t.Errorf("read again %d times, %d records; want once, the 2 still to do", st.calls, rereadLen)
	}
	if &got[5][0] == &five[3].Data[0] {
		t.Errorf("the retry got the batch's own bytes: want a copy of its own")
	}
}

// TestRereadFails (issue 17): while the stream cannot be read again the
// retry waits, with a WARN line each time, and then gets the bytes as
// read; a record gone from the stream keeps the bytes the call left, with
// a WARN line saying so, and is still delivered.
func TestRereadFails(t *testing.T) {
	var seen []string
	h := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		for i := range ev.Records {
			seen = append(seen, string(ev.Records[i].Kinesis.Data))
			copy(ev.Records[i].Kinesis.Data, "XXXX")
		}
		if len(seen) <= 2 {
			return events.KinesisEventResponse{}, errors.New("once")
		}
		return events.KinesisEventResponse{}, nil
	}
	two := recs(2)
	st := storedOf(two)
	st.failing = 2
	delete(st.data, two[1].Position()) // trimmed from the stream
	var logs bytes.Buffer
	dl := &doneLog{t: t}
	d := newDispatcher(t, Config{Handler: h, MaxRetryAttempts: 1, Reread: st.reread,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := d.Deliver(context.Background(), nil, two, dl.done); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if want := []string{"data-0", "data-1", "data-0", "XXXX-1"}; !slices.Equal(seen, want) {
		t.Errorf("calls saw %q, want %q", seen, want)
	}
	if n := strings.Count(logs.String(), "could not read a failed batch again for its retry; trying again"); n != 2 {
		t.Errorf("logs:\n%s\nwant 2 WARN lines for the failed reads", logs.String())
	}
	if !strings.Contains(logs.String(), "missing=1") || !strings.Contains(logs.String(), "no longer in the stream") {
		t.Errorf("logs:\n%s\nwant a WARN line naming the record no longer in the stream", logs.String())
	}
	if s := d.Stats(); s.Handled != 2 {
		t.Errorf("handled %d, want 2", s.Handled)
	}
}

// TestDeliverNotInvoked (issue 17): a call that never reached the function
// (stream.ErrNotInvoked) uses no retry attempt and never bisects, as on
// Lambda: with -max-retry-attempts 0 the batch is retried until it goes
// through; past -max-record-age it is given up as RecordAgeExceeded with
// the Invoke API's status and no function error, told apart from a
// function's own failure.
func TestDeliverNotInvoked(t *testing.T) {
	notInvoked := &invoke.NotInvokedError{Function: "consumer", StatusCode: 409, Code: "ResourceConflictException", Err: errors.New("conflict")}
	five := recs(5)
	t.Run("retried without an attempt", func(t *testing.T) {
		h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
			fail(notInvoked), fail(notInvoked), fail(notInvoked), ok()}}
		dl := &doneLog{t: t}
		dest := &fakeDestination{dl: dl}
		d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: 0, BisectOnError: true, OnFailure: dest})
		if err := d.Deliver(context.Background(), nil, five, dl.done); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if len(dest.sent) != 0 {
			t.Fatalf("given up %d times: %+v", len(dest.sent), dest.sent[0])
		}
		if len(h.calls) != 4 || len(h.calls[0]) != 5 || len(h.calls[3]) != 5 {
			t.Errorf("calls %v: want 4 calls of the whole batch (no bisection)", h.calls)
		}
		if s := d.Stats(); s.NotInvoked != 3 || s.Failures != 0 || s.Handled != 5 {
			t.Errorf("stats: not invoked %d, failures %d, handled %d; want 3, 0, 5", s.NotInvoked, s.Failures, s.Handled)
		}
	})
	t.Run("given up by age", func(t *testing.T) {
		now := t0
		h := &fakeHandler{answers: []func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error){
			func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
				now = now.Add(time.Minute) // the records age while the function cannot be invoked
				return events.KinesisEventResponse{}, notInvoked
			}}}
		dl := &doneLog{t: t}
		dest := &fakeDestination{dl: dl}
		d := newDispatcher(t, Config{Handler: h.handle, MaxRetryAttempts: 0, MaxRecordAge: 90 * time.Second, OnFailure: dest,
			Now: func() time.Time { return now }})
		if err := d.Deliver(context.Background(), nil, five, dl.done); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if len(dest.sent) != 1 {
			t.Fatalf("%d failures sent, want 1", len(dest.sent))
		}
		f := dest.sent[0]
		if f.Condition != ConditionRecordAge || !f.NotInvoked || f.StatusCode != 409 || f.FunctionError != "" || f.Attempts != 0 {
			t.Errorf("failure %+v: want RecordAgeExceeded, not invoked, status 409, no function error, 0 attempts", f)
		}
	})
}
