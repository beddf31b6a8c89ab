package coordinator_test

import (
	"context"
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

// BenchmarkLanes measures what a parallelization factor delivers (issue
// 17, point 8): one shard with a backlog of user records over partition
// keys key-000, key-001, … (KPL aggregates of 50), an in-process handler
// that takes 200 ms a call, batch size 10; the records handled in a
// window (20 s, from the first call) at factors 1, 5 and 10, through the
// whole worker (kinesis-mock, DynamoDB Local for the lease table). Each
// run reads the stream from TRIM_HORIZON under a new application name.
//
// Reported per run: records/s; x-factor1, its ratio to factor 1 of the
// same stream; ceiling-x, what lanes that never wait could reach in the
// window given how Lane spreads the keys (a lane does 10 records per 200
// ms until its own records run out); peak-heap-MB (the Go heap's objects,
// sampled every 50 ms) and peak-rss-MB (VmHWM of the test process, reset
// at the start of the run).
//
//	go test -run '^$' -bench BenchmarkLanes -benchtime 1x -timeout 30m ./shared/coordinator/
//
// SHARDLINE_BENCH_LANES_WINDOW (a Go duration) changes the window.
func BenchmarkLanes(b *testing.B) {
	if testing.Short() {
		b.Skip("needs the stand-ins and minutes (run without -short)")
	}
	window := benchWindow(b, "SHARDLINE_BENCH_LANES_WINDOW", 20*time.Second)
	const call, batch = 200 * time.Millisecond, 10
	for _, sc := range []struct {
		keys, backlog int
		factors       []int
	}{
		{20, 8000, []int{1, 5, 10}},
		{100, 30000, []int{1, 10}},
	} {
		f := benchFixture(b, 1)
		putKeyed(b, f, sc.keys, sc.backlog)
		var base float64 // factor 1's records/s on this stream
		for _, factor := range sc.factors {
			b.Run(fmt.Sprintf("keys=%d/backlog=%d/factor=%d", sc.keys, sc.backlog, factor), func(b *testing.B) {
				for range b.N {
					f.app = standintest.UniqueName(b)
					perSec, peakHeap, peakRSS := runLanes(b, f, factor, batch, call, window)
					if factor == 1 {
						base = perSec
					}
					b.ReportMetric(perSec, "records/s")
					if base > 0 {
						b.ReportMetric(perSec/base, "x-factor1")
					}
					b.ReportMetric(laneCeiling(sc.keys, sc.backlog, factor, batch, call, window), "ceiling-x")
					b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
					if peakRSS > 0 {
						b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MB")
					}
				}
			})
		}
	}
}

// putKeyed puts n user records over keys partition keys (key-000, …) in
// turn, data "key-NNN:i", as KPL aggregates of 50.
func putKeyed(b *testing.B, f *fixture, keys, n int) {
	b.Helper()
	p, err := produce.New(context.Background(), f.kinesis, f.stream, 50)
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]kpl.UserRecord, n)
	for i := range recs {
		key := fmt.Sprintf("key-%03d", i%keys)
		recs[i] = kpl.UserRecord{PartitionKey: key, Data: fmt.Appendf(nil, "%s:%d", key, i)}
	}
	if err := p.Put(context.Background(), recs); err != nil {
		b.Fatal(err)
	}
}

// runLanes runs a worker on f's stream until window has passed since its
// first handler call, and returns the records handled by calls that
// returned within it, per second, with the peak heap and RSS.
func runLanes(b *testing.B, f *fixture, factor, batch int, call, window time.Duration) (perSec float64, peakHeap, peakRSS uint64) {
	b.Helper()
	var (
		first    atomic.Int64 // unix ns of the first call's start
		handled  atomic.Int64
		started  = make(chan struct{})
		startOne sync.Once
	)
	h := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		now := time.Now()
		if first.CompareAndSwap(0, now.UnixNano()) {
			startOne.Do(func() { close(started) })
		}
		time.Sleep(call) // the function's work
		if time.Since(time.Unix(0, first.Load())) <= window {
			handled.Add(int64(len(ev.Records)))
		}
		return events.KinesisEventResponse{}, nil
	}
	resetPeakRSS()
	w, err := coordinator.New(coordinator.Config{
		AppName: f.app, StreamName: f.stream, InitialPosition: stream.TrimHorizon, Handler: h,
		MaxRetryAttempts: -1, Kinesis: f.kinesis, DynamoDB: f.dynamo, BatchSize: batch, ParallelizationFactor: factor,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopSampling := sampleHeap(&peakHeap)
	select {
	case <-started:
	case err := <-done:
		b.Fatalf("worker stopped before the first call: %v", err)
	case <-time.After(time.Minute):
		b.Fatal("no handler call within a minute")
	}
	time.Sleep(time.Until(time.Unix(0, first.Load()).Add(window)))
	n := handled.Load()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	stopSampling()
	return float64(n) / window.Seconds(), peakHeap, readPeakRSS()
}

// laneCeiling is what factor lanes that never wait for each other or for
// the reader could deliver in window, over what one lane delivers: each
// lane makes window/call calls of batch records, as long as its own
// records (its keys' share of backlog) last.
func laneCeiling(keys, backlog, factor, batch int, call, window time.Duration) float64 {
	perLane := make([]int, factor)
	for k := range keys {
		n := backlog / keys
		if k < backlog%keys {
			n++
		}
		perLane[dispatch.Lane(fmt.Sprintf("key-%03d", k), factor)] += n
	}
	one := int(window/call) * batch
	total := 0
	for _, n := range perLane {
		total += min(n, one)
	}
	return float64(total) / float64(one)
}

// sampleHeap records the largest heap (objects) seen every 50 ms until the
// returned function is called.
func sampleHeap(peak *uint64) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// resetPeakRSS resets the process's VmHWM (Linux: clear_refs 5).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// readPeakRSS is the process's VmHWM in bytes, or 0 where it cannot be read.
func readPeakRSS() uint64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
