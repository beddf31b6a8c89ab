package checkpoint

import (
	"testing"
	"time"

	"github.com/shardline/shardline/shared/stream"
)

var t0 = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func TestTrackerStart(t *testing.T) {
	from := stream.Position{Seq: stream.TrimHorizon}
	tr := New(time.Second, from, t0)
	if p, ok := tr.Pending(); ok || p != from {
		t.Errorf("Pending() = %v, %v; want %v, false", p, ok, from)
	}
	if p, ok := tr.Due(t0.Add(time.Hour)); ok {
		t.Errorf("Due(+1h) = %v, true; want nothing due", p)
	}
	if got, want := tr.Last(), from; got != want {
		t.Errorf("Last() = %v, want %v", got, want)
	}
}

func TestTrackerDue(t *testing.T) {
	const interval = 5 * time.Second
	p1 := stream.Position{Seq: "100"}
	p2 := stream.Position{Seq: "200", SubSeq: 3}
	type step struct {
		op   string // "done", "due", "written", "pending"
		pos  stream.Position
		at   time.Duration
		want stream.Position
		ok   bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "not due before the interval",
			steps: []step{
				{op: "done", pos: p1},
				{op: "pending", want: p1, ok: true},
				{op: "due", at: 0},
				{op: "due", at: interval - time.Nanosecond},
				{op: "due", at: interval, want: p1, ok: true},
			},
		},
		{
			name: "interval counts from the last write",
			steps: []step{
				{op: "done", pos: p1},
				{op: "due", at: 7 * time.Second, want: p1, ok: true},
				{op: "written", pos: p1, at: 7 * time.Second},
				{op: "pending", want: p1, ok: false},
				{op: "due", at: 20 * time.Second}, // nothing new
				{op: "done", pos: p2},
				{op: "due", at: 7*time.Second + interval - time.Nanosecond},
				{op: "due", at: 7*time.Second + interval, want: p2, ok: true},
			},
		},
		{
			name: "the latest done position is the one due",
			steps: []step{
				{op: "done", pos: p1},
				{op: "done", pos: p2},
				{op: "due", at: interval, want: p2, ok: true},
			},
		},
		{
			name: "written an older position leaves the newer one pending",
			steps: []step{
				{op: "done", pos: p1},
				{op: "done", pos: p2},
				{op: "written", pos: p1, at: interval},
				{op: "pending", want: p2, ok: true},
				{op: "due", at: interval + time.Second},
				{op: "due", at: 2 * interval, want: p2, ok: true},
			},
		},
		{
			name: "done with the start position is not pending",
			steps: []step{
				{op: "done", pos: stream.Position{Seq: stream.Latest}},
				{op: "pending", want: stream.Position{Seq: stream.Latest}, ok: false},
			},
		},
		{
			name: "shard end is pending like any position",
			steps: []step{
				{op: "done", pos: stream.Position{Seq: stream.ShardEnd}},
				{op: "pending", want: stream.Position{Seq: stream.ShardEnd}, ok: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := New(interval, stream.Position{Seq: stream.Latest}, t0)
			for i, s := range tt.steps {
				switch s.op {
				case "done":
					tr.Done(s.pos)
				case "written":
					tr.Written(s.pos, t0.Add(s.at))
					if got := tr.Last(); got != s.pos {
						t.Errorf("step %d: Last() = %v, want %v", i, got, s.pos)
					}
				case "pending":
					if got, ok := tr.Pending(); got != s.want || ok != s.ok {
						t.Errorf("step %d: Pending() = %v, %v; want %v, %v", i, got, ok, s.want, s.ok)
					}
				case "due":
					if got, ok := tr.Due(t0.Add(s.at)); got != s.want || ok != s.ok {
						t.Errorf("step %d: Due(+%v) = %v, %v; want %v, %v", i, s.at, got, ok, s.want, s.ok)
					}
				}
			}
		})
	}
}
