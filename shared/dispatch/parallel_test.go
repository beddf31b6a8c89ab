package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

// keyed returns n user records over keys partition keys, in two KPL
// aggregates' worth of sequence numbers, data "key:counter".
func keyed(n, keys int) []stream.Record {
	out := make([]stream.Record, n)
	for i := range out {
		key := fmt.Sprintf("key-%d", i%keys)
		out[i] = stream.Record{
			ShardID: testShard, SequenceNumber: fmt.Sprint(5000 + i/50), SubSequenceNumber: int64(i % 50), Aggregated: true,
			PartitionKey: key, Data: []byte(fmt.Sprintf("%s:%d", key, i/keys)), ApproximateArrivalTimestamp: t0,
		}
	}
	return out
}

// safeDone checks that done positions increase, from any goroutine.
type safeDone struct {
	mu  sync.Mutex
	log doneLog
}

func (s *safeDone) done(p stream.Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.done(p)
}

func newParallel(t *testing.T, cfg Config, n int) *Parallel {
	t.Helper()
	cfg.RetryBackoff, cfg.MaxRetryBackoff = time.Nanosecond, time.Nanosecond
	p, err := NewParallel(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParallelKeysInOrder: lanes run at once; each key's records arrive in
// order; every record is delivered once; done ends at the last record.
func TestParallelKeysInOrder(t *testing.T) {
	all := keyed(400, 37)
	var mu sync.Mutex
	got := map[string][]int{}
	var inFlight, most atomic.Int64
	release := make(chan struct{})
	var started sync.Once
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		if n >= 4 {
			started.Do(func() { close(release) })
		}
		select { // hold the first calls until four lanes are in flight
		case <-release:
		case <-time.After(5 * time.Second):
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ev.Records {
			key, c, _ := strings.Cut(string(r.Kinesis.Data), ":")
			var n int
			fmt.Sscan(c, &n)
			got[key] = append(got[key], n)
		}
		return events.KinesisEventResponse{}, nil
	}
	d := &safeDone{log: doneLog{t: t}}
	p := newParallel(t, Config{Handler: h, BatchSize: 10}, 5)
	if err := p.Deliver(context.Background(), nil, all, d.done); err != nil {
		t.Fatal(err)
	}
	if most.Load() < 4 {
		t.Errorf("at most %d calls in flight, want 4 or more of the 5 lanes", most.Load())
	}
	if most.Load() > 5 {
		t.Errorf("%d calls in flight, want at most the factor 5", most.Load())
	}
	total := 0
	for key, ns := range got {
		total += len(ns)
		if !slices.IsSorted(ns) || slices.Compact(slices.Clone(ns)) == nil {
			t.Errorf("key %s delivered out of order: %v", key, ns)
		}
	}
	if total != len(all) {
		t.Errorf("%d records delivered, want %d", total, len(all))
	}
	if last := d.log.got[len(d.log.got)-1]; last != all[len(all)-1].Position() {
		t.Errorf("last done %v, want the last record %v", last, all[len(all)-1].Position())
	}
	if s := p.Stats(); s.Handled != int64(len(all)) {
		t.Errorf("stats %+v, want %d handled", s, len(all))
	}
}

// TestParallelWatermark: a slow lane holds the checkpoint back: done never
// passes a record its lane has not finished, even while later lanes are
// done.
func TestParallelWatermark(t *testing.T) {
	all := keyed(40, 4)
	slowKey := all[0].PartitionKey // the first record's lane is slow
	slow := make(chan struct{})
	fastDone := make(chan struct{}, 1) // buffered: the third fast call may come before the test waits
	var fastCalls atomic.Int64
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		if ev.Records[0].Kinesis.PartitionKey == slowKey {
			<-slow
		} else if fastCalls.Add(1) >= 3 {
			select {
			case fastDone <- struct{}{}:
			default:
			}
		}
		return events.KinesisEventResponse{}, nil
	}
	d := &safeDone{log: doneLog{t: t}}
	p := newParallel(t, Config{Handler: h, BatchSize: 100}, 4)
	if Lane(all[0].PartitionKey, 4) == Lane(all[1].PartitionKey, 4) {
		t.Skip("keys share a lane with this hash; pick others")
	}
	res := make(chan error, 1)
	go func() { res <- p.Deliver(context.Background(), nil, all, d.done) }()
	select {
	case <-fastDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the other lanes did not run while one was slow")
	}
	d.mu.Lock()
	early := len(d.log.got)
	d.mu.Unlock()
	if early != 0 {
		t.Errorf("done was called %d times while the first record's lane had not finished", early)
	}
	close(slow)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if last := d.log.got[len(d.log.got)-1]; last != all[len(all)-1].Position() {
		t.Errorf("last done %v, want %v", last, all[len(all)-1].Position())
	}
}

// TestParallelGiveUpStopsLanes: a lane that gives up with no destination
// stops the others after their batch in flight; Deliver returns the
// *GiveUpError and done never passes the failed record.
func TestParallelGiveUpStopsLanes(t *testing.T) {
	all := keyed(60, 6)
	poison := string(all[7].Data)
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		for _, r := range ev.Records {
			if string(r.Kinesis.Data) == poison {
				return events.KinesisEventResponse{}, errors.New("poison")
			}
		}
		return events.KinesisEventResponse{}, nil
	}
	d := &safeDone{log: doneLog{t: t}}
	p := newParallel(t, Config{Handler: h, BatchSize: 2, MaxRetryAttempts: 1}, 3)
	err := p.Deliver(context.Background(), nil, all, d.done)
	var ge *GiveUpError
	if !errors.As(err, &ge) {
		t.Fatalf("Deliver = %v, want a *GiveUpError", err)
	}
	for _, pos := range d.log.got {
		if !all[7].Position().After(pos) {
			t.Errorf("done(%v) reached the poison record %v", pos, all[7].Position())
		}
	}
}

// BenchmarkParallelization: a handler that takes 50 ms per call, 100 keys,
// batches of 10: records/s at factors 1, 2, 5 and 10.
func BenchmarkParallelization(b *testing.B) {
	all := keyed(200, 100)
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		time.Sleep(50 * time.Millisecond)
		return events.KinesisEventResponse{}, nil
	}
	for _, factor := range []int{1, 2, 5, 10} {
		b.Run(fmt.Sprintf("factor=%d", factor), func(b *testing.B) {
			d, err := NewDeliverer(Config{Handler: h, BatchSize: 10}, factor)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for b.Loop() {
				if err := d.Deliver(context.Background(), nil, all, func(stream.Position) {}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(all))/time.Since(start).Seconds(), "records/s")
		})
	}
}
