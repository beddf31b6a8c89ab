package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/window"
)

// windowEvent is a windowed call from shard with one record per line.
func windowEvent(shard string, w window.Window, state map[string]string, final bool, lines ...string) events.KinesisTimeWindowEvent {
	recs := make([]stream.Record, len(lines))
	for i, l := range lines {
		recs[i] = stream.Record{ShardID: shard, SequenceNumber: string(rune('1' + i)), PartitionKey: "k", Data: []byte(l), ApproximateArrivalTimestamp: w.Start}
	}
	return window.Event(testSource, window.Call{ShardID: shard, Window: w, State: state, Final: final}, recs)
}

// TestWindowWordCount: words are counted per window in the state, as
// strings; the final invoke prints the window's counts as one JSON line and
// returns an empty state.
func TestWindowWordCount(t *testing.T) {
	var out bytes.Buffer
	h, err := NewWindow("wordcount", Options{Out: &out})
	if err != nil {
		t.Fatalf("NewWindow: %v", err)
	}
	const shard = "shardId-000000000001"
	w := window.Of(time.Date(2020, 12, 9, 7, 4, 35, 0, time.UTC), 2*time.Minute)
	steps := []struct {
		ev   events.KinesisTimeWindowEvent
		want map[string]string
	}{
		{windowEvent(shard, w, nil, false, "3 7 1 9", "9 3 3 5"), map[string]string{"1": "1", "3": "3", "5": "1", "7": "1", "9": "2"}},
		{windowEvent(shard, w, nil, false), map[string]string{}},
	}
	state := map[string]string{}
	for i, s := range steps {
		if i > 0 {
			s.ev.State, s.want = state, maps.Clone(state)
		}
		resp, err := h(context.Background(), s.ev)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !maps.Equal(resp.State, s.want) {
			t.Errorf("step %d: state = %v, want %v", i, resp.State, s.want)
		}
		state = resp.State
	}
	resp, err := h(context.Background(), windowEvent(shard, w, state, false, "  1\t\t1 \n 7  ", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("printed before the window ended: %q", out.String())
	}
	resp, err = h(context.Background(), windowEvent(shard, w, resp.State, true))
	if err != nil {
		t.Fatalf("final: %v", err)
	}
	if resp.State == nil || len(resp.State) != 0 {
		t.Errorf("final state = %#v, want an empty, non-nil map", resp.State)
	}
	var got WindowCounts
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("printed %q: %v", out.String(), err)
	}
	wantCounts := map[string]int64{"1": 3, "3": 3, "5": 1, "7": 2, "9": 2, "hello": 1}
	if got.ShardID != shard || got.Start != "2020-12-09T07:04:00Z" || got.End != "2020-12-09T07:06:00Z" || got.TerminatedEarly ||
		got.Words != 12 || !maps.Equal(got.Counts, wantCounts) {
		t.Errorf("printed %+v, want counts %v, 12 words, 07:04–07:06 of %s", got, wantCounts, shard)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 || !strings.HasSuffix(out.String(), "\n") {
		t.Errorf("printed %q: want one line", out.String())
	}
}

// TestWindowWordCountLine: the printed line, key by key.
func TestWindowWordCountLine(t *testing.T) {
	var out bytes.Buffer
	h := NewWindowWordCount(Options{Out: &out}).Handle
	w := window.Of(time.Date(2020, 12, 9, 7, 4, 35, 0, time.UTC), 2*time.Minute)
	ev := windowEvent("shardId-000000000000", w, map[string]string{"3": "4", "1": "2"}, true)
	ev.IsWindowTerminatedEarly = true
	if _, err := h(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	want := `{"shardId":"shardId-000000000000","start":"2020-12-09T07:04:00Z","end":"2020-12-09T07:06:00Z","terminatedEarly":true,"words":6,"counts":{"1":2,"3":4}}` + "\n"
	if got := out.String(); got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
}

// TestWindowWordCountErrors: a state that is not counts, or a failed
// write of the final counts, fails the call.
func TestWindowWordCountErrors(t *testing.T) {
	w := window.Of(time.Date(2020, 12, 9, 7, 4, 35, 0, time.UTC), time.Minute)
	h := NewWindowWordCount(Options{Out: &bytes.Buffer{}}).Handle
	if _, err := h(context.Background(), windowEvent("s", w, map[string]string{"a": "x"}, false, "a")); err == nil ||
		!strings.Contains(err.Error(), `state["a"] = "x": not a count`) {
		t.Errorf("bad state: error %v", err)
	}
	h = NewWindowWordCount(Options{Out: failingWriter{}}).Handle
	resp, err := h(context.Background(), windowEvent("s", w, map[string]string{"a": "1"}, true))
	if err == nil || !strings.Contains(err.Error(), "disk full") || resp.State != nil {
		t.Errorf("failed write: %+v, %v; want an error and no state", resp, err)
	}
}

func TestNewWindow(t *testing.T) {
	if got, want := WindowNames(), []string{"wordcount"}; !slices.Equal(got, want) {
		t.Errorf("WindowNames() = %q, want %q", got, want)
	}
	if _, err := NewWindow("wordcount", Options{}); err != nil {
		t.Errorf("NewWindow(wordcount): %v", err)
	}
	_, err := NewWindow("print", Options{})
	if !errors.Is(err, ErrNoWindowVariant) || errors.Is(err, ErrUnknownHandler) {
		t.Errorf("NewWindow(print) = %v, want ErrNoWindowVariant", err)
	}
	if got, want := err.Error(), `handler "print": no windowed variant for a tumbling window; windowed handlers: wordcount`; got != want {
		t.Errorf("NewWindow(print) error = %q, want %q", got, want)
	}
	_, err = NewWindow("nope", Options{})
	if !errors.Is(err, ErrUnknownHandler) {
		t.Errorf("NewWindow(nope) = %v, want ErrUnknownHandler", err)
	}
	if _, err := NewWindow("wordcount", Options{Interval: -1}); err == nil {
		t.Errorf("NewWindow(wordcount, Interval -1) = nil error, want one")
	}
}

func TestRegisterWindow(t *testing.T) {
	r := &registry{factories: map[string]Factory{"echo": nopFactory}}
	nop := func(Options) (stream.WindowHandler, error) {
		return func(context.Context, events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
			return events.KinesisTimeWindowEventResponse{}, nil
		}, nil
	}
	if _, err := r.newWindow("echo", Options{}); !errors.Is(err, ErrNoWindowVariant) ||
		!strings.HasSuffix(err.Error(), "windowed handlers: none") {
		t.Errorf("newWindow before RegisterWindow = %v", err)
	}
	r.registerWindow("echo", nop)
	if _, err := r.newWindow("echo", Options{}); err != nil {
		t.Errorf("newWindow(echo): %v", err)
	}
	r.registerWindow("only-windowed", func(Options) (stream.WindowHandler, error) { return nil, nil })
	if _, err := r.newWindow("only-windowed", Options{}); err == nil || !strings.Contains(err.Error(), "factory returned no handler") {
		t.Errorf("newWindow(nil handler) = %v", err)
	}
	for _, tt := range []struct {
		desc, name string
		f          WindowFactory
		want       string
	}{
		{"empty name", "", nop, "handlers: RegisterWindow with an empty name"},
		{"nil factory", "x", nil, `handlers: RegisterWindow "x" with a nil factory`},
		{"duplicate", "echo", nop, `handlers: RegisterWindow called twice for "echo"`},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			defer func() {
				if got := recover(); got != tt.want {
					t.Errorf("registerWindow(%q) panic = %v, want %q", tt.name, got, tt.want)
				}
			}()
			r.registerWindow(tt.name, tt.f)
		})
	}
	if got, want := r.windowNames(), []string{"echo", "only-windowed"}; !slices.Equal(got, want) {
		t.Errorf("windowNames() = %q, want %q", got, want)
	}
	// The plain handlers are untouched.
	if got, want := r.names(), []string{"echo"}; !slices.Equal(got, want) {
		t.Errorf("names() = %q, want %q", got, want)
	}
}
