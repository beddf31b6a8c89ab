package handlers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// wordEvent is a batch from shard with one record per line.
func wordEvent(shard string, lines ...string) events.KinesisEvent {
	recs := make([]stream.Record, len(lines))
	for i, l := range lines {
		recs[i] = stream.Record{ShardID: shard, SequenceNumber: fmt.Sprint(i + 1), PartitionKey: "k", Data: []byte(l)}
	}
	return stream.Event(testSource, recs)
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestWordCountTotals(t *testing.T) {
	w, err := NewWordCount(Options{Out: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	batches := []events.KinesisEvent{
		wordEvent("shardId-000000000000", "3 7 1 9", "9 3 3 5"),
		wordEvent("shardId-000000000001", "  1\t\t1 \n 7  ", ""),
		wordEvent("shardId-000000000000"),
		wordEvent("shardId-000000000002", "hello world", "hello"),
	}
	for i, ev := range batches {
		resp, err := w.Handle(context.Background(), ev)
		if err != nil {
			t.Fatalf("batch %d: Handle error: %v", i, err)
		}
		if len(resp.BatchItemFailures) != 0 {
			t.Errorf("batch %d: response = %+v, want empty", i, resp)
		}
	}
	want := map[string]int64{"1": 3, "3": 3, "5": 1, "7": 2, "9": 2, "hello": 2, "world": 1}
	if got := w.Totals(); !maps.Equal(got, want) {
		t.Errorf("Totals() = %v, want %v", got, want)
	}
	wantTop := []WordFreq{{"1", 3}, {"3", 3}, {"7", 2}}
	if got := w.Top(3); !slices.Equal(got, wantTop) {
		t.Errorf("Top(3) = %v, want %v", got, wantTop)
	}
	// Totals is a copy.
	w.Totals()["1"] = 100
	if got := w.Totals()["1"]; got != 3 {
		t.Errorf("Totals()[\"1\"] after changing a copy = %d, want 3", got)
	}
}

func TestWordCountConcurrentShards(t *testing.T) {
	const shards, calls = 8, 50
	w, err := NewWordCount(Options{Out: &byteWriter{}, Interval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for s := range shards {
		wg.Go(func() {
			shard := fmt.Sprintf("shardId-%012d", s)
			for range calls {
				if _, err := w.Handle(context.Background(), wordEvent(shard, "a b", fmt.Sprintf("s%d a", s))); err != nil {
					t.Errorf("Handle error: %v", err)
				}
			}
		})
	}
	wg.Wait()
	want := map[string]int64{"a": 2 * shards * calls, "b": shards * calls}
	for s := range shards {
		want[fmt.Sprintf("s%d", s)] = calls
	}
	if got := w.Totals(); !maps.Equal(got, want) {
		t.Errorf("Totals() = %v, want %v", got, want)
	}
}

func TestWordCountPrintThrottled(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := []struct {
		at    time.Duration // since t0
		lines []string
		want  string // printed by this batch
	}{
		{at: 0, lines: nil, want: ""}, // nothing counted yet: nothing to print
		{at: 0, lines: []string{"3 7 1 9"}, want: "word counts: 4 words, 4 distinct, 2 batches\n1 1\n3 1\n7 1\n9 1\n"},
		{at: 500 * time.Millisecond, lines: []string{"9 3 3 5"}},
		{at: 999 * time.Millisecond, lines: []string{""}},
		{at: time.Second, lines: []string{"3"}, want: "word counts: 9 words, 5 distinct, 5 batches\n3 4\n9 2\n1 1\n5 1\n7 1\n"},
		{at: 1500 * time.Millisecond, lines: []string{"5"}},
		{at: 1999 * time.Millisecond},
		{at: 2100 * time.Millisecond, lines: []string{"a b c d e f g h i j k"}, want: "word counts: 21 words, 16 distinct, 8 batches\n3 4\n5 2\n9 2\n1 1\n7 1\na 1\nb 1\nc 1\nd 1\ne 1\n"},
		{at: 2000 * time.Millisecond, lines: []string{"x"}}, // clock went back: not due
	}
	clock := &fakeClock{t: t0}
	var out bytes.Buffer
	w, err := newWordCount(Options{Out: &out, Interval: time.Second, Logger: slog.New(slog.DiscardHandler)}, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		clock.t = t0.Add(s.at)
		out.Reset()
		if _, err := w.Handle(context.Background(), wordEvent("shardId-000000000000", s.lines...)); err != nil {
			t.Fatalf("step %d: Handle error: %v", i, err)
		}
		if got := out.String(); got != s.want {
			t.Errorf("step %d (t0+%v): printed\n%q\nwant\n%q", i, s.at, got, s.want)
		}
	}
}

func TestWordCountDefaults(t *testing.T) {
	w, err := NewWordCount(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.interval != DefaultInterval {
		t.Errorf("interval = %v, want %v", w.interval, DefaultInterval)
	}
	if w.out == nil || w.log == nil || w.now == nil {
		t.Errorf("defaults not filled: out %v, log %v, now set %t", w.out, w.log, w.now != nil)
	}
	_, err = NewWordCount(Options{Interval: -time.Second})
	if got, want := fmt.Sprint(err), "wordcount: interval -1s: want zero (default 1s) or more"; got != want {
		t.Errorf("NewWordCount(Interval: -1s) error = %q, want %q", got, want)
	}
}

func TestWordCountDebugLog(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w, err := NewWordCount(Options{Out: &bytes.Buffer{}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Handle(context.Background(), wordEvent("shardId-000000000003", "3 7 1 9", "9 3 3 5")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`level=DEBUG msg="wordcount batch"`,
		"shard=shardId-000000000003",
		"records=2",
		"words=8",
		"distinct=5",
		`top="3=3 9=2 1=1 5=1 7=1"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log = %q, want it to contain %q", logs.String(), want)
		}
	}
}

func TestWordCountWriteErrorKeepsBatch(t *testing.T) {
	var logs bytes.Buffer
	w, err := NewWordCount(Options{Out: failingWriter{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Handle(context.Background(), wordEvent("shardId-000000000000", "a a")); err != nil {
		t.Errorf("Handle error = %v, want nil (a failed report must not fail the batch)", err)
	}
	if got := w.Totals()["a"]; got != 2 {
		t.Errorf("Totals()[\"a\"] = %d, want 2", got)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "disk full") {
		t.Errorf("log = %q, want a warning with the write error", logs.String())
	}
}

func TestTop(t *testing.T) {
	counts := map[string]int64{"b": 2, "a": 2, "c": 5, "d": 1}
	tests := []struct {
		n    int
		want []WordFreq
	}{
		{n: -1, want: []WordFreq{}},
		{n: 0, want: []WordFreq{}},
		{n: 1, want: []WordFreq{{"c", 5}}},
		{n: 3, want: []WordFreq{{"c", 5}, {"a", 2}, {"b", 2}}},
		{n: 10, want: []WordFreq{{"c", 5}, {"a", 2}, {"b", 2}, {"d", 1}}},
	}
	for _, tt := range tests {
		if got := top(counts, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("top(%v, %d) = %v, want %v", counts, tt.n, got, tt.want)
		}
	}
}

// TestWordCountPrintsTheLastBatches: counts that come within the interval
// after a print are printed when the interval is over, with no batch after
// them (the end of a stream, a demo's last records).
func TestWordCountPrintsTheLastBatches(t *testing.T) {
	var out testwait.Buffer
	w, err := NewWordCount(Options{Out: &out, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(s string) events.KinesisEvent {
		return events.KinesisEvent{Records: []events.KinesisEventRecord{{Kinesis: events.KinesisRecord{Data: []byte(s)}}}}
	}
	if _, err := w.Handle(context.Background(), ev("a b")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Handle(context.Background(), ev("c")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "3 words") {
		t.Fatal("printed twice within the interval")
	}
	testwait.Until(t, 5*time.Second, "the second batch's counts printed", func() bool {
		return strings.Contains(out.String(), "word counts: 3 words, 3 distinct, 2 batches")
	})
}
