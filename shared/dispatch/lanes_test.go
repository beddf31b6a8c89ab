package dispatch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// laneKeys returns one partition key per lane of n: keys[i] is in lane i.
func laneKeys(t *testing.T, n int) []string {
	t.Helper()
	keys := make([]string, n)
	found := 0
	for i := 0; found < n && i < 10000; i++ {
		k := fmt.Sprintf("k%03d", i)
		if l := Lane(k, n); keys[l] == "" {
			keys[l] = k
			found++
		}
	}
	if found < n {
		t.Fatalf("no key for every one of %d lanes", n)
	}
	return keys
}

// spread returns n user records over keys in turn (record i has key
// keys[i%len(keys)]), ten to a KPL aggregate (sequence numbers 7000, 7001,
// …, sub-sequence numbers 0–9), data "key:i" of one width.
func spread(n int, keys ...string) []stream.Record {
	out := make([]stream.Record, n)
	for i := range out {
		key := keys[i%len(keys)]
		out[i] = stream.Record{
			ShardID: testShard, SequenceNumber: fmt.Sprint(7000 + i/10), SubSequenceNumber: int64(i % 10), Aggregated: true,
			PartitionKey: key, Data: fmt.Appendf(nil, "%s:%05d", key, i), ApproximateArrivalTimestamp: t0,
		}
	}
	return out
}

// index is the i of a record made by spread, from its data.
func index(t *testing.T, data []byte) int {
	t.Helper()
	_, n, _ := strings.Cut(string(data), ":")
	i, err := strconv.Atoi(n)
	if err != nil {
		t.Fatalf("record data %q: %v", data, err)
	}
	return i
}

// laneRun is Lanes under test: it records every done position, checks
// they increase, and closes the lanes at the end of the test.
type laneRun struct {
	t     *testing.T
	l     *Lanes
	gates []chan struct{}
	mu    sync.Mutex
	done  []stream.Position
}

func startTestLanes(t *testing.T, ctx context.Context, stop <-chan struct{}, cfg Config, lc LanesConfig) *laneRun {
	t.Helper()
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff, cfg.MaxRetryBackoff = time.Millisecond, 5*time.Millisecond
	}
	r := &laneRun{t: t}
	lc.Done = func(p stream.Position) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if n := len(r.done); n > 0 && !p.After(r.done[n-1]) {
			t.Errorf("done(%v) after done(%v): want increasing positions", p, r.done[n-1])
		}
		r.done = append(r.done, p)
	}
	l, err := NewLanes(ctx, stop, cfg, lc)
	if err != nil {
		t.Fatal(err)
	}
	r.l = l
	t.Cleanup(func() {
		for _, c := range r.gates { // a failed test leaves no call waiting
			select {
			case <-c:
			default:
				close(c)
			}
		}
		_ = l.Close()
	})
	return r
}

// opens registers channels that handler calls wait on, to be closed (if
// the test did not) before the lanes are closed at its end.
func (r *laneRun) opens(gates ...chan struct{}) { r.gates = append(r.gates, gates...) }

// last is the last position reported done (zero if none).
func (r *laneRun) last() stream.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.done) == 0 {
		return stream.Position{}
	}
	return r.done[len(r.done)-1]
}

