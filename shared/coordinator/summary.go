package coordinator

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Progress is what a worker did between two snapshots: the figures of its
// summary log line and of `poller run`'s live view.
type Progress struct {
	Elapsed time.Duration
	Held    int64 // shards held now
	Parked  int64 // shards parked in the lease table, as last seen
	// RecordsPerSec is user records the handler finished with, per
	// second; BytesPerSec their data.
	RecordsPerSec float64
	BytesPerSec   float64
	// MaxLag is the largest MillisBehindLatest of the shards held, in
	// milliseconds; -1 before any read.
	MaxLag       int64
	Failures     int64 // failed handler calls in the interval
	ReadFailures int64 // failed GetRecords calls in the interval, throttles included
	GivenUp      int64 // user records given up in the interval
	// AllFailures is failed handler calls since the worker started.
	AllFailures int64
}

// Since is the progress from prev (an earlier snapshot of the same
// worker) to s.
func (s Snapshot) Since(prev Snapshot) Progress {
	p := Progress{Elapsed: s.Time.Sub(prev.Time), Held: s.CurrentLeases, Parked: s.ParkedShards, MaxLag: -1}
	var handled, bytes int64
	for _, sh := range s.Shards {
		handled += sh.Dispatch.Handled
		bytes += sh.Dispatch.HandledBytes
		p.Failures += sh.Dispatch.Failures
		p.ReadFailures += sh.Fetch.GetRecordsFailed
		p.GivenUp += sh.Dispatch.GivenUp
		if sh.Held {
			p.MaxLag = max(p.MaxLag, sh.MillisBehindLatest)
		}
	}
	p.AllFailures = p.Failures
	for _, sh := range prev.Shards {
		handled -= sh.Dispatch.Handled
		bytes -= sh.Dispatch.HandledBytes
		p.Failures -= sh.Dispatch.Failures
		p.ReadFailures -= sh.Fetch.GetRecordsFailed
		p.GivenUp -= sh.Dispatch.GivenUp
	}
	if secs := p.Elapsed.Seconds(); secs > 0 {
		p.RecordsPerSec = float64(handled) / secs
		p.BytesPerSec = float64(bytes) / secs
	}
	return p
}

// LogAttrs are the summary line's keys and values: shards, recordsPerSec,
// bytesPerSec, maxLagMs (absent before any read), failures, readFailures,
// givenUp, parked.
func (p Progress) LogAttrs() []any {
	attrs := []any{
		slog.Int64("shards", p.Held),
		slog.Float64("recordsPerSec", round1(p.RecordsPerSec)),
		slog.Float64("bytesPerSec", math.Round(p.BytesPerSec)),
	}
	if p.MaxLag >= 0 {
		attrs = append(attrs, slog.Int64("maxLagMs", p.MaxLag))
	}
	return append(attrs,
		slog.Int64("failures", p.Failures),
		slog.Int64("readFailures", p.ReadFailures),
		slog.Int64("givenUp", p.GivenUp),
		slog.Int64("parked", p.Parked),
		slog.Duration("interval", p.Elapsed.Round(time.Millisecond)),
	)
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// startSummary logs a "worker summary" line at INFO every SummaryInterval
// until the returned function is called. Without INFO (or with a negative
// interval) it starts nothing.
func (w *Worker) startSummary(ctx context.Context) (stop func()) {
	if w.cfg.SummaryInterval <= 0 || !w.log.Enabled(ctx, slog.LevelInfo) {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.cfg.SummaryInterval)
		defer t.Stop()
		prev := w.Snapshot()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cur := w.Snapshot()
			w.log.Info("worker summary", cur.Since(prev).LogAttrs()...)
			prev = cur
		}
	})
	return func() { cancel(); wg.Wait() }
}
