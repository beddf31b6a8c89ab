package shardline

import (
	"testing"

	"github.com/shardline/shardline/shared/stream"
)

// TestReplayResumeAt: where a shard stopped midway resumes: the first
// record handed and not done, else the first the reader held, else the
// record after the last one read, else the replay's -from.
func TestReplayResumeAt(t *testing.T) {
	pos := func(seq string, sub int64) stream.Position { return stream.Position{Seq: seq, SubSeq: sub} }
	recs := func(ps ...stream.Position) []stream.Record {
		var out []stream.Record
		for _, p := range ps {
			out = append(out, stream.Record{SequenceNumber: p.Seq, SubSequenceNumber: p.SubSeq})
		}
		return out
	}
	tests := []struct {
		name   string
		setup  func(st *replayShard)
		want   string
		wantOK bool
	}{
		{"nothing read", func(*replayShard) {}, "", false},
		{"handed, none done", func(st *replayShard) { st.hand(recs(pos("10", 0), pos("11", 0))) }, "10", true},
		{"handed, some done", func(st *replayShard) {
			st.hand(recs(pos("10", 0), pos("11", 0), pos("11", 1), pos("12", 0)))
			st.setDone(pos("11", 0))
		}, "11:1", true},
		{"all done, the reader held the next", func(st *replayShard) {
			st.hand(recs(pos("10", 0)))
			st.setDone(pos("10", 0))
			st.through = pos("10", 0)
			st.pending, st.hasPending = pos("13", 0), true
		}, "13", true},
		{"all done: after the last read", func(st *replayShard) {
			st.hand(recs(pos("10", 0), pos("11", 2)))
			st.setDone(pos("11", 2))
			st.through = pos("11", 4) // the last two filtered out
		}, "11:5", true},
		{"handed again after all were done", func(st *replayShard) {
			st.hand(recs(pos("10", 0)))
			st.setDone(pos("10", 0))
			st.hand(recs(pos("12", 0), pos("13", 0)))
		}, "12", true},
	}
	for _, tt := range tests {
		var st replayShard
		tt.setup(&st)
		p, ok := st.resumeAt()
		if got := positionArg(p); ok != tt.wantOK || ok && got != tt.want {
			t.Errorf("%s: resumeAt() = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
}
