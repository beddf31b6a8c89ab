package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

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
