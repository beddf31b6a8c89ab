package shards

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/stream"
)

func ids(list []Shard) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.ID
	}
	return out
}

func leases(ls []NewLease) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Shard.ID + "@" + l.Start
	}
	return strings.Join(parts, " ")
}

func set(ids ...string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// A stream that split 0 into 1 and 2, then merged 1 and 2 into 3; 4 was
// always there. Listed children first, as a shuffled listing might.
var (
	s0 = Shard{ID: "s0", Closed: true}
	s1 = Shard{ID: "s1", Parents: []string{"s0"}, Closed: true}
	s2 = Shard{ID: "s2", Parents: []string{"s0"}, Closed: true}
	s3 = Shard{ID: "s3", Parents: []string{"s1", "s2"}}
	s4 = Shard{ID: "s4"}
)

func TestAncestors(t *testing.T) {
	tests := []struct {
		name string
		list []Shard
		want []string
	}{
		{"empty", nil, []string{}},
		{"already ordered", []Shard{s0, s1, s2, s3, s4}, []string{"s0", "s1", "s2", "s3", "s4"}},
		{"children first", []Shard{s3, s4, s2, s1, s0}, []string{"s0", "s1", "s2", "s3", "s4"}},
		{"unknown parents ignored", []Shard{s3, s4}, []string{"s3", "s4"}},
		{"independent shards keep input order", []Shard{s4, s0}, []string{"s4", "s0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(Ancestors(tt.list))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Ancestors = %v, want %v", got, tt.want)
			}
			pos := map[string]int{}
			for i, id := range got {
				pos[id] = i
			}
			for _, s := range tt.list {
				for _, p := range s.Parents {
					if pp, ok := pos[p]; ok && pp > pos[s.ID] {
						t.Errorf("%s comes after its child %s in %v", p, s.ID, got)
					}
				}
			}
		})
	}
}

