package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
)

type attempt struct {
	IDs        []string `json:"ids"`
	FailedFrom int      `json:"failedFrom"`
	Error      bool     `json:"error"`
}

func readAttempts(t *testing.T, path string) []attempt {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []attempt
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var a attempt
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			continue // a line being written
		}
		out = append(out, a)
	}
	return out
}

// TestTargetFunction: `poller run -target-function` invokes a function
// hosted on the Lambda Runtime API with each batch; a batchItemFailures
// answer resumes at the failed item, a function error retries the whole
// batch, and every record is handled exactly once in the end.
func TestTargetFunction(t *testing.T) { targetFunction(t, false) }

// TestTargetFunctionFanOut (issue 18) is TestTargetFunction with the
// poller reading over a consumer (-consumer-name; kinesis-mock behind the
// FanOut proxy): the same deliveries to the function.
func TestTargetFunctionFanOut(t *testing.T) { targetFunction(t, true) }

func targetFunction(t *testing.T, fanOut bool) {
	e := newEnv(t, 1)
	dir := t.TempDir()
	bin, err := lambdaemu.Build(context.Background(), dir, "./testdata/kinesisfn")
	if err != nil {
		t.Fatal(err)
	}
	recordFile := filepath.Join(dir, "attempts.jsonl")
	emu, err := lambdaemu.Start(context.Background(), lambdaemu.Function{Name: "kinesisfn", Path: bin, Timeout: 10 * time.Second, Env: []string{"RECORD_FILE=" + recordFile}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })

	var want []string
	var recs []kpl.UserRecord
	for i := range 30 {
		id := fmt.Sprint("r", i)
		switch i {
		case 10:
			id = "fail-item:10"
		case 20:
			id = "fail-batch:20"
		}
		want = append(want, id)
		recs = append(recs, kpl.UserRecord{PartitionKey: "k", Data: []byte(id)})
	}
	p, err := produce.New(context.Background(), e.clients.Kinesis, e.stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	var extra []string
	if fanOut {
		proxy := standintest.FanOutProxy(t, e.kinesisEP)
		extra = []string{"SHARDLINE_KINESIS_ENDPOINT=" + proxy.URL, "SHARDLINE_CONSUMER_NAME=" + e.app + "-efo"}
	}
	poller := e.startPollerEnv(t, extra, "run", "-target-function", emu.ARN("kinesisfn"), "-lambda-endpoint", emu.Endpoint,
		"-initial-position", "TRIM_HORIZON", "-batch-size", "8")
	handled := func() map[string]int {
		n := map[string]int{}
		for _, a := range readAttempts(t, recordFile) {
			if a.Error {
				continue
			}
			ids := a.IDs
			if a.FailedFrom >= 0 {
				ids = ids[:a.FailedFrom]
			}
			for _, id := range ids {
				n[id]++
			}
		}
		return n
	}
	testwait.Until(t, time.Minute, "every record handled", func() bool { return len(handled()) == len(want) })
	for _, id := range want {
		if n := handled()[id]; n != 1 {
			t.Errorf("record %s handled %d times, want 1", id, n)
		}
	}
	atts := readAttempts(t, recordFile)
	for i, a := range atts[:len(atts)-1] {
		next := atts[i+1]
		switch {
		case a.Error:
			if next.IDs[0] != a.IDs[0] {
				t.Errorf("after a function error the next batch starts at %s, want the same batch again from %s", next.IDs[0], a.IDs[0])
			}
		case a.FailedFrom >= 0:
			if next.IDs[0] != a.IDs[a.FailedFrom] {
				t.Errorf("after batchItemFailures at %s the next batch starts at %s, want the failed item", a.IDs[a.FailedFrom], next.IDs[0])
			}
		}
	}
	if logs := poller.errOut.String(); fanOut && !strings.Contains(logs, "subscribed to the shard (enhanced fan-out)") {
		t.Errorf("the poller never subscribed (enhanced fan-out):\n%s", tail(logs, 3000))
	}
	t.Logf("%d invocations for %d records (one partial failure, one function error)", len(atts), len(want))
}

// TestTargetNeverInvoked (issue 17): with -target-function on an endpoint
// that refuses connections, -max-retry-attempts 0 and a destination, no
// record is given up — the function was never invoked, so no attempt was
// used — the shard keeps trying, says why, and the checkpoint stays.
func TestTargetNeverInvoked(t *testing.T) {
	e := newEnv(t, 1)
	e.put(t, 5)
	dest := filepath.Join(t.TempDir(), "given-up.jsonl")
	p := e.startPoller(t, "run", "-target-function", "consumer", "-lambda-endpoint", testwait.RefusedEndpoint(t),
		"-initial-position", "TRIM_HORIZON", "-max-retry-attempts", "0", "-on-failure", "file://"+dest, "-log-format", "json")
	testwait.Until(t, time.Minute, "three WARN lines: function not invoked", func() bool {
		return strings.Count(p.errOut.String(), "function not invoked; retrying") >= 3
	})
	if b, err := os.ReadFile(dest); err == nil && len(b) > 0 {
		t.Fatalf("records given up although the function was never invoked:\n%s", b)
	}
	for _, l := range leasesOf(t, e) {
		if l.Checkpoint.Seq != "TRIM_HORIZON" {
			t.Errorf("checkpoint of %s moved to %s with nothing delivered", l.Key, l.Checkpoint)
		}
	}
}
