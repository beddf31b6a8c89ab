package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/testwait"
)

// resumeArgs finds the "-shard S -from X -until U" fragments of a replay's
// last line.
var resumeArgs = regexp.MustCompile(`-shard (\S+) -from (\S+) -until ([^\s;"]+)`)

// TestReplayInterrupted: SIGINT (text logs) and SIGTERM (JSON logs) during
// a replay in a real poller process: the reads stop, the handler calls in
// flight finish, one last line "replay interrupted" gives each shard not
// finished as -shard S -from X -until U, and the exit code is 130 (SIGINT)
// or 143 (SIGTERM). Replaying each of those ranges then handles exactly
// the records the first replay did not: none twice, none lost.
func TestReplayInterrupted(t *testing.T) {
	e := newEnv(t, 2)
	const total = 400
	e.put(t, total)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		code int
		json bool
	}{
		{"SIGINT", syscall.SIGINT, 130, false},
		{"SIGTERM", syscall.SIGTERM, 143, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			format := "text"
			if tc.json {
				format = "json"
			}
			p := e.startPoller(t, "replay", "-handler", "print", "-from", "TRIM_HORIZON", "-read-share", "0",
				"-rate", "100", "-batch-size", "10", "-log-format", format)
			testwait.Until(t, time.Minute, "40 records printed", func() bool { return countLines(p.out.String()) >= 40 })
			_ = p.cmd.Process.Signal(tc.sig)
			if code := p.wait(t, 30*time.Second); code != tc.code {
				t.Fatalf("exit code %d after %v, want %d\n%s", code, tc.sig, tc.code, tail(p.errOut.String(), 3000))
			}
			lines := strings.Split(strings.TrimSpace(p.errOut.String()), "\n")
			last := lines[len(lines)-1]
			if tc.json {
				for _, l := range lines {
					if !json.Valid([]byte(l)) {
						t.Errorf("a line that is not JSON with -log-format json: %q", l)
					}
				}
				var m struct {
					Msg      string `json:"msg"`
					ExitCode int    `json:"exitCode"`
					Resume   []struct {
						Shard, From, Until string
					} `json:"resume"`
				}
				if err := json.Unmarshal([]byte(last), &m); err != nil {
					t.Fatalf("last line %q: %v", last, err)
				}
				if m.ExitCode != tc.code || len(m.Resume) == 0 {
					t.Errorf("last line %q: want exitCode %d and the resume positions", last, tc.code)
				}
				last = m.Msg
			}
			if !strings.Contains(last, "poller: replay interrupted: ") || !strings.Contains(last, "resume each (in this order) with the same settings and: -shard ") {
				t.Fatalf("last line %q: want \"replay interrupted\" and where to resume", last)
			}
			if n := strings.Count(p.errOut.String(), "replay interrupted"); n != 1 {
				t.Errorf("\"replay interrupted\" said %d times, want once", n)
			}
			first := parsePrinted(t, p.out.String())
			frags := resumeArgs.FindAllStringSubmatch(last, -1)
			if len(frags) == 0 {
				t.Fatalf("no -shard S -from X -until U in %q", last)
			}
			seen := map[string]int{}
			for _, r := range first {
				seen[r.Data]++
			}
			for _, f := range frags {
				r := e.startPoller(t, "replay", "-handler", "print", "-shard", f[1], "-from", f[2], "-until", f[3], "-read-share", "0", "-log-format", "text")
				if code := r.wait(t, time.Minute); code != 0 {
					t.Fatalf("resume %s: exit %d\n%s", f[0], code, tail(r.errOut.String(), 3000))
				}
				again := parsePrinted(t, r.out.String())
				if len(again) > 0 && again[0].ShardID != f[1] {
					t.Errorf("resume %s printed records of %s", f[0], again[0].ShardID)
				}
				for _, r := range again {
					seen[r.Data]++
				}
			}
			for i := range total {
				if n := seen[fmt.Sprint(i)]; n != 1 {
					t.Errorf("record %d handled %d times over the interrupted replay and its resumes, want once", i, n)
				}
			}
			t.Logf("%d records before %v, %d shards to resume: %s", len(first), tc.sig, len(frags), last)
		})
	}
}

// TestReplayTargetFunction: `poller replay -target-function` invokes a
// function hosted on the Lambda Runtime API with each batch of the range,
// as run does: a batchItemFailures answer resumes at the failed item, a
// function error retries the batch, every record is handled once, and the
// replay ends with exit 0 and its summary.
func TestReplayTargetFunction(t *testing.T) {
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
	r := e.startPoller(t, "replay", "-target-function", emu.ARN("kinesisfn"), "-lambda-endpoint", emu.Endpoint,
		"-from", "TRIM_HORIZON", "-read-share", "0", "-batch-size", "8", "-log-format", "text")
	if code := r.wait(t, time.Minute); code != 0 {
		t.Fatalf("replay -target-function: exit %d\n%s", code, tail(r.errOut.String(), 3000))
	}
	handled := map[string]int{}
	atts := readAttempts(t, recordFile)
	var failedItem, failedBatch bool
	for i, a := range atts {
		ids := a.IDs
		switch {
		case a.Error:
			failedBatch = true
			if i+1 >= len(atts) || atts[i+1].IDs[0] != a.IDs[0] {
				t.Errorf("after the function error on %v the next call does not retry the batch", a.IDs)
			}
			continue
		case a.FailedFrom >= 0:
			failedItem = true
			if i+1 >= len(atts) || atts[i+1].IDs[0] != a.IDs[a.FailedFrom] {
				t.Errorf("after batchItemFailures at %s the next call does not start at it", a.IDs[a.FailedFrom])
			}
			ids = ids[:a.FailedFrom]
		}
		for _, id := range ids {
			handled[id]++
		}
	}
	if !failedItem || !failedBatch {
		t.Errorf("the function reported no partial failure (%v) or no function error (%v)", failedItem, failedBatch)
	}
	for _, id := range want {
		if handled[id] != 1 {
			t.Errorf("record %s handled %d times, want once", id, handled[id])
		}
	}
	if logs := r.errOut.String(); !strings.Contains(logs, `msg="replay done"`) || !strings.Contains(logs, "handled=30") {
		t.Errorf("no summary with handled=30:\n%s", tail(logs, 3000))
	}
}
