package redrive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/destination/filedest"
	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/stream"
)

// sink is an in-process handler that records what it was given, and
// fails (the whole batch) while a record's data is in fail.
type sink struct {
	mu   sync.Mutex
	got  map[string]int
	keys map[string][]string // shard/key → data in the order handled
	fail map[string]bool
}

func newSink(fail ...string) *sink {
	s := &sink{got: map[string]int{}, keys: map[string][]string{}, fail: map[string]bool{}}
	for _, f := range fail {
		s.fail[f] = true
	}
	return s
}

func (s *sink) handle(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range ev.Records {
		if s.fail[string(r.Kinesis.Data)] {
			return events.KinesisEventResponse{}, fmt.Errorf("poison %s", r.Kinesis.Data)
		}
	}
	for _, r := range ev.Records {
		s.got[string(r.Kinesis.Data)]++
		shard, _, _, _ := stream.ParseEventID(r.EventID)
		k := shard + "/" + r.Kinesis.PartitionKey
		s.keys[k] = append(s.keys[k], string(r.Kinesis.Data))
	}
	return events.KinesisEventResponse{}, nil
}

func writeLines(t *testing.T, path string, fs ...dispatch.Failure) {
	t.Helper()
	var b bytes.Buffer
	for _, f := range fs {
		b.Write(mustMarshal(t, record.New(f)))
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func onShard(f dispatch.Failure, shard string) dispatch.Failure {
	f.ShardID = shard
	for i := range f.Records {
		f.Records[i].ShardID = shard
		f.Records[i].Data = []byte(shard[len(shard)-1:] + string(f.Records[i].Data))
	}
	return f
}

func newRun(t *testing.T, src Source, h stream.Handler, mod func(*Config)) (*Redriver, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	cfg := Config{Source: src, Dispatch: dispatch.Config{Handler: h, BatchSize: 2, MaxRetryAttempts: 1, RetryBackoff: 1, MaxBatchBytes: -1},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, &logs
}

// TestRunFile: records of two shards, given up in three batches written
// out of order and one of them twice, are each handled once, in order per
// shard and key; the file is left empty.
func TestRunFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	a, b, c := failure(5, 10), failure(0, 5), onShard(failure(0, 4), "shardId-000000000002")
	writeLines(t, path, a, c, b, a)
	s := newSink()
	r, logs := newRun(t, NewFileSource(path), s.handle, nil)
	sum, err := r.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if len(s.got) != 14 {
		t.Errorf("%d records handled, want 14: %v", len(s.got), s.got)
	}
	for d, n := range s.got {
		if n != 1 {
			t.Errorf("record %s handled %d times", d, n)
		}
	}
	if got := s.keys[testShard+"/key-0"]; fmt.Sprint(got) != "[r0 r3 r6 r9]" {
		t.Errorf("key-0 of %s handled in the order %v, want [r0 r3 r6 r9]", testShard, got)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("the file still holds %q", b)
	}
	records, handled, givenUp, left := sum.Totals()
	if records != 14 || handled != 14 || givenUp != 0 || left != 0 || sum.Cleaned != 4 || sum.Kept != 0 || sum.Duplicates != 5 || sum.Messages != 4 {
		t.Errorf("summary %+v", sum)
	}
}

// TestRunFailsAgain: with no -on-failure, a record that fails again stops
// its shard: its message and the shard's later ones stay in the file,
// with lines appended meanwhile; the other shard is done; the error says
// what stays.
func TestRunFailsAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	a, b, c := failure(0, 4), failure(4, 8), onShard(failure(0, 4), "shardId-000000000002")
	writeLines(t, path, a, b, c)
	s := newSink("r5")
	r, logs := newRun(t, NewFileSource(path), s.handle, nil)
	src := r.cfg.Source.(*FileSource)
	if err := src.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	later := mustMarshal(t, record.New(onShard(failure(10, 11), "shardId-000000000003")))
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(append(later, '\n'))
	f.Close()
	sum, err := r.Run(context.Background())
	var le *LeftError
	if !errors.As(err, &le) || le.Messages != 1 || le.Records != 4 || !strings.Contains(err.Error(), "no -on-failure") {
		t.Fatalf("err = %v, want b's 4 records (its batch r4, r5 failed) of 1 message left\n%s", err, logs)
	}
	b2, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b2)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"`+seq(4)+`"`) || !bytes.Equal([]byte(lines[1]), later) {
		t.Errorf("the file holds %d lines, want b's and the one appended:\n%s", len(lines), b2)
	}
	if s.got["r3"] != 1 || s.got["r4"] != 0 || s.got["r5"] != 0 || s.got["r6"] != 0 || s.got["2r3"] != 1 {
		t.Errorf("handled %v", s.got)
	}
	if sum.Cleaned != 2 || sum.Kept != 1 {
		t.Errorf("summary %+v", sum)
	}
	// Healed: the second run hands over what stayed, each once more.
	s.fail = nil
	r, logs = newRun(t, NewFileSource(path), s.handle, nil)
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatalf("second run: %v\n%s", err, logs)
	}
	if s.got["r3"] != 1 || s.got["r4"] != 1 || s.got["r5"] != 1 || s.got["r7"] != 1 || s.got["3r10"] != 1 {
		t.Errorf("after the second run: %v", s.got)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("the file still holds %q", b)
	}
}

// TestRunOnFailure: a record that fails again goes to -on-failure, and the
// source is emptied.
func TestRunOnFailure(t *testing.T) {
	dir := t.TempDir()
	path, dest := filepath.Join(dir, "failed.jsonl"), filepath.Join(dir, "again.jsonl")
	writeLines(t, path, failure(0, 6))
	s := newSink("r3")
	r, logs := newRun(t, NewFileSource(path), s.handle, func(c *Config) {
		c.Dispatch.OnFailure = filedest.New(dest)
		c.Dispatch.BisectOnError = true
	})
	sum, err := r.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if len(s.got) != 5 || s.got["r3"] != 0 {
		t.Errorf("handled %v", s.got)
	}
	again, _ := os.ReadFile(dest)
	e, err := Parse(bytes.TrimSpace(again))
	if err != nil || len(e.Records) != 1 || string(e.Records[0].Data) != "r3" {
		t.Errorf("-on-failure holds %s (%v), want r3 alone", again, err)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("the source still holds %q", b)
	}
	if _, _, givenUp, _ := sum.Totals(); givenUp != 1 {
		t.Errorf("summary %+v", sum)
	}
}

// ranges is a RangeReader over records in memory; trimmed is the first
// sequence number the stream still holds.
type ranges struct {
	recs    []stream.Record
	trimmed string
	calls   int
}

func (f *ranges) ReadRange(_ context.Context, name, shard, start, end string) ([]stream.Record, error) {
	f.calls++
	if name != "orders" {
		return nil, fmt.Errorf("stream %q", name)
	}
	if stream.CompareSeq(start, f.trimmed) < 0 {
		return nil, fmt.Errorf("shard %s starts at %s now: %w", shard, f.trimmed, ErrPastRetention)
	}
	var out []stream.Record
	for _, r := range f.recs {
		if r.ShardID == shard && stream.CompareSeq(r.SequenceNumber, start) >= 0 && stream.CompareSeq(r.SequenceNumber, end) <= 0 {
			out = append(out, r)
		}
	}
	return out, nil
}

// TestRunLambdaRanges: Lambda's metadata-only records are read back from
// the stream; a range past the stream's retention stays, with a message
// naming it.
func TestRunLambdaRanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	body := append(append(lambdaRecord(seq(3), seq(5), 3), '\n'), append(lambdaRecord(seq(0), seq(1), 2), '\n')...)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	rr := &ranges{recs: failure(0, 10).Records, trimmed: seq(2)}
	s := newSink()
	r, logs := newRun(t, NewFileSource(path), s.handle, func(c *Config) { c.Ranges = rr })
	sum, err := r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "past the stream's retention") || !strings.Contains(err.Error(), seq(0)+".."+seq(1)) {
		t.Fatalf("err = %v, want the range past retention named\n%s", err, logs)
	}
	if fmt.Sprint(s.keys[testShard+"/key-0"], s.keys[testShard+"/key-1"], s.keys[testShard+"/key-2"]) != "[r3] [r4] [r5]" || len(s.got) != 3 {
		t.Errorf("handled %v", s.keys)
	}
	if sum.PastRetention != 1 || sum.Kept != 1 || sum.Cleaned != 1 {
		t.Errorf("summary %+v", sum)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), seq(0)) || strings.Contains(string(b), seq(3)) {
		t.Errorf("the file holds %s, want the range past retention alone", b)
	}
	if !strings.Contains(logs.String(), "past the stream's retention") {
		t.Errorf("no ERROR line for the range past retention:\n%s", logs)
	}
}

// TestRunMemoryBound: past the bound, records go in rounds, and a WARN
// says that the order holds within each round only.
func TestRunMemoryBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	var fs []dispatch.Failure
	for i := range 30 {
		fs = append(fs, failure(i*2, i*2+2))
	}
	writeLines(t, path, fs...)
	s := newSink()
	r, logs := newRun(t, NewFileSource(path), s.handle, func(c *Config) { c.MaxBytes = 1000 })
	sum, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rounds < 2 || len(s.got) != 60 {
		t.Errorf("%d rounds, %d records, want several rounds and 60", sum.Rounds, len(s.got))
	}
	if n := strings.Count(logs.String(), "memory bound"); n != 1 {
		t.Errorf("%d lines about the memory bound, want 1:\n%s", n, logs)
	}
}

// TestRunDryRun lists what would be redriven and changes nothing.
func TestRunDryRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failed.jsonl")
	writeLines(t, path, failure(0, 4), onShard(failure(2, 3), "shardId-000000000002"))
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(append(lambdaRecord(seq(7), seq(9), 3), '\n'))
	f.Close()
	before, _ := os.ReadFile(path)
	s := newSink()
	r, _ := newRun(t, NewFileSource(path), s.handle, func(c *Config) { c.DryRun = true })
	sum, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) || len(s.got) != 0 {
		t.Errorf("a dry run changed the file or handled %v", s.got)
	}
	if len(sum.Shards) != 2 {
		t.Fatalf("shards %+v", sum.Shards)
	}
	one := sum.Shards[0]
	if one.Records != 7 || one.FirstSeq != seq(0) || one.LastSeq != seq(9) || one.Ranges != 1 || !one.FirstArrival.Equal(arrived) {
		t.Errorf("shard 1 %+v", one)
	}
}