// add adds recs in chunks of size, as a shard's reader does.
func (r *laneRun) add(recs []stream.Record, size int) error {
	for len(recs) > 0 {
		n := min(size, len(recs))
		if err := r.l.Add(recs[:n], stream.Position{}); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

// handled counts records handled per key and checks each key's order.
type handled struct {
	t     *testing.T
	mu    sync.Mutex
	byKey map[string][]int
	count atomic.Int64
}

func newHandled(t *testing.T) *handled { return &handled{t: t, byKey: map[string][]int{}} }

// ok records ev's records (from the lowest failed item on, none: pass
// upTo = len(ev.Records) for all).
func (h *handled) ok(ev events.KinesisEvent, upTo int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range ev.Records[:upTo] {
		i := index(h.t, r.Kinesis.Data)
		k := r.Kinesis.PartitionKey
		if prev := h.byKey[k]; len(prev) > 0 && prev[len(prev)-1] >= i {
			h.t.Errorf("key %s: record %d handled after %d: want each key in order, once", k, i, prev[len(prev)-1])
		}
		h.byKey[k] = append(h.byKey[k], i)
	}
	h.count.Add(int64(upTo))
}

func (h *handled) set() map[int]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := map[int]bool{}
	for _, is := range h.byKey {
		for _, i := range is {
			m[i] = true
		}
	}
	return m
}

// watermark is the position before the lowest record of all that is not
// in done (zero if that is the first), or the last record's.
func watermark(all []stream.Record, done map[int]bool) stream.Position {
	for i := range all {
		if !done[i] {
			if i == 0 {
				return stream.Position{}
			}
			return all[i-1].Position()
		}
	}
	return all[len(all)-1].Position()
}

// TestLanesIndependent: while one lane's first call does not return, the
// other lanes take every batch of theirs the reader adds, chunk after
// chunk, and done does not pass the slow lane's first record.
func TestLanesIndependent(t *testing.T) {
	keys := laneKeys(t, 4)
	all := spread(400, keys...) // record 0 is the slow lane's
	slow := keys[0]
	release := make(chan struct{})
	var slowCalls atomic.Int64
	h := newHandled(t)
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if ev.Records[0].Kinesis.PartitionKey == slow {
			slowCalls.Add(1)
			<-release
		}
		h.ok(ev, len(ev.Records))
		return events.KinesisEventResponse{}, nil
	}
	r := startTestLanes(t, context.Background(), nil, Config{Handler: handler, BatchSize: 10}, LanesConfig{Factor: 4})
	r.opens(release)
	if err := r.add(all, 40); err != nil { // chunks of batch size × factor
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, "the three fast lanes' 300 records while the slow lane's first call runs", func() bool {
		return h.count.Load() == 300
	})
	if n := slowCalls.Load(); n != 1 {
		t.Errorf("slow lane made %d calls, want 1 (still in its first)", n)
	}
	if p := r.last(); p.Seq != "" {
		t.Errorf("done(%v) while the first record's lane had not finished it", p)
	}
	close(release)
	if err := r.l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r.l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.last(), all[len(all)-1].Position(); got != want {
		t.Errorf("last done %v, want the last record %v", got, want)
	}
	if s := r.l.Stats(); s.Handled != 400 || s.Batches != 40 {
		t.Errorf("stats: %d handled in %d batches, want 400 in 40", s.Handled, s.Batches)
	}
}

// TestLanesAheadBound: Add waits while the lanes hold Ahead bytes of
// records not done: a stuck lane lets the reader get only so far ahead.
func TestLanesAheadBound(t *testing.T) {
	keys := laneKeys(t, 2)
	all := spread(100, keys...) // alternating: the even records are the slow lane's
	cost := RecordCost(&all[0])
	release := make(chan struct{})
	var fast atomic.Int64
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if ev.Records[0].Kinesis.PartitionKey == keys[0] {
			<-release
		} else {
			fast.Add(int64(len(ev.Records)))
		}
		return events.KinesisEventResponse{}, nil
	}
	r := startTestLanes(t, context.Background(), nil, Config{Handler: handler, BatchSize: 10}, LanesConfig{Factor: 2, Ahead: int(12 * cost)})
	r.opens(release)
	var added atomic.Int64
	adder := make(chan error, 1)
	go func() {
		for c := range slices.Chunk(all, 10) {
			if err := r.l.Add(c, stream.Position{}); err != nil {
				adder <- err
				return
			}
			added.Add(1)
		}
		adder <- nil
	}()
	// Each add brings 5 records of each lane. The slow lane's records stay
	// held: 15 of them (three adds) reach the bound of 12 for good.
	testwait.Until(t, 10*time.Second, "three adds accepted and their 15 fast records handled", func() bool {
		return added.Load() == 3 && fast.Load() == 15
	})
	select {
	case err := <-adder:
		t.Fatalf("the reader added everything (%v) while a lane held the bound", err)
	default:
	}
	close(release)
	if err := <-adder; err != nil {
		t.Fatal(err)
	}
	if err := r.l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := added.Load(); got != 10 {
		t.Errorf("%d adds, want 10", got)
	}
}

