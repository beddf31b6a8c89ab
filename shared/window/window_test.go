package window

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/stream"
)

// at parses an RFC 3339 time.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestOf(t *testing.T) {
	tests := []struct {
		name       string
		ts         string
		size       time.Duration
		start, end string
	}{
		{"Lambda's example", "2020-12-09T07:04:35Z", 120 * time.Second, "2020-12-09T07:04:00Z", "2020-12-09T07:06:00Z"},
		{"start belongs to its window", "2020-12-09T07:04:00Z", 120 * time.Second, "2020-12-09T07:04:00Z", "2020-12-09T07:06:00Z"},
		{"a millisecond before the end", "2020-12-09T07:05:59.999Z", 120 * time.Second, "2020-12-09T07:04:00Z", "2020-12-09T07:06:00Z"},
		{"end belongs to the next window", "2020-12-09T07:06:00Z", 120 * time.Second, "2020-12-09T07:06:00Z", "2020-12-09T07:08:00Z"},
		{"sub-millisecond before the end", "2020-12-09T07:05:59.9999999Z", 120 * time.Second, "2020-12-09T07:04:00Z", "2020-12-09T07:06:00Z"},
		{"1 s", "2020-12-09T07:04:35.5Z", time.Second, "2020-12-09T07:04:35Z", "2020-12-09T07:04:36Z"},
		{"900 s", "2020-12-09T07:29:59Z", 900 * time.Second, "2020-12-09T07:15:00Z", "2020-12-09T07:30:00Z"},
		{"not a divisor of a day: aligned on the epoch", "1970-01-01T00:00:15Z", 7 * time.Second, "1970-01-01T00:00:14Z", "1970-01-01T00:00:21Z"},
		{"7 s, later", "2020-12-09T07:04:35Z", 7 * time.Second, "2020-12-09T07:04:32Z", "2020-12-09T07:04:39Z"},
		{"other time zone, UTC result", "2020-12-09T09:04:35+02:00", 120 * time.Second, "2020-12-09T07:04:00Z", "2020-12-09T07:06:00Z"},
		{"half-hour zone", "2020-12-09T12:35:35+05:30", 3600 * time.Second, "2020-12-09T07:00:00Z", "2020-12-09T08:00:00Z"},
		{"epoch", "1970-01-01T00:00:00Z", 60 * time.Second, "1970-01-01T00:00:00Z", "1970-01-01T00:01:00Z"},
		{"before the epoch floors down", "1969-12-31T23:59:59Z", 60 * time.Second, "1969-12-31T23:59:00Z", "1970-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Of(at(t, tt.ts), tt.size)
			if got, want := w.String(), tt.start+"/"+tt.end; got != want {
				t.Errorf("Of(%s, %s) = %s, want %s", tt.ts, tt.size, got, want)
			}
			if w.Start.Location() != time.UTC || w.End.Location() != time.UTC {
				t.Errorf("Of(%s) not in UTC: %v", tt.ts, w)
			}
			if !w.Contains(at(t, tt.ts)) {
				t.Errorf("%s does not contain %s", w, tt.ts)
			}
		})
	}
}

