package handlers

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

// wordCountTop is how many words the printed block lists.
const wordCountTop = 10

// WordFreq is a word and how often it was seen.
type WordFreq struct {
	Word  string
	Count int64
}

// WordCount is the "wordcount" handler, Spark's KinesisWordCountASL example
// moved to a Kinesis handler: each record's data is split on white space
// (bytes.Fields), words are counted per batch and added to running totals
// kept across batches and shards. Each batch's counts are logged at debug
// level. After a batch, if at least Interval has passed since the last
// print (or nothing was printed yet), the top 10 words are written to Out as
// one block:
//
//	word counts: 12 words, 6 distinct, 3 batches
//	3 4
//	1 2
//	…
//
// (most frequent first, ties by word). Printing happens only when a batch
// arrives: there is no timer goroutine and nothing to close, so the last
// totals of an idle stream are printed with the next batch. A failed write
// to Out is logged and does not fail the batch, since the counts are
// already taken. Handle always returns an empty response.
//
// The totals live in the value: a Lambda function keeps them only for as
// long as its execution environment lives. WordCount is safe for
// concurrent use.
type WordCount struct {
	out      io.Writer
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu        sync.Mutex
	totals    map[string]int64
	words     int64
	batches   int64
	printed   bool
	lastPrint time.Time
	// flush prints counts that came within the interval after the last
	// print, once the interval is over: the last batches before a quiet
	// stream are printed too, not kept until the next batch.
	flush *time.Timer
}

// NewWordCount returns a WordCount with o's defaults filled in. A negative
// o.Interval is an error.
func NewWordCount(o Options) (*WordCount, error) { return newWordCount(o, time.Now) }

func newWordCount(o Options, now func() time.Time) (*WordCount, error) {
	if o.Interval < 0 {
		return nil, fmt.Errorf("wordcount: interval %v: want zero (default %v) or more", o.Interval, DefaultInterval)
	}
	w := &WordCount{
		out:      o.Out,
		log:      o.Logger,
		interval: o.Interval,
		now:      now,
		totals:   make(map[string]int64),
	}
	if w.out == nil {
		w.out = os.Stdout
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.interval == 0 {
		w.interval = DefaultInterval
	}
	return w, nil
}

func newWordCountHandler(o Options) (stream.Handler, error) {
	w, err := NewWordCount(o)
	if err != nil {
		return nil, err
	}
	return w.Handle, nil
}

// Handle counts the words of ev's records. It has the stream.Handler
// signature.
func (w *WordCount) Handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	batch := make(map[string]int64)
	var words int64
	for i := range ev.Records {
		for _, f := range bytes.Fields(ev.Records[i].Kinesis.Data) {
			batch[string(f)]++
			words++
		}
	}
	if w.log.Enabled(ctx, slog.LevelDebug) {
		var shard string
		if len(ev.Records) > 0 {
			shard, _, _, _ = stream.ParseEventID(ev.Records[0].EventID)
		}
		w.log.DebugContext(ctx, "wordcount batch",
			"shard", shard,
			"records", len(ev.Records),
			"words", words,
			"distinct", len(batch),
			"top", formatTop(top(batch, wordCountTop)))
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	for word, n := range batch {
		w.totals[word] += n
	}
	w.words += words
	w.batches++
	now := w.now()
	if w.words == 0 {
		return events.KinesisEventResponse{}, nil
	}
	if w.printed && now.Sub(w.lastPrint) < w.interval {
		if w.flush == nil {
			w.flush = time.AfterFunc(w.lastPrint.Add(w.interval).Sub(now), w.printPending)
		}
		return events.KinesisEventResponse{}, nil
	}
	w.printLocked(now)
	return events.KinesisEventResponse{}, nil
}

// printLocked writes the top counts; w.mu is held.
func (w *WordCount) printLocked(now time.Time) {
	w.printed, w.lastPrint = true, now
	if w.flush != nil {
		w.flush.Stop()
		w.flush = nil
	}
	if _, err := io.WriteString(w.out, w.blockLocked()); err != nil {
		w.log.Warn("wordcount: write top counts", "error", err)
	}
}

// printPending prints the counts that came after the last print.
func (w *WordCount) printPending() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flush == nil { // printed by a batch meanwhile
		return
	}
	w.flush = nil
	w.printLocked(w.now())
}

// Totals returns a copy of the running totals.
func (w *WordCount) Totals() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]int64, len(w.totals))
	for word, n := range w.totals {
		m[word] = n
	}
	return m
}

// Top returns the n most frequent words so far, most frequent first, ties
// by word.
func (w *WordCount) Top(n int) []WordFreq {
	w.mu.Lock()
	defer w.mu.Unlock()
	return top(w.totals, n)
}

// blockLocked renders the printed block; w.mu must be held.
func (w *WordCount) blockLocked() string {
	var b strings.Builder
	fmt.Fprintf(&b, "word counts: %d words, %d distinct, %d batches\n", w.words, len(w.totals), w.batches)
	for _, f := range top(w.totals, wordCountTop) {
		fmt.Fprintf(&b, "%s %d\n", f.Word, f.Count)
	}
	return b.String()
}

// top returns the n most frequent words of counts, most frequent first,
// ties by word.
func top(counts map[string]int64, n int) []WordFreq {
	all := make([]WordFreq, 0, len(counts))
	for word, c := range counts {
		all = append(all, WordFreq{Word: word, Count: c})
	}
	slices.SortFunc(all, func(a, b WordFreq) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Word, b.Word)
	})
	return all[:max(0, min(n, len(all)))]
}

// formatTop renders fs as "word=count word=count …" for a log attribute.
func formatTop(fs []WordFreq) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", f.Word, f.Count)
	}
	return b.String()
}