// TestLanesPoisonWatermark: a record that fails in one lane holds the
// watermark exactly before it (sequence and sub-sequence number) while
// the other lanes finish; with retries left it is retried until it
// succeeds; past them it is given up to the destination, or Deliver stops
// with a *GiveUpError and nothing passes it.
func TestLanesPoisonWatermark(t *testing.T) {
	keys := laneKeys(t, 3)
	all := spread(60, keys...)
	const poison = 14 // the third lane's fifth record, inside aggregate 7001
	for _, tt := range []struct {
		name    string
		retries int
		dest    bool
	}{
		{"retried until healed", -1, false},
		{"given up to the destination", 2, true},
		{"given up with no destination", 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var healed atomic.Bool
			var poisonCalls atomic.Int64
			h := newHandled(t)
			handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
				for _, rec := range ev.Records {
					if index(t, rec.Kinesis.Data) == poison && !healed.Load() {
						poisonCalls.Add(1)
						return events.KinesisEventResponse{}, errors.New("poison")
					}
				}
				h.ok(ev, len(ev.Records))
				return events.KinesisEventResponse{}, nil
			}
			dest := &memDest{}
			cfg := Config{Handler: handler, BatchSize: 2, MaxRetryAttempts: tt.retries}
			if tt.dest {
				cfg.OnFailure = dest
			}
			r := startTestLanes(t, context.Background(), nil, cfg, LanesConfig{Factor: 3})
			err := r.add(all, 6)
			if tt.retries < 0 {
				if err != nil {
					t.Fatal(err)
				}
				testwait.Until(t, 10*time.Second, "the other lanes' records and the poison retried", func() bool {
					// Lanes 0 and 1: 40 records; lane 2: the 4 before the poison's batch.
					return h.count.Load() == 44 && poisonCalls.Load() >= 3
				})
				if got, want := r.last(), all[poison-1].Position(); got != want {
					t.Errorf("watermark %v while the poison record fails, want %v (the record before it)", got, want)
				}
				healed.Store(true)
				if err := r.l.Flush(); err != nil {
					t.Fatal(err)
				}
				if got, want := r.last(), all[59].Position(); got != want {
					t.Errorf("last done %v after healing, want %v", got, want)
				}
				return
			}
			if err == nil {
				err = r.l.Flush()
			}
			cerr := r.l.Close()
			var ge *GiveUpError
			switch {
			case tt.dest:
				if err != nil || cerr != nil {
					t.Fatalf("Flush = %v, Close = %v; want nil with a destination", err, cerr)
				}
				if got, want := r.last(), all[59].Position(); got != want {
					t.Errorf("last done %v, want %v", got, want)
				}
				if len(dest.got) != 1 || dest.got[0].Records[0].Position() != all[poison].Position() {
					t.Errorf("destination got %+v, want the poison's batch", dest.got)
				}
			case !errors.As(cerr, &ge):
				t.Fatalf("Close = %v, want a *GiveUpError", cerr)
			default:
				if ge.First != all[poison].Position() {
					t.Errorf("gave up from %v, want the poison record %v", ge.First, all[poison].Position())
				}
				if got := r.last(); got.Seq != "" && !all[poison].Position().After(got) {
					t.Errorf("done(%v) reached the poison record %v", got, all[poison].Position())
				}
				if got, want := r.last(), watermark(all, h.set()); got != want {
					t.Errorf("last done %v, want %v (before the lowest record not handled)", got, want)
				}
			}
		})
	}
}

// memDest is an on-failure destination in memory.
type memDest struct {
	mu  sync.Mutex
	got []Failure
}

func (m *memDest) Send(_ context.Context, f Failure) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f.Records = slices.Clone(f.Records)
	m.got = append(m.got, f)
	return nil
}