func TestAssign(t *testing.T) {
	const size = 60 * time.Second
	tests := []struct {
		name, ts, floor string
		want            string
	}{
		{"no floor", "2020-12-09T07:04:35Z", "", "2020-12-09T07:04:00Z/2020-12-09T07:05:00Z"},
		{"after the floor", "2020-12-09T07:05:35Z", "2020-12-09T07:05:00Z", "2020-12-09T07:05:00Z/2020-12-09T07:06:00Z"},
		{"late record: window closed, counts in the next", "2020-12-09T07:04:59Z", "2020-12-09T07:05:00Z", "2020-12-09T07:05:00Z/2020-12-09T07:06:00Z"},
		{"far later than the floor", "2020-12-09T08:00:01Z", "2020-12-09T07:05:00Z", "2020-12-09T08:00:00Z/2020-12-09T08:01:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var floor time.Time
			if tt.floor != "" {
				floor = at(t, tt.floor)
			}
			if got := Assign(at(t, tt.ts), floor, size).String(); got != tt.want {
				t.Errorf("Assign(%s, %s) = %s, want %s", tt.ts, tt.floor, got, tt.want)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	tests := []struct {
		size time.Duration
		ok   bool
	}{
		{0, false},
		{-time.Second, false},
		{999 * time.Millisecond, false},
		{time.Second, true},
		{1500 * time.Millisecond, false},
		{120 * time.Second, true},
		{900 * time.Second, true},
		{901 * time.Second, false},
	}
	for _, tt := range tests {
		err := CheckSize(tt.size)
		if (err == nil) != tt.ok {
			t.Errorf("CheckSize(%s) = %v, want ok %v", tt.size, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), tt.size.String()) {
			t.Errorf("CheckSize(%s) = %q: does not name the value", tt.size, err)
		}
	}
}

func TestClosable(t *testing.T) {
	w := Of(at(t, "2020-12-09T07:04:35Z"), 120*time.Second) // ends 07:06:00
	tests := []struct {
		now      string
		caughtUp bool
		want     bool
	}{
		{"2020-12-09T07:05:00Z", true, false},
		{"2020-12-09T07:06:00Z", true, false}, // at the end: within the grace
		{"2020-12-09T07:06:00.999Z", true, false},
		{"2020-12-09T07:06:01Z", true, true}, // end plus grace
		{"2020-12-09T08:00:00Z", true, true},
		{"2020-12-09T08:00:00Z", false, false}, // behind: a later record will close it
	}
	for _, tt := range tests {
		if got := w.Closable(at(t, tt.now), tt.caughtUp); got != tt.want {
			t.Errorf("%s.Closable(%s, caughtUp %v) = %v, want %v", w, tt.now, tt.caughtUp, got, tt.want)
		}
	}
}

func TestSpan(t *testing.T) {
	base := at(t, "2020-12-09T07:04:00Z")
	recs := func(offsets ...time.Duration) []stream.Record {
		out := make([]stream.Record, len(offsets))
		for i, o := range offsets {
			out[i].ApproximateArrivalTimestamp = base.Add(o)
		}
		return out
	}
	end := base.Add(time.Minute)
	tests := []struct {
		name string
		recs []stream.Record
		want int
	}{
		{"none", nil, 0},
		{"all in", recs(0, time.Second, 59*time.Second), 3},
		{"stops at the end", recs(0, 59999*time.Millisecond, time.Minute, 30*time.Second), 2},
		{"earlier than the start counts in", recs(-time.Minute, 0), 2},
		{"first after", recs(2*time.Minute, 0), 0},
	}
	for _, tt := range tests {
		if got := Span(tt.recs, end); got != tt.want {
			t.Errorf("%s: Span = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestStateSize(t *testing.T) {
	tests := []struct {
		name  string
		state map[string]string
	}{
		{"nil", nil},
		{"empty", map[string]string{}},
		{"counts", map[string]string{"1": "282", "2": "715"}},
		{"escapes", map[string]string{"<a&b>": "\"quoted\"\n", "é": "\u2028"}},
	}
	for _, tt := range tests {
		want := "{}"
		if tt.state != nil {
			b, err := json.Marshal(tt.state)
			if err != nil {
				t.Fatal(err)
			}
			want = string(b)
		}
		if got := StateSize(tt.state); got != len(want) {
			t.Errorf("%s: StateSize = %d, want %d (%s)", tt.name, got, len(want), want)
		}
	}
	big := map[string]string{"k": strings.Repeat("x", MaxStateBytes-len(`{"k":""}`))}
	if got := StateSize(big); got != MaxStateBytes {
		t.Fatalf("StateSize(big) = %d, want %d", got, MaxStateBytes)
	}
	if TooLarge(big) {
		t.Errorf("TooLarge at exactly %d bytes = true, want false", MaxStateBytes)
	}
	big["k"] += "x"
	if !TooLarge(big) {
		t.Errorf("TooLarge at %d bytes = false, want true", MaxStateBytes+1)
	}
}

func TestEvent(t *testing.T) {
	src := stream.Source{StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream", Region: "us-east-1"}
	w := Of(at(t, "2020-12-09T07:04:35Z"), 120*time.Second)
	recs := []stream.Record{{ShardID: "shardId-000000000006", SequenceNumber: "1", Data: []byte("a"), ApproximateArrivalTimestamp: at(t, "2020-12-09T07:04:35Z")}}
	t.Run("records", func(t *testing.T) {
		ev := Event(src, Call{ShardID: "shardId-000000000006", Window: w, State: map[string]string{"1": "2"}}, recs)
		if got, want := len(ev.Records), 1; got != want {
			t.Fatalf("%d records, want %d", got, want)
		}
		if got, want := ev.Records[0].EventID, "shardId-000000000006:1"; got != want {
			t.Errorf("eventID = %q, want %q", got, want)
		}
		checks := []struct{ field, got, want string }{
			{"window.start", Format(ev.Window.Start.Time), "2020-12-09T07:04:00Z"},
			{"window.end", Format(ev.Window.End.Time), "2020-12-09T07:06:00Z"},
			{"shardId", ev.ShardID, "shardId-000000000006"},
			{"eventSourceARN", ev.EventSourceARN, src.StreamARN},
			{"state[1]", ev.State["1"], "2"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
			}
		}
		if ev.IsFinalInvokeForWindow || ev.IsWindowTerminatedEarly {
			t.Errorf("flags = %v, %v; want false, false", ev.IsFinalInvokeForWindow, ev.IsWindowTerminatedEarly)
		}
	})
	t.Run("final, no state", func(t *testing.T) {
		ev := Event(src, Call{ShardID: "shardId-000000000006", Window: w, Final: true, TerminatedEarly: true}, nil)
		if ev.Records == nil || len(ev.Records) != 0 {
			t.Errorf("Records = %#v, want an empty, non-nil list", ev.Records)
		}
		if ev.State == nil || len(ev.State) != 0 {
			t.Errorf("State = %#v, want an empty, non-nil map", ev.State)
		}
		if !ev.IsFinalInvokeForWindow || !ev.IsWindowTerminatedEarly {
			t.Errorf("flags = %v, %v; want true, true", ev.IsFinalInvokeForWindow, ev.IsWindowTerminatedEarly)
		}
		ev.State["x"] = "y" // a handler may write to it
	})
}
