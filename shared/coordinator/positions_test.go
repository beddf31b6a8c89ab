package coordinator_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/stream"
)

// TestResumeMidAggregate: a drain after a batch that ends inside an
// aggregate checkpoints (seq, sub) and the next worker starts at the next
// user record of that aggregate.
func TestResumeMidAggregate(t *testing.T) {
	f := newFixture(t, 1)
	f.put(1, 30, 0, 10) // 3 aggregates of 10 user records
	release := make(chan struct{})
	first := make(chan struct{})
	c1 := &collector{fail: func(call int, ev events.KinesisEvent) ([]int, error) {
		if call == 1 {
			close(first)
			<-release // hold the first batch until the drain has begun
		}
		return nil, nil
	}}
	r1 := f.start(c1.handle, func(c *coordinator.Config) { c.BatchSize = 7 })
	select {
	case <-first:
	case <-time.After(time.Minute):
		t.Fatal("no batch within a minute")
	}
	r1.cancel() // drain: the batch in flight finishes, nothing more starts
	<-r1.w.Draining()
	close(release)
	if err := r1.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	recs := c1.snapshot()
	if len(recs) != 7 {
		t.Fatalf("first worker handled %d records, want the 7 of its one batch", len(recs))
	}
	cp := f.leases()["shardId-000000000000"].Checkpoint
	if cp != recs[6].pos || cp.SubSeq != 6 {
		t.Fatalf("checkpoint after drain = %s, want %s (sub-sequence 6)", cp, recs[6].pos)
	}
	c2 := &collector{}
	r2 := f.start(c2.handle, nil)
	testwait.Until(t, time.Minute, "the other 23 records", func() bool { return c2.count() >= 23 })
	r2.stop(t)
	again := c2.snapshot()
	if len(again) != 23 {
		t.Fatalf("second worker handled %d records, want 23", len(again))
	}
	if want := (stream.Position{Seq: cp.Seq, SubSeq: 7}); again[0].pos != want {
		t.Fatalf("second worker started at %s, want the next user record %s", again[0].pos, want)
	}
	checkOrder(t, append(recs, again...))
}

// TestInitialPositions: TRIM_HORIZON reads what is there, LATEST only what
// comes after the start, AT_TIMESTAMP what arrived from that time on, and a
// checkpoint beats every initial position.
func TestInitialPositions(t *testing.T) {
	t.Run("TRIM_HORIZON", func(t *testing.T) {
		f := newFixture(t, 2)
		want := f.put(10, 50, 0, 0)
		c := &collector{}
		r := f.start(c.handle, nil)
		testwait.Until(t, time.Minute, "50 records", func() bool { return c.count() >= 50 })
		r.stop(t)
		if got := len(c.snapshot()); got != len(want) {
			t.Fatalf("got %d records, want %d", got, len(want))
		}
	})
	t.Run("LATEST", func(t *testing.T) {
		f := newFixture(t, 2)
		f.put(10, 50, 0, 0) // before the start: not to be read
		c := &collector{}
		r := f.start(c.handle, func(c *coordinator.Config) { c.InitialPosition = stream.Latest })
		waitReading(t, r, 2)
		after := f.put(10, 20, 50, 0)
		testwait.Until(t, time.Minute, "20 records", func() bool { return c.count() >= 20 })
		r.stop(t)
		assertIDs(t, c.snapshot(), after)
	})
	t.Run("AT_TIMESTAMP", func(t *testing.T) {
		f := newFixture(t, 2)
		f.put(10, 50, 0, 0)
		ts := time.Now()
		testwait.Until(t, time.Second, "the clock to move on", func() bool { return time.Since(ts) > 50*time.Millisecond })
		after := f.put(10, 30, 50, 0)
		c := &collector{}
		r := f.start(c.handle, func(c *coordinator.Config) {
			c.InitialPosition, c.InitialTimestamp = stream.AtTimestamp, ts
		})
		testwait.Until(t, time.Minute, "30 records", func() bool { return c.count() >= 30 })
		waitReading(t, r, 2)
		r.stop(t)
		assertIDs(t, c.snapshot(), after)
	})
	t.Run("checkpoint beats initial position", func(t *testing.T) {
		f := newFixture(t, 2)
		f.put(10, 40, 0, 0)
		c1 := &collector{}
		r1 := f.start(c1.handle, nil) // TRIM_HORIZON
		testwait.Until(t, time.Minute, "40 records", func() bool { return c1.count() >= 40 })
		r1.stop(t)
		// Each later run starts from the checkpoints, whatever its
		// initial position: not from the start, not from "now".
		next := 40
		for _, pos := range []string{stream.TrimHorizon, stream.Latest} {
			more := f.put(10, 25, next, 0)
			next += 25
			c := &collector{}
			r := f.start(c.handle, func(c *coordinator.Config) { c.InitialPosition = pos })
			testwait.Until(t, time.Minute, "25 records", func() bool { return c.count() >= 25 })
			waitReading(t, r, 2)
			r.stop(t)
			assertIDs(t, c.snapshot(), more)
		}
	})
}