// TestLanesKeyOrderUnderFailures: errors (bisected), partial failures and
// retries in every lane keep each key's records in order, each handled
// once, while a lane held in a call does not hold the others back.
func TestLanesKeyOrderUnderFailures(t *testing.T) {
	keys := laneKeys(t, 3)
	all := spread(600, append(keys, "x1", "x2", "x3", "x4")...)
	held := keys[0]
	release := make(chan struct{})
	var heldOnce sync.Once
	h := newHandled(t)
	var mu sync.Mutex
	seen := map[int]int{} // calls that held each record
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if ev.Records[0].Kinesis.PartitionKey == held {
			waited := false
			heldOnce.Do(func() { waited = true })
			if waited {
				<-release
			}
		}
		mu.Lock()
		failAt, errAt := -1, false
		for j, r := range ev.Records {
			i := index(t, r.Kinesis.Data)
			seen[i]++
			switch {
			case i%13 == 5 && seen[i] <= 2: // fails the call twice: bisected
				errAt = true
			case i%7 == 3 && seen[i] == 1 && failAt < 0: // a partial failure once
				failAt = j
			}
		}
		mu.Unlock()
		if errAt {
			return events.KinesisEventResponse{}, errors.New("flaky")
		}
		if failAt >= 0 {
			h.ok(ev, failAt)
			return failures(all[index(t, ev.Records[failAt].Kinesis.Data)].ItemIdentifier()), nil
		}
		h.ok(ev, len(ev.Records))
		return events.KinesisEventResponse{}, nil
	}
	r := startTestLanes(t, context.Background(), nil, Config{Handler: handler, BatchSize: 8, BisectOnError: true, MaxRetryAttempts: -1}, LanesConfig{Factor: 3})
	r.opens(release)
	adder := make(chan error, 1)
	go func() { adder <- r.add(all, 24) }()
	heldCount := 0 // the held lane's records (record 0, the held key's, comes first in it)
	for i := range all {
		if Lane(all[i].PartitionKey, 3) == 0 {
			heldCount++
		}
	}
	testwait.Until(t, 20*time.Second, "every record but the held lane's, through retries and bisection", func() bool {
		return h.count.Load() == int64(len(all)-heldCount)
	})
	close(release)
	if err := <-adder; err != nil {
		t.Fatal(err)
	}
	if err := r.l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := r.l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.set()); n != len(all) {
		t.Errorf("%d records handled, want %d", n, len(all))
	}
	s := r.l.Stats()
	if s.Failures == 0 || s.Retries == 0 {
		t.Errorf("stats %+v: want failures and retries", s)
	}
	if got, want := r.last(), all[len(all)-1].Position(); got != want {
		t.Errorf("last done %v, want %v", got, want)
	}
}

// TestLanesDrainMidCall: stop closed while every lane is in a call: each
// finishes its call, none starts another, and done ends exactly before
// the lowest record not handled.
func TestLanesDrainMidCall(t *testing.T) {
	keys := laneKeys(t, 3)
	all := spread(90, keys...)
	stop := make(chan struct{})
	gate := make(chan struct{})
	var calls, inGate atomic.Int64
	var afterStop atomic.Int64
	h := newHandled(t)
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		select {
		case <-stop:
			afterStop.Add(1)
		default:
		}
		if calls.Add(1) > 3 { // the lanes' second calls (and later) wait
			inGate.Add(1)
			<-gate
		}
		h.ok(ev, len(ev.Records))
		return events.KinesisEventResponse{}, nil
	}
	r := startTestLanes(t, context.Background(), stop, Config{Handler: handler, BatchSize: 5}, LanesConfig{Factor: 3})
	r.opens(gate, stop)
	if err := r.add(all, 15); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, "every lane in a call", func() bool { return inGate.Load() == 3 })
	close(stop)
	if err := r.l.Add(nil, stream.Position{}); !errors.Is(err, ErrStopping) {
		t.Errorf("Add after stop = %v, want ErrStopping", err)
	}
	close(gate)
	if err := r.l.Close(); err != nil && !errors.Is(err, ErrStopping) {
		t.Fatalf("Close = %v, want nil or ErrStopping", err)
	}
	if n := afterStop.Load(); n != 0 {
		t.Errorf("%d calls started after stop", n)
	}
	if n := calls.Load(); n != 6 {
		t.Errorf("%d calls, want 6 (two a lane)", n)
	}
	if got, want := r.last(), watermark(all, h.set()); got != want || got.Seq == "" {
		t.Errorf("last done %v, want %v (before the lowest record not handled)", got, want)
	}
}