func TestMissing(t *testing.T) {
	// A split of open shard a into b and c; b and c are open.
	a := Shard{ID: "a", Closed: true}
	b := Shard{ID: "b", Parents: []string{"a"}}
	c := Shard{ID: "c", Parents: []string{"a"}}
	tests := []struct {
		name    string
		list    []Shard
		tracked map[string]bool
		initial string
		want    string
	}{
		{
			name:    "TRIM_HORIZON: every shard, parents first",
			list:    []Shard{s3, s4, s2, s1, s0},
			initial: stream.TrimHorizon,
			want:    "s0@TRIM_HORIZON s1@TRIM_HORIZON s2@TRIM_HORIZON s3@TRIM_HORIZON s4@TRIM_HORIZON",
		},
		{
			name:    "LATEST: closed shards skipped, open ones at LATEST",
			list:    []Shard{s0, s1, s2, s3, s4},
			initial: stream.Latest,
			want:    "s3@LATEST s4@LATEST",
		},
		{
			name:    "LATEST: open children of a closed parent start at LATEST",
			list:    []Shard{a, b, c},
			initial: stream.Latest,
			want:    "b@LATEST c@LATEST",
		},
		{
			name:    "AT_TIMESTAMP: every shard, children inherit",
			list:    []Shard{a, b, c},
			initial: stream.AtTimestamp,
			want:    "a@AT_TIMESTAMP b@AT_TIMESTAMP c@AT_TIMESTAMP",
		},
		{
			name:    "child of a tracked parent starts at TRIM_HORIZON",
			list:    []Shard{a, b, c},
			tracked: set("a"),
			initial: stream.Latest,
			want:    "b@TRIM_HORIZON c@TRIM_HORIZON",
		},
		{
			name:    "child of a tracked parent starts at TRIM_HORIZON whatever the initial position",
			list:    []Shard{a, b, c},
			tracked: set("a"),
			initial: stream.AtTimestamp,
			want:    "b@TRIM_HORIZON c@TRIM_HORIZON",
		},
		{
			name:    "everything tracked",
			list:    []Shard{a, b, c},
			tracked: set("a", "b", "c"),
			initial: stream.TrimHorizon,
			want:    "",
		},
		{
			name:    "shard whose children are tracked gets no lease",
			list:    []Shard{a, b, c},
			tracked: set("b", "c"),
			initial: stream.TrimHorizon,
			want:    "",
		},
		{
			name:    "shard whose grandchild is tracked gets no lease",
			list:    []Shard{s0, s1, s2, s3, s4},
			tracked: set("s3"),
			initial: stream.TrimHorizon,
			want:    "s4@TRIM_HORIZON",
		},
		{
			name:    "merge: child of two parents created this round inherits",
			list:    []Shard{s1, s2, s3},
			initial: stream.TrimHorizon,
			want:    "s1@TRIM_HORIZON s2@TRIM_HORIZON s3@TRIM_HORIZON",
		},
		{
			name:    "merge: one parent tracked wins over one created this round",
			list:    []Shard{s1, s2, s3},
			tracked: set("s2"),
			initial: stream.AtTimestamp,
			want:    "s1@AT_TIMESTAMP s3@TRIM_HORIZON",
		},
		{
			name:    "merge: both parents tracked",
			list:    []Shard{s1, s2, s3},
			tracked: set("s1", "s2"),
			initial: stream.Latest,
			want:    "s3@TRIM_HORIZON",
		},
		{
			name:    "LATEST: closed child of a parent created this round is not skipped",
			list:    []Shard{{ID: "p"}, {ID: "q", Parents: []string{"p"}, Closed: true}},
			initial: stream.Latest,
			want:    "p@LATEST q@LATEST",
		},
		{
			name:    "parent missing from the listing (trimmed): child at the initial position",
			list:    []Shard{b, c},
			initial: stream.Latest,
			want:    "b@LATEST c@LATEST",
		},
		{
			name:    "parent missing from the listing but tracked",
			list:    []Shard{b},
			tracked: set("a"),
			initial: stream.Latest,
			want:    "b@TRIM_HORIZON",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tracked := tt.tracked
			if tracked == nil {
				tracked = map[string]bool{}
			}
			if got := leases(Missing(tt.list, tracked, tt.initial)); got != tt.want {
				t.Errorf("Missing = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReady(t *testing.T) {
	state := map[string]struct{ ended, tracked bool }{
		"ended":   {true, true},
		"reading": {false, true},
	}
	ended := func(id string) (bool, bool) {
		s := state[id]
		return s.ended, s.tracked
	}
	tests := []struct {
		parents []string
		want    bool
	}{
		{nil, true},
		{[]string{"ended"}, true},
		{[]string{"reading"}, false},
		{[]string{"gone"}, true},
		{[]string{"ended", "gone"}, true},
		{[]string{"ended", "reading"}, false},
		{[]string{"gone", "reading"}, false},
	}
	for _, tt := range tests {
		if got := Ready(tt.parents, ended); got != tt.want {
			t.Errorf("Ready(%v) = %v, want %v", tt.parents, got, tt.want)
		}
	}
}

func TestFromKinesis(t *testing.T) {
	tests := []struct {
		name string
		in   types.Shard
		want Shard
	}{
		{
			name: "open, no parents",
			in: types.Shard{ShardId: aws.String("shardId-000000000000"),
				HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("170141183460469231731687303715884105727")},
				SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}},
			want: Shard{ID: "shardId-000000000000", StartingHashKey: "0", EndingHashKey: "170141183460469231731687303715884105727"},
		},
		{
			name: "closed merge child",
			in: types.Shard{ShardId: aws.String("shardId-000000000003"), ParentShardId: aws.String("shardId-000000000001"),
				AdjacentParentShardId: aws.String("shardId-000000000002"),
				SequenceNumberRange:   &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1"), EndingSequenceNumber: aws.String("9")}},
			want: Shard{ID: "shardId-000000000003", Parents: []string{"shardId-000000000001", "shardId-000000000002"}, Closed: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromKinesis(tt.in)
			if got.ID != tt.want.ID || !slices.Equal(got.Parents, tt.want.Parents) || got.Closed != tt.want.Closed ||
				got.StartingHashKey != tt.want.StartingHashKey || got.EndingHashKey != tt.want.EndingHashKey {
				t.Errorf("FromKinesis = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFromChild(t *testing.T) {
	parents := []string{"shardId-000000000001", "shardId-000000000002"}
	got := FromChild(types.ChildShard{ShardId: aws.String("shardId-000000000003"), ParentShards: parents,
		HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("9")}})
	want := Shard{ID: "shardId-000000000003", Parents: parents, StartingHashKey: "0", EndingHashKey: "9"}
	if got.ID != want.ID || !slices.Equal(got.Parents, want.Parents) || got.StartingHashKey != want.StartingHashKey ||
		got.EndingHashKey != want.EndingHashKey || got.Closed {
		t.Errorf("FromChild = %+v, want %+v", got, want)
	}
	parents[0] = "changed"
	if got.Parents[0] == "changed" {
		t.Errorf("FromChild shares the ParentShards slice, want a copy")
	}
}
