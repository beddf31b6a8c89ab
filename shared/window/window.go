package window

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

// Limits, as Lambda's.
const (
	MinSize = time.Second       // shortest window
	MaxSize = 900 * time.Second // longest window (TumblingWindowInSeconds 900)
	// MaxStateBytes is the largest state, as JSON, a window carries on:
	// a larger one terminates the window early. Lambda's 1 MB per shard.
	MaxStateBytes = 1 << 20
	// Grace is how long past a window's end a caught-up shard waits
	// before it closes the window on the wall clock: arrival times are
	// the stream's clock, not this machine's.
	Grace = time.Second
)

// ErrNoState is a response without state: a failed invocation, as on
// Lambda.
var ErrNoState = errors.New("the response has no state (a failed invocation with a tumbling window, as on Lambda: return an empty state when there is nothing to keep)")

// CheckSize reports whether size is a window length Lambda allows: whole
// seconds from MinSize to MaxSize.
func CheckSize(size time.Duration) error {
	if size < MinSize || size > MaxSize || size%time.Second != 0 {
		return fmt.Errorf("tumbling window %s: allowed whole seconds from %s to %s", size, MinSize, MaxSize)
	}
	return nil
}

// Window is a tumbling window: [Start, End), in UTC.
type Window struct {
	Start, End time.Time
}

// Of is the window of size that holds ts: its start is the largest
// multiple of size since the Unix epoch not after ts. size is taken in
// whole milliseconds (Kinesis's precision), at least one.
func Of(ts time.Time, size time.Duration) Window {
	n := max(size.Milliseconds(), 1)
	start := floorDiv(ts.UnixMilli(), n) * n
	s := time.UnixMilli(start).UTC()
	return Window{Start: s, End: s.Add(time.Duration(n) * time.Millisecond)}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// Assign is the window of size a record that arrived at ts counts in,
// when every window before floor is closed (floor is the end of the last
// window closed, or zero): a window is never opened again.
func Assign(ts, floor time.Time, size time.Duration) Window {
	if ts.Before(floor) {
		ts = floor
	}
	return Of(ts, size)
}

// IsZero reports whether w is the zero Window (no window).
func (w Window) IsZero() bool { return w.Start.IsZero() && w.End.IsZero() }

// Contains reports whether ts falls in w.
func (w Window) Contains(ts time.Time) bool { return !ts.Before(w.Start) && ts.Before(w.End) }

// Closable reports whether a caught-up shard may close w at now: the wall
// clock is at least Grace past its end.
func (w Window) Closable(now time.Time, caughtUp bool) bool {
	return caughtUp && !now.Before(w.End.Add(Grace))
}

// String renders w as "start/end" in RFC 3339, as the event writes them.
func (w Window) String() string { return Format(w.Start) + "/" + Format(w.End) }

// Format writes a window bound as Lambda's event does: RFC 3339 in UTC
// ("2020-12-09T07:04:00Z").
func Format(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Event is w as aws-lambda-go's events.Window, in UTC.
func (w Window) Event() events.Window {
	return events.Window{Start: events.RFC3339EpochTime{Time: w.Start.UTC()}, End: events.RFC3339EpochTime{Time: w.End.UTC()}}
}

// Span is how many records at the front of recs arrived before end: the
// ones an open window ending at end takes (those that arrived before its
// start too, since arrival times are approximate).
func Span(recs []stream.Record, end time.Time) int {
	n := 0
	for n < len(recs) && recs[n].ApproximateArrivalTimestamp.Before(end) {
		n++
	}
	return n
}

// StateSize is the size of state as the event carries it: the length of
// its JSON ({} for nil).
func StateSize(state map[string]string) int {
	if state == nil {
		return len("{}")
	}
	b, _ := json.Marshal(state) // a map of strings always marshals
	return len(b)
}

// TooLarge reports whether state is over MaxStateBytes.
func TooLarge(state map[string]string) bool { return StateSize(state) > MaxStateBytes }

// Call is what a windowed call carries besides its records.
type Call struct {
	ShardID string
	Window  Window
	// State is the state so far; nil is sent as an empty state.
	State           map[string]string
	Final           bool // isFinalInvokeForWindow
	TerminatedEarly bool // isWindowTerminatedEarly
}

// Event builds the event of call c with recs (none for a final invoke),
// field by field as Lambda's event source mapping writes it; the records
// as stream.Event makes them.
func Event(src stream.Source, c Call, recs []stream.Record) events.KinesisTimeWindowEvent {
	return Wrap(stream.Event(src, recs), src, c)
}

// Wrap adds c's window fields to ev, a plain event of the window's
// records. The state is c.State itself, or a new empty map: never nil, so
// a handler may write to it.
func Wrap(ev events.KinesisEvent, src stream.Source, c Call) events.KinesisTimeWindowEvent {
	state := c.State
	if state == nil {
		state = map[string]string{}
	}
	if ev.Records == nil {
		ev.Records = []events.KinesisEventRecord{}
	}
	return events.KinesisTimeWindowEvent{
		KinesisEvent: ev,
		TimeWindowProperties: events.TimeWindowProperties{
			Window:                  c.Window.Event(),
			State:                   state,
			ShardID:                 c.ShardID,
			EventSourceARN:          src.StreamARN,
			IsFinalInvokeForWindow:  c.Final,
			IsWindowTerminatedEarly: c.TerminatedEarly,
		},
	}
}