// TestLanesLeaseLostMidCall: ctx cancelled while every lane is in a call
// (the lease lost): the calls' contexts end, no call starts after, Close
// returns the cause, and nothing of the cancelled calls is done.
func TestLanesLeaseLostMidCall(t *testing.T) {
	keys := laneKeys(t, 3)
	all := spread(90, keys...)
	errLost := errors.New("lease lost")
	ctx, cancel := context.WithCancelCause(context.Background())
	var calls, inCall, late atomic.Int64
	h := newHandled(t)
	handler := func(hctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if ctx.Err() != nil {
			late.Add(1)
		}
		if calls.Add(1) > 3 {
			inCall.Add(1)
			<-hctx.Done()
			return events.KinesisEventResponse{}, hctx.Err()
		}
		h.ok(ev, len(ev.Records))
		return events.KinesisEventResponse{}, nil
	}
	r := startTestLanes(t, ctx, nil, Config{Handler: handler, BatchSize: 5}, LanesConfig{Factor: 3})
	if err := r.add(all, 15); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 10*time.Second, "every lane in a call", func() bool { return inCall.Load() == 3 })
	before := r.last()
	cancel(errLost)
	if err := r.l.Close(); !errors.Is(err, errLost) {
		t.Fatalf("Close = %v, want the cause", err)
	}
	if n := late.Load(); n != 0 {
		t.Errorf("%d calls started after the lease was lost", n)
	}
	if got := r.last(); got != before {
		t.Errorf("done moved to %v after the loss (was %v)", got, before)
	}
	if got, want := r.last(), watermark(all, h.set()); got != want {
		t.Errorf("last done %v, want %v", got, want)
	}
	if err := r.l.Add(all[:1], stream.Position{}); !errors.Is(err, errLost) {
		t.Errorf("Add after the loss = %v, want the cause", err)
	}
}

// TestLanesBatchingWindow: each lane waits for its own batch to fill, up
// to the window; a full lane calls at once; Flush ends the waits.
func TestLanesBatchingWindow(t *testing.T) {
	keys := laneKeys(t, 2)
	var mu sync.Mutex
	var sizes = map[string][]int{}
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		k := ev.Records[0].Kinesis.PartitionKey
		sizes[k] = append(sizes[k], len(ev.Records))
		return events.KinesisEventResponse{}, nil
	}
	calls := func(k string) []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(sizes[k])
	}
	t.Run("long window", func(t *testing.T) {
		clear(sizes)
		r := startTestLanes(t, context.Background(), nil, Config{Handler: handler, BatchSize: 10}, LanesConfig{Factor: 2, MaxBatchingWindow: time.Hour})
		recs := spread(20, keys[1], keys[1], keys[1], keys[0]) // 5 of lane 0, 15 of lane 1
		if err := r.l.Add(recs, stream.Position{}); err != nil {
			t.Fatal(err)
		}
		testwait.Until(t, 10*time.Second, "lane 1's full batch", func() bool { return len(calls(keys[1])) == 1 })
		if got := calls(keys[0]); len(got) != 0 {
			t.Errorf("lane 0 called with %v before its window ended", got)
		}
		if err := r.l.Flush(); err != nil {
			t.Fatal(err)
		}
		if got, want := calls(keys[0]), []int{5}; !slices.Equal(got, want) {
			t.Errorf("lane 0 calls %v, want %v", got, want)
		}
		if got, want := calls(keys[1]), []int{10, 5}; !slices.Equal(got, want) {
			t.Errorf("lane 1 calls %v, want %v", got, want)
		}
	})
	t.Run("short window", func(t *testing.T) {
		clear(sizes)
		r := startTestLanes(t, context.Background(), nil, Config{Handler: handler, BatchSize: 10}, LanesConfig{Factor: 2, MaxBatchingWindow: 20 * time.Millisecond})
		if err := r.l.Add(spread(3, keys[0]), stream.Position{}); err != nil {
			t.Fatal(err)
		}
		recs := spread(3, keys[0])
		testwait.Until(t, 10*time.Second, "the three records done once the window passed", func() bool { return r.last() == recs[2].Position() })
		if got, want := calls(keys[0]), []int{3}; !slices.Equal(got, want) {
			t.Errorf("calls %v, want %v", got, want)
		}
	})
}

