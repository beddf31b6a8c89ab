package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/testwait"
)

// TestTargetFunctionUnderRIE: `poller run -target-function function
// -lambda-endpoint <emulator>` delivers one shard's batches to a function
// under AWS's runtime interface emulator. Its answers differ from Lambda's
// and the poller reads them all: batchItemFailures resume at the failed
// item; a returned error (200 without X-Amz-Function-Error) and a crashed
// function (502) retry the whole batch; every record is handled exactly
// once in the end. The emulator serves only the name "function".
func TestTargetFunctionUnderRIE(t *testing.T) {
	e := newEnv(t, 1)
	dir := t.TempDir()
	bin, err := lambdaemu.Build(context.Background(), dir, "./testdata/kinesisfn")
	if err != nil {
		t.Fatal(err)
	}
	recordFile := filepath.Join(dir, "attempts.jsonl")
	log := &testwait.Buffer{} // the emulator's and the function's output, for a failure
	rie, err := standin.StartRIE(context.Background(), standin.RIEConfig{Bootstrap: bin, Name: "kinesisfn", Timeout: 10 * time.Second, Env: []string{"RECORD_FILE=" + recordFile}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rie.Stop()
		if t.Failed() {
			t.Logf("emulator log:\n%s", tail(log.String(), 4000))
		}
	})

	var want []string
	var recs []kpl.UserRecord
	for i := range 40 {
		id := fmt.Sprint("r", i)
		switch i {
		case 10:
			id = "fail-item:10"
		case 20:
			id = "fail-batch:20"
		case 30:
			id = "crash:30"
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
	poller := e.startPoller(t, "run", "-target-function", "function", "-lambda-endpoint", rie.Endpoint,
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
	var errors int
	for i, a := range atts[:len(atts)-1] {
		next := atts[i+1]
		switch {
		case a.Error:
			errors++
			if next.IDs[0] != a.IDs[0] {
				t.Errorf("after a function error the next batch starts at %s, want the same batch again from %s", next.IDs[0], a.IDs[0])
			}
		case a.FailedFrom >= 0:
			if next.IDs[0] != a.IDs[a.FailedFrom] {
				t.Errorf("after batchItemFailures at %s the next batch starts at %s, want the failed item", a.IDs[a.FailedFrom], next.IDs[0])
			}
		}
	}
	if errors != 2 {
		t.Errorf("%d failed invocations, want 2 (a returned error and a crash)", errors)
	}
	for _, w := range []string{"failing the batch on purpose", "HTTP 502"} {
		if !strings.Contains(poller.errOut.String(), w) {
			t.Errorf("the poller's log lacks %q:\n%s", w, tail(poller.errOut.String(), 4000))
		}
	}
	t.Logf("%d invocations for %d records (one partial failure, one returned error, one crash)", len(atts), len(want))
}
