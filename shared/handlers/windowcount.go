package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/window"
)

// WindowCounts is the line the windowed wordcount prints when a window
// ends, in this key order:
//
//	{"shardId":"shardId-000000000000","start":"2020-12-09T07:04:00Z","end":"2020-12-09T07:06:00Z",
//	 "terminatedEarly":false,"words":12,"counts":{"1":3,"3":4,…}}
//
// Windows are per shard, so a window prints one line per shard that had
// records in it. TerminatedEarly is true when the window's state grew
// past its limit: the counts so far are printed and the rest of the window
// follows in another line for the same window.
type WindowCounts struct {
	ShardID         string           `json:"shardId"`
	Start           string           `json:"start"`
	End             string           `json:"end"`
	TerminatedEarly bool             `json:"terminatedEarly"`
	Words           int64            `json:"words"`
	Counts          map[string]int64 `json:"counts"`
}

// WindowWordCount is the windowed variant of "wordcount", for a tumbling
// window: each record's data is split on white space (bytes.Fields) and
// the words are counted in the window's state, word → count as a decimal
// string, so the counts live in Shardline's (or Lambda's) state and not in
// the process. On the window's final invoke it writes the window's counts
// to Out as one JSON line (WindowCounts) and returns an empty state. A
// failed write fails the final invoke, which is then retried: the counts
// of a window are its result. A state value that is not a count fails
// the call. It is safe for concurrent use.
type WindowWordCount struct {
	log *slog.Logger
	mu  sync.Mutex // serialises writes to out
	out io.Writer
}

// NewWindowWordCount returns a WindowWordCount writing to o.Out (os.Stdout
// if nil) and logging to o.Logger (slog.Default() if nil).
func NewWindowWordCount(o Options) *WindowWordCount {
	w := &WindowWordCount{out: o.Out, log: o.Logger}
	if w.out == nil {
		w.out = os.Stdout
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	return w
}

func newWindowWordCountHandler(o Options) (stream.WindowHandler, error) {
	if o.Interval < 0 { // as wordcount: the same options, the same errors
		return nil, fmt.Errorf("wordcount: interval %v: want zero (default %v) or more", o.Interval, DefaultInterval)
	}
	return NewWindowWordCount(o).Handle, nil
}

// Handle adds the words of ev's records to the counts in ev.State and
// returns them; on the final invoke it prints the window's counts and
// returns an empty state. It has the stream.WindowHandler signature.
func (w *WindowWordCount) Handle(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	counts := make(map[string]int64, len(ev.State))
	var words int64
	for word, v := range ev.State {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return events.KinesisTimeWindowEventResponse{}, fmt.Errorf("wordcount: state[%q] = %q: not a count", word, v)
		}
		counts[word] = n
		words += n
	}
	for i := range ev.Records {
		for _, f := range bytes.Fields(ev.Records[i].Kinesis.Data) {
			counts[string(f)]++
			words++
		}
	}
	var resp events.KinesisTimeWindowEventResponse
	if !ev.IsFinalInvokeForWindow {
		resp.State = make(map[string]string, len(counts))
		for word, n := range counts {
			resp.State[word] = strconv.FormatInt(n, 10)
		}
		return resp, nil
	}
	line, err := json.Marshal(WindowCounts{
		ShardID: ev.ShardID, Start: window.Format(ev.Window.Start.Time), End: window.Format(ev.Window.End.Time),
		TerminatedEarly: ev.IsWindowTerminatedEarly, Words: words, Counts: counts,
	})
	if err != nil {
		return resp, fmt.Errorf("wordcount: %w", err)
	}
	w.mu.Lock()
	_, err = w.out.Write(append(line, '\n'))
	w.mu.Unlock()
	if err != nil {
		return resp, fmt.Errorf("wordcount: write the counts of window %s–%s: %w",
			window.Format(ev.Window.Start.Time), window.Format(ev.Window.End.Time), err)
	}
	w.log.DebugContext(ctx, "wordcount window", "shard", ev.ShardID, "start", window.Format(ev.Window.Start.Time),
		"words", words, "distinct", len(counts), "top", formatTop(top(counts, wordCountTop)))
	resp.State = map[string]string{}
	return resp, nil
}