// waitReading waits until the worker has read every one of its n shards
// at least once (so a LATEST iterator exists); their stats say they poll.
func waitReading(t *testing.T, r *running, n int) {
	t.Helper()
	testwait.Until(t, time.Minute, "every shard read once", func() bool {
		read := 0
		for _, s := range r.w.Stats() {
			if !s.LastRead.IsZero() {
				read++
			}
		}
		return read >= n
	})
	for _, s := range r.w.Stats() {
		if s.Mode != fetch.ModePolling {
			t.Errorf("shard %s reads in mode %q, want %q", s.ShardID, s.Mode, fetch.ModePolling)
		}
	}
}

func assertIDs(t *testing.T, recs []got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("record %s delivered %d times, want 1", id, seen[id])
		}
		delete(seen, id)
	}
	for id, n := range seen {
		t.Errorf("record %s delivered %d times, want none", id, n)
	}
}

// TestPartialBatchFailure: batchItemFailures resume at the lowest failed
// item; the records before it are not delivered again.
func TestPartialBatchFailure(t *testing.T) {
	for _, agg := range []int{0, 10} {
		name := map[int]string{0: "plain", 10: "aggregated"}[agg]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, 1)
			want := f.put(1, 40, 0, agg)
			var firstOfRetry string
			c := &collector{}
			c.fail = func(call int, ev events.KinesisEvent) ([]int, error) {
				switch call {
				case 1:
					if len(ev.Records) < 10 {
						return nil, errors.New("test wants a batch of at least 10")
					}
					return []int{7, 5}, nil // lowest failed: 5
				case 2:
					firstOfRetry = string(ev.Records[0].Kinesis.Data)
				}
				return nil, nil
			}
			r := f.start(c.handle, func(cfg *coordinator.Config) { cfg.BatchSize = 20 })
			testwait.Until(t, time.Minute, "40 records", func() bool { return c.count() >= 40 })
			r.stop(t)
			if firstOfRetry != want[5] {
				t.Fatalf("retry started at %q, want the failed item %q", firstOfRetry, want[5])
			}
			assertIDs(t, c.snapshot(), want)
		})
	}
}

// TestHandlerErrorNeverCheckpointsPast: while the handler fails a batch,
// the checkpoint stays before it; with no retries left and no on-failure
// destination the shard is parked (not the worker stopped) and says why.
func TestHandlerErrorNeverCheckpointsPast(t *testing.T) {
	f := newFixture(t, 1)
	want := f.put(1, 10, 0, 0)
	calls := make(chan int, 100)
	c := &collector{fail: func(call int, ev events.KinesisEvent) ([]int, error) {
		calls <- call
		return nil, errors.New("boom")
	}}
	r := f.start(c.handle, func(cfg *coordinator.Config) { cfg.MaxRetryAttempts = 2; cfg.ParkRetryWait = time.Hour })
	testwait.Until(t, time.Minute, "the shard parked", func() bool { return f.leases()["shardId-000000000000"].Park != nil })
	noReturn(t, r)
	if len(calls) != 3 {
		t.Fatalf("handler called %d times, want 3 (1 + 2 retries)", len(calls))
	}
	l := f.leases()["shardId-000000000000"]
	if l.Checkpoint.Seq != stream.TrimHorizon || l.Owner != "" {
		t.Fatalf("lease after give-up: %s, want checkpoint TRIM_HORIZON and released", l.String())
	}
	if !strings.Contains(l.Park.Reason, "boom") || !strings.Contains(l.Park.Reason, "after 3 attempts") {
		t.Errorf("park reason %q: want the attempts and the handler's error", l.Park.Reason)
	}
	if sum := r.w.Summary(); len(sum.Parked) != 1 || sum.Parked[0].ShardID != l.Key {
		t.Errorf("summary parked = %+v, want the shard", sum.Parked)
	}
	if c.count() != 0 {
		t.Fatalf("%d records reported handled, want 0 of %d", c.count(), len(want))
	}
}

// TestIdleCheckpoint: when records stop coming, the last one done is still
// checkpointed once the interval has passed, while the worker runs (not
// only at shutdown).
func TestIdleCheckpoint(t *testing.T) {
	f := newFixture(t, 1)
	f.put(1, 10, 0, 0)
	c := &collector{}
	f.start(c.handle, func(cfg *coordinator.Config) { cfg.CheckpointInterval = time.Second })
	testwait.Until(t, time.Minute, "10 records", func() bool { return c.count() >= 10 })
	last := c.snapshot()[9].pos
	testwait.Until(t, 10*time.Second, "the checkpoint at the last record while idle", func() bool {
		return f.leases()["shardId-000000000000"].Checkpoint == last
	})
}
