package coordinator_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/testwait"
)

// TestProgressSince: rates and failures are the differences between two
// snapshots over the time between them; the lag is the largest of the
// shards held; shards first seen in the later snapshot count in full.
func TestProgressSince(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	shard := func(id string, handled, bytes, failures, readFailures int64, behind int64, held bool) coordinator.ShardStats {
		return coordinator.ShardStats{ShardID: id, MillisBehindLatest: behind, Held: held,
			Dispatch: dispatch.Stats{Handled: handled, HandledBytes: bytes, Failures: failures},
			Fetch:    fetch.Stats{GetRecordsFailed: readFailures}}
	}
	prev := coordinator.Snapshot{Time: t0, Shards: []coordinator.ShardStats{
		shard("a", 100, 1000, 1, 0, 500, true),
		shard("b", 50, 500, 0, 2, 0, true),
	}}
	cur := coordinator.Snapshot{Time: t0.Add(2 * time.Second), CurrentLeases: 2, ParkedShards: 1, Shards: []coordinator.ShardStats{
		shard("a", 300, 3000, 3, 0, 900, true),
		shard("b", 50, 500, 0, 5, 70000, false), // released: its lag is no longer ours
		shard("c", 100, 1000, 0, 0, 200, true),  // new
	}}
	p := cur.Since(prev)
	want := coordinator.Progress{Elapsed: 2 * time.Second, Held: 2, Parked: 1, RecordsPerSec: 150, BytesPerSec: 1500,
		MaxLag: 900, Failures: 2, ReadFailures: 3, AllFailures: 3}
	if p != want {
		t.Errorf("Since = %+v,\n want %+v", p, want)
	}
	if p := (coordinator.Snapshot{Time: t0}).Since(coordinator.Snapshot{Time: t0}); p.MaxLag != -1 || p.RecordsPerSec != 0 {
		t.Errorf("no shards, no time: %+v, want lag -1 and no rate", p)
	}
}

// TestLogLines: a worker logs its life at INFO (started, a lease taken and
// a shard started per shard, a summary every SummaryInterval, each lease
// released, stopped), a failed handler call at WARN, and at DEBUG each
// GetRecords call and each handler call; every shard's line carries its
// shard.
func TestLogLines(t *testing.T) {
	f := newFixture(t, 2)
	want := f.put(10, 40, 0, 0)
	c := &collector{fail: func(call int, _ events.KinesisEvent) ([]int, error) {
		if call == 1 {
			return nil, errors.New("first call fails")
		}
		return nil, nil
	}}
	var logs testwait.Buffer
	r := f.start(c.handle, func(cfg *coordinator.Config) {
		cfg.WorkerID = "w-logs"
		cfg.SummaryInterval = 100 * time.Millisecond
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	testwait.Until(t, time.Minute, "every record and a summary that saw them", func() bool {
		return c.count() >= len(want) && lines(&logs, `"msg":"worker summary"`, `"shards":2`, `"recordsPerSec":`) > 0
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	type line map[string]any
	var all []line
	for _, s := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("not a JSON line: %q", s)
		}
		all = append(all, l)
	}
	count := func(level, msg string, keys ...string) (n int) {
		for _, l := range all {
			if l["level"] != level || l["msg"] != msg {
				continue
			}
			ok := l["worker"] == "w-logs"
			for _, k := range keys {
				_, has := l[k]
				ok = ok && has
			}
			if ok {
				n++
			}
		}
		return n
	}
	checks := []struct {
		level, msg string
		keys       []string
		min, max   int
	}{
		{"INFO", "worker started", nil, 1, 1},
		{"INFO", "lease claimed", []string{"shard", "checkpoint"}, 2, 2},
		{"INFO", "shard started", []string{"shard", "from"}, 2, 2},
		{"INFO", "worker summary", []string{"shards", "recordsPerSec", "bytesPerSec", "maxLagMs", "failures", "readFailures", "givenUp", "parked", "interval"}, 1, 1 << 20},
		{"WARN", "handler failed; retrying", []string{"shard", "error", "attempt"}, 1, 1},
		{"DEBUG", "GetRecords", []string{"shard", "records", "millisBehindLatest", "duration"}, 2, 1 << 20},
		{"DEBUG", "handler call", []string{"shard", "records", "first", "last", "duration", "outcome"}, 2, 1 << 20},
		{"INFO", "lease released", []string{"shard", "checkpoint"}, 2, 2},
		{"INFO", "worker stopped", []string{"handled", "failures"}, 1, 1},
	}
	for _, ch := range checks {
		if n := count(ch.level, ch.msg, ch.keys...); n < ch.min || n > ch.max {
			t.Errorf("%d %s %q lines with %v, want %d–%d", n, ch.level, ch.msg, ch.keys, ch.min, ch.max)
		}
	}
	if last := all[len(all)-1]; last["msg"] != "worker stopped" {
		t.Errorf("the last line is %v, want worker stopped (no summary after it)", last)
	}
	outcomes := map[any]int{}
	var summed float64
	for _, l := range all {
		if l["msg"] == "handler call" {
			outcomes[l["outcome"]]++
		}
		if l["msg"] == "worker summary" {
			summed += l["recordsPerSec"].(float64) * 0.1 // about the interval
		}
	}
	if outcomes["error"] != 1 || outcomes["ok"] < 2 {
		t.Errorf("handler call outcomes %v, want one error and the rest ok", outcomes)
	}
	if summed < 1 {
		t.Errorf("the summaries' records/s add up to about %.1f records, want some", summed)
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs.String())
	}
}