// TestLanesThrough: records the reader dropped after the last one added
// are done once the lanes are, and at once when they are idle.
func TestLanesThrough(t *testing.T) {
	keys := laneKeys(t, 2)
	all := spread(30, keys...)
	r := startTestLanes(t, context.Background(), nil, Config{Handler: func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}, BatchSize: 10}, LanesConfig{Factor: 2})
	if err := r.l.Add(all[:10], all[19].Position()); err != nil { // 10–19 filtered out
		t.Fatal(err)
	}
	if err := r.l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.last(), all[19].Position(); got != want {
		t.Errorf("last done %v, want the read's end %v", got, want)
	}
	if err := r.l.Add(nil, all[29].Position()); err != nil { // an idle read: all filtered
		t.Fatal(err)
	}
	if got, want := r.last(), all[29].Position(); got != want {
		t.Errorf("last done %v, want %v at once", got, want)
	}
}

// TestLanesStatsWhileRunning: Stats may be read while the lanes run.
func TestLanesStatsWhileRunning(t *testing.T) {
	keys := laneKeys(t, 5)
	all := spread(500, keys...)
	r := startTestLanes(t, context.Background(), nil, Config{Handler: func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}, BatchSize: 7}, LanesConfig{Factor: 5, Ahead: 1})
	stopReading := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stopReading:
				return
			default:
				_ = r.l.Stats()
			}
		}
	}()
	if err := r.add(all, 35); err != nil {
		t.Fatal(err)
	}
	if err := r.l.Flush(); err != nil {
		t.Fatal(err)
	}
	close(stopReading)
	<-readerDone
	if s := r.l.Stats(); s.Handled != 500 {
		t.Errorf("%d handled, want 500", s.Handled)
	}
}

// TestLaneIsFNV32a: Lane is FNV-32a of the key modulo n, as it was with
// hash/fnv: the keys of a shard keep their lanes across versions.
func TestLaneIsFNV32a(t *testing.T) {
	for i := range 200 {
		key := fmt.Sprintf("key-%03d", i)
		h := fnv.New32a()
		h.Write([]byte(key))
		for _, n := range []int{1, 2, 5, 10} {
			if got, want := Lane(key, n), int(h.Sum32()%uint32(n)); got != want {
				t.Fatalf("Lane(%q, %d) = %d, want %d", key, n, got, want)
			}
		}
	}
}

// TestLanesFullEndsWindow: when the lanes hold the Ahead bound, a lane
// waiting for its batching window calls with what it has: no more records
// can come to fill it until some are done.
func TestLanesFullEndsWindow(t *testing.T) {
	keys := laneKeys(t, 2)
	all := spread(8, keys...)
	var calls atomic.Int64
	r := startTestLanes(t, context.Background(), nil, Config{Handler: func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		calls.Add(1)
		return events.KinesisEventResponse{}, nil
	}, BatchSize: 100}, LanesConfig{Factor: 2, MaxBatchingWindow: time.Hour, Ahead: int(4 * RecordCost(&all[0]))})
	if err := r.l.Add(all[:4], stream.Position{}); err != nil {
		t.Fatal(err)
	}
	// The second add waits for room, which only a call makes: it returns
	// because a lane called without waiting the hour.
	if err := r.l.Add(all[4:], stream.Position{}); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n == 0 {
		t.Error("no call before the second add returned")
	}
	if err := r.l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.last(), all[7].Position(); got != want {
		t.Errorf("last done %v, want %v", got, want)
	}
}

// TestLanesDeadline: past Config.Deadline (the scheduled function's) no
// lane calls: Flush and Close say ErrStopping and nothing is done.
func TestLanesDeadline(t *testing.T) {
	keys := laneKeys(t, 3)
	var calls atomic.Int64
	r := startTestLanes(t, context.Background(), nil, Config{Handler: func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		calls.Add(1)
		return events.KinesisEventResponse{}, nil
	}, BatchSize: 10, Deadline: time.Now().Add(-time.Second)}, LanesConfig{Factor: 3})
	err := r.add(spread(30, keys...), 30)
	if err == nil {
		err = r.l.Flush()
	}
	if !errors.Is(err, ErrStopping) {
		t.Errorf("Flush = %v, want ErrStopping", err)
	}
	if err := r.l.Close(); !errors.Is(err, ErrStopping) {
		t.Errorf("Close = %v, want ErrStopping", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d calls past the deadline", n)
	}
	if got := r.last(); got.Seq != "" {
		t.Errorf("done(%v) with nothing handled", got)
	}
}
