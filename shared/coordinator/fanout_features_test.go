package coordinator_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/filter"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// The features of a polling worker, with enhanced fan-out (issue 18): a
// worker with a consumer name on a one-shard stream (kinesis-mock behind
// the FanOut proxy), KPL aggregates and plain records over 10 keys, every
// record delivered exactly once (a clean run) and in order per key.

// startFanOut starts a worker reading f over a consumer of its own, with
// mod applied after.
func (f *fixture) startFanOut(h stream.Handler, mod func(*coordinator.Config)) *running {
	f.t.Helper()
	return f.start(h, func(cfg *coordinator.Config) {
		cfg.ConsumerName = f.app + "-efo"
		if mod != nil {
			mod(cfg)
		}
	})
}

// fanOutRecords puts 300 user records over 10 keys: 200 in KPL aggregates
// of 10, then 100 plain.
func fanOutRecords(f *fixture) []string {
	want := f.put(10, 200, 0, 10)
	return append(want, f.put(10, 100, 200, 0)...)
}

// checkFannedOut checks, after the worker stopped, that every lease was
// read with enhanced fan-out, and that recs are want, each once, in order
// per key.
func checkFannedOut(t *testing.T, f *fixture, recs []got, want []string) {
	t.Helper()
	ls := f.leases()
	if len(ls) == 0 {
		t.Error("no lease")
	}
	for key, l := range ls {
		if l.Reader != fetch.ModeFanOut {
			t.Errorf("shard %s was read by %q, want %q", key, l.Reader, fetch.ModeFanOut)
		}
	}
	assertIDs(t, recs, want)
	checkKeyOrder(t, recs)
}

// TestFanOutParallelization: with a factor of 3, up to 3 calls of the
// shard run at once, each key's records in order, each record once.
func TestFanOutParallelization(t *testing.T) {
	f, _ := newFanOutFixture(t, 1)
	want := fanOutRecords(f)
	c := &collector{}
	h, most := slowCounted(c.handle)
	r := f.startFanOut(h, func(cfg *coordinator.Config) { cfg.ParallelizationFactor = 3; cfg.BatchSize = 10 })
	testwait.Until(t, time.Minute, "300 records", func() bool { return c.count() >= len(want) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFannedOut(t, f, c.snapshot(), want)
	if m := most.Load(); m < 2 || m > 3 {
		t.Errorf("at most %d calls in flight, want 2–3", m)
	}
}

// TestFanOutTumblingWindow: a tumbling window gets every record once, in
// order, with the state it returned last; each window's final invoke
// carries the count of its records, and they add up to every record.
func TestFanOutTumblingWindow(t *testing.T) {
	f, _ := newFanOutFixture(t, 1)
	want := fanOutRecords(f)
	c := &collector{}
	var mu sync.Mutex
	finalSum := 0
	wh := func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		if _, err := c.handle(ctx, ev.KinesisEvent); err != nil {
			return events.KinesisTimeWindowEventResponse{}, err
		}
		if ev.IsFinalInvokeForWindow {
			n, _ := strconv.Atoi(ev.State["n"])
			mu.Lock()
			finalSum += n
			mu.Unlock()
		}
		return countInState(ev), nil
	}
	r := f.startFanOut(nil, func(cfg *coordinator.Config) {
		cfg.TumblingWindow = time.Second
		cfg.WindowHandler = wh
		cfg.BatchSize = 50
	})
	testwait.Until(t, time.Minute, "the final invokes counting 300 records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return finalSum >= len(want)
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFannedOut(t, f, c.snapshot(), want)
	if finalSum != len(want) {
		t.Errorf("the final invokes' states count %d records, want %d", finalSum, len(want))
	}
}

// TestFanOutFilter: only the records the filter matches (by partition
// key, plain or inside aggregates) reach the handler, each once, in
// order; the others are counted.
func TestFanOutFilter(t *testing.T) {
	f, _ := newFanOutFixture(t, 1)
	all := fanOutRecords(f)
	var want []string
	for _, id := range all {
		if strings.HasPrefix(id, "key-3:") || strings.HasPrefix(id, "key-7:") {
			want = append(want, id)
		}
	}
	flt, err := filter.Parse([]string{`{"partitionKey":["key-3","key-7"]}`})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	r := f.startFanOut(c.handle, func(cfg *coordinator.Config) { cfg.Filter = flt })
	filtered := int64(len(all) - len(want))
	testwait.Until(t, time.Minute, "60 records delivered, 240 filtered out", func() bool {
		return c.count() >= len(want) && r.w.Totals().FilteredOut >= filtered
	})
	if got := r.w.Totals().FilteredOut; got != filtered {
		t.Errorf("%d records filtered out, want %d", got, filtered)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFannedOut(t, f, c.snapshot(), want)
}

// TestFanOutRetry: a handler that fails its first call gets the same
// batch again, and then every record once, in order.
func TestFanOutRetry(t *testing.T) {
	f, _ := newFanOutFixture(t, 1)
	want := fanOutRecords(f)
	var failed, retried string
	c := &collector{fail: func(call int, ev events.KinesisEvent) ([]int, error) {
		switch call {
		case 1:
			failed = string(ev.Records[0].Kinesis.Data)
			return nil, errors.New("fails once")
		case 2:
			retried = string(ev.Records[0].Kinesis.Data)
		}
		return nil, nil
	}}
	r := f.startFanOut(c.handle, func(cfg *coordinator.Config) { cfg.BatchSize = 25 })
	testwait.Until(t, time.Minute, "300 records", func() bool { return c.count() >= len(want) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkFannedOut(t, f, c.snapshot(), want)
	if failed == "" || retried != failed {
		t.Errorf("the failed call began with %q, the next with %q: want the same batch again", failed, retried)
	}
}
