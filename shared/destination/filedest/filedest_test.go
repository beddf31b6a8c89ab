package filedest

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/stream"
)

const shard = "shardId-000000000001"

func failure(n int, at time.Time) dispatch.Failure {
	var recs []stream.Record
	for i := range n {
		recs = append(recs, stream.Record{ShardID: shard, SequenceNumber: "4966000000000000000000000000000000000000000000000000000" + string(rune('0'+i)),
			SubSequenceNumber: int64(i), PartitionKey: "k", Data: []byte{byte(i), '\n', 0xff}, ApproximateArrivalTimestamp: at})
	}
	return dispatch.Failure{ShardID: shard, StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s", Records: recs, Attempts: 2,
		Reason: dispatch.ReasonRetriesExhausted, Condition: dispatch.ConditionRetriesExhausted, FunctionError: "Unhandled", Time: at}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestParsePath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"file:///var/log/failed.jsonl", "/var/log/failed.jsonl"},
		{"file://localhost/var/log/failed.jsonl", "/var/log/failed.jsonl"},
		{"file:///tmp/with%20space.jsonl", "/tmp/with space.jsonl"},
		{"file://", ""},
		{"file:///", ""},
		{"file:///var/log/", ""},
		{"file://otherhost/x.jsonl", ""},
		{"file://relative.jsonl", ""},
		{"file:relative.jsonl", ""},
		{"/var/log/failed.jsonl", ""},
		{"s3://bucket/x", ""},
	} {
		got, err := ParsePath(tt.in)
		if tt.want == "" {
			if err == nil || !strings.Contains(err.Error(), Form) || !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParsePath(%q) = %q, %v; want an error naming the value and %s", tt.in, got, err, Form)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestSend: one line per batch given up, the on-failure record with the
// records; a new file has mode 0600.
func TestSend(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	d := New(path)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	sent := []dispatch.Failure{failure(2, at), failure(1, at.Add(time.Second))}
	for _, f := range sent {
		if err := d.Send(context.Background(), f); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != Mode {
		t.Errorf("file mode %v, want %v", got, os.FileMode(Mode))
	}
	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per batch (2)", len(lines))
	}
	for i, l := range lines {
		want, _ := record.Marshal(record.New(sent[i]))
		if l != string(want) {
			t.Errorf("line %d = %s\nwant %s", i+1, l, want)
		}
		var r record.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if len(r.Records) != len(sent[i].Records) || r.KinesisBatchInfo.BatchSize != len(sent[i].Records) {
			t.Errorf("line %d: %d records, want %d", i+1, len(r.Records), len(sent[i].Records))
		}
	}
}

// TestExistingFileKeepsMode: a file that exists is appended to, its mode
// left as the operator set it.
func TestExistingFileKeepsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	if err := os.WriteFile(path, []byte("{}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := New(path).Send(context.Background(), failure(1, time.Now())); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
	if n := len(readLines(t, path)); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
}

// TestCutLineEnded: after a line cut short, the next record starts on a
// line of its own.
func TestCutLineEnded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	if err := os.WriteFile(path, []byte(`{"requestContext":{"req`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := New(path).Send(context.Background(), failure(1, time.Now())); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 2 || !json.Valid([]byte(lines[1])) {
		t.Errorf("lines = %q, want the cut line, then a whole record", lines)
	}
}

// TestRefuses: a file that cannot be written is a Send error naming it.
func TestRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "no-such-dir", "failed.jsonl"), dir} {
		err := New(path).Send(context.Background(), failure(1, time.Now()))
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Send to %s: %v, want an error naming it", path, err)
		}
	}
}
