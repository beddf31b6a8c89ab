package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/shardline"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// TestParkedShardStatusAndResume: a parked shard is not read by a running
// poller; status shows it with its reason; `resume -shard` clears it and
// the running poller reads it at once; resuming a shard that is not parked
// says so.
func TestParkedShardStatusAndResume(t *testing.T) {
	e := newEnv(t, 2)
	e.put(t, 30)
	ctx := context.Background()
	tbl := lease.NewTable(e.clients.DynamoDB, e.app)
	if err := tbl.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	parked := "shardId-000000000000"
	if err := tbl.Create(ctx, lease.Lease{Key: parked, Checkpoint: stream.Position{Seq: stream.TrimHorizon},
		Park: &lease.Park{Reason: "destination refused: test", Since: now, Until: now.Add(time.Hour), Count: 2}}); err != nil {
		t.Fatal(err)
	}
	p := e.startPoller(t, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-failover-time", "1500ms")
	shardOf := func() map[string]int {
		m := map[string]int{}
		for _, r := range parsePrinted(t, p.out.String()) {
			m[r.ShardID]++
		}
		return m
	}
	testwait.Until(t, time.Minute, "shard 1 read", func() bool { return shardOf()["shardId-000000000001"] > 0 })

	st := e.startPoller(t, "status", "-json")
	if code := st.wait(t, time.Minute); code != 0 {
		t.Fatalf("status: %s", st.errOut.String())
	}
	var rows []shardline.ShardStatus
	if err := json.Unmarshal([]byte(st.out.String()), &rows); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.ShardID == parked && (r.State != "parked" || r.Parked == nil || r.Parked.Reason != "destination refused: test" || r.Parked.Count != 2) {
			t.Errorf("status row %+v: want state parked with the reason", r)
		}
	}
	st = e.startPoller(t, "status")
	st.wait(t, time.Minute)
	if !strings.Contains(st.out.String(), "PARKED x2") || !strings.Contains(st.out.String(), "destination refused: test") {
		t.Errorf("status table does not show the park:\n%s", st.out.String())
	}
	if n := shardOf()[parked]; n != 0 {
		t.Fatalf("the parked shard was read (%d records) before its retry time", n)
	}

	r := e.startPoller(t, "resume", "-shard", parked)
	if code := r.wait(t, time.Minute); code != 0 || !strings.Contains(r.out.String(), "resumed") {
		t.Fatalf("resume: exit %d, %q %q", code, r.out.String(), r.errOut.String())
	}
	resumed := time.Now()
	testwait.Until(t, 30*time.Second, "all 30 records once the shard is resumed", func() bool { return countLines(p.out.String()) >= 30 })
	t.Logf("the resumed shard was read within %s", time.Since(resumed).Round(10*time.Millisecond))

	r = e.startPoller(t, "resume", "-shard", parked)
	if code := r.wait(t, time.Minute); code != 1 || !strings.Contains(r.errOut.String(), "not parked") {
		t.Errorf("resume of a shard not parked: exit %d, stderr %q; want 1 and 'not parked'", code, r.errOut.String())
	}
	r = e.startPoller(t, "resume")
	if code := r.wait(t, time.Minute); code != 2 || !strings.Contains(r.errOut.String(), "-shard") {
		t.Errorf("resume without -shard: exit %d, stderr %q; want 2 naming -shard", code, r.errOut.String())
	}
}

// TestDuplicateWorkerIDExits2: a second poller given a worker id already in
// use says so in one line naming the id and exits with code 2; the first
// keeps running.
func TestDuplicateWorkerIDExits2(t *testing.T) {
	e := newEnv(t, 2)
	e.put(t, 10)
	first := e.startPoller(t, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-worker-id", "twin", "-failover-time", "1500ms")
	testwait.Until(t, time.Minute, "10 records", func() bool { return countLines(first.out.String()) >= 10 })
	second := e.startPoller(t, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-worker-id", "twin", "-failover-time", "1500ms")
	if code := second.wait(t, 30*time.Second); code != 2 {
		t.Fatalf("second poller with the same worker id: exit %d, want 2; stderr:\n%s", code, second.errOut.String())
	}
	var named int
	for _, l := range strings.Split(second.errOut.String(), "\n") {
		// Off a terminal the exit line is JSON like the logs: its msg.
		var m struct{ Msg string }
		if json.Unmarshal([]byte(l), &m) == nil {
			l = m.Msg
		}
		if strings.HasPrefix(l, "poller: ") && strings.Contains(l, `worker id "twin"`) {
			named++
		}
	}
	if named != 1 {
		t.Errorf("want one line naming the worker id; stderr:\n%s", second.errOut.String())
	}
	select {
	case <-first.done:
		t.Fatalf("the first poller stopped: %s", first.errOut.String())
	default:
	}
}
