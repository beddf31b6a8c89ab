package lease

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/shardline/shardline/shared/lease/leasetest"
	"github.com/shardline/shardline/shared/stream"
)

const kclSeq = "49590338271490256608559692538361571095921575989136588898"

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		l    Lease
	}{
		{
			name: "full",
			l: Lease{
				Key:                          "shardId-000000000003",
				Owner:                        "host-1234-abcd",
				Counter:                      42,
				Checkpoint:                   stream.Position{Seq: kclSeq, SubSeq: 7},
				OwnerSwitchesSinceCheckpoint: 2,
				ParentShardIDs:               []string{"shardId-000000000001", "shardId-000000000002"},
				ChildShardIDs:                []string{"shardId-000000000004"},
				StartingHashKey:              "0",
				EndingHashKey:                "340282366920938463463374607431768211455",
				Nonce:                        "1767366245000-abcd",
				DroppedOutOfRange:            12,
				RecordsHandled:               1234,
				ThroughputKBps:               12.5,
			},
		},
		{
			name: "mid-handoff (KCL 3.x)",
			l: Lease{
				Key: "shardId-000000000002", Owner: "next", CheckpointOwner: "holder", Counter: 8,
				Checkpoint: stream.Position{Seq: kclSeq},
			},
		},
		{
			name: "parked, at a timestamp",
			l: Lease{
				Key: "shardId-000000000001", Counter: 3,
				Checkpoint: stream.Position{Seq: stream.AtTimestamp},
				Timestamp:  time.Date(2026, 11, 30, 12, 0, 0, 5e8, time.UTC),
				Park: &Park{
					Reason: "gave up on records 1..2", Count: 2,
					Since: time.Date(2026, 11, 30, 12, 1, 0, 0, time.UTC), Until: time.Date(2026, 11, 30, 12, 1, 10, 0, time.UTC),
				},
			},
		},
		{
			name: "new, unowned, at a sentinel",
			l:    Lease{Key: "shardId-000000000000", Checkpoint: stream.Position{Seq: stream.TrimHorizon}},
		},
		{
			name: "ended",
			l:    Lease{Key: "shardId-000000000000", Owner: "w", Counter: 9, Checkpoint: stream.Position{Seq: stream.ShardEnd}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item := encode(tt.l)
			got, err := decode(item)
			if err != nil {
				t.Fatalf("decode(encode(l)): %v", err)
			}
			if !reflect.DeepEqual(got, tt.l) {
				t.Errorf("decode(encode(l)) = %+v, want %+v", got, tt.l)
			}
		})
	}
}

func TestEncodeKCLNames(t *testing.T) {
	item := encode(Lease{
		Key: "shardId-000000000003", Owner: "w", Counter: 42,
		Checkpoint:                   stream.Position{Seq: kclSeq, SubSeq: 7},
		OwnerSwitchesSinceCheckpoint: 2,
		ParentShardIDs:               []string{"shardId-000000000001"},
		ChildShardIDs:                []string{"shardId-000000000004"},
		StartingHashKey:              "0", EndingHashKey: "9",
	})
	want := map[string]types.AttributeValue{
		"entityType":                   &types.AttributeValueMemberS{Value: "LEASE"}, // as KCL 3.5 writes every lease
		"leaseKey":                     &types.AttributeValueMemberS{Value: "shardId-000000000003"},
		"leaseOwner":                   &types.AttributeValueMemberS{Value: "w"},
		"leaseCounter":                 &types.AttributeValueMemberN{Value: "42"},
		"checkpoint":                   &types.AttributeValueMemberS{Value: kclSeq},
		"checkpointSubSequenceNumber":  &types.AttributeValueMemberN{Value: "7"},
		"ownerSwitchesSinceCheckpoint": &types.AttributeValueMemberN{Value: "2"},
		"parentShardId":                &types.AttributeValueMemberSS{Value: []string{"shardId-000000000001"}},
		"childShardIds":                &types.AttributeValueMemberSS{Value: []string{"shardId-000000000004"}},
		"startingHashKey":              &types.AttributeValueMemberS{Value: "0"},
		"endingHashKey":                &types.AttributeValueMemberS{Value: "9"},
	}
	if !reflect.DeepEqual(item, want) {
		t.Errorf("encode = %#v, want %#v", item, want)
	}
	// No owner, parents, children or hash keys: the attributes are left
	// out (DynamoDB refuses empty sets).
	item = encode(Lease{Key: "k", Checkpoint: stream.Position{Seq: stream.Latest}})
	for _, name := range []string{"leaseOwner", "parentShardId", "childShardIds", "startingHashKey", "endingHashKey"} {
		if _, ok := item[name]; ok {
			t.Errorf("encode of an empty lease has %s, want it left out", name)
		}
	}
}

func TestDecodeKCLItem(t *testing.T) {
	// An item as the Java KCL 2.x/3.x writes it, with attributes Shardline
	// does not use.
	item := map[string]types.AttributeValue{
		"entityType":                         &types.AttributeValueMemberS{Value: "LEASE"},
		"leaseKey":                           &types.AttributeValueMemberS{Value: "shardId-000000000001"},
		"leaseOwner":                         &types.AttributeValueMemberS{Value: "ip-10-0-0-1.ec2.internal:1a2b3c"},
		"leaseCounter":                       &types.AttributeValueMemberN{Value: "1234"},
		"checkpoint":                         &types.AttributeValueMemberS{Value: kclSeq},
		"checkpointSubSequenceNumber":        &types.AttributeValueMemberN{Value: "3"},
		"ownerSwitchesSinceCheckpoint":       &types.AttributeValueMemberN{Value: "1"},
		"parentShardId":                      &types.AttributeValueMemberSS{Value: []string{"shardId-000000000000"}},
		"startingHashKey":                    &types.AttributeValueMemberS{Value: "0"},
		"endingHashKey":                      &types.AttributeValueMemberS{Value: "170141183460469231731687303715884105727"},
		"pendingCheckpoint":                  &types.AttributeValueMemberS{Value: "49590338271490256608559692540925702759324208523137515618"},
		"pendingCheckpointSubSequenceNumber": &types.AttributeValueMemberN{Value: "0"},
		"pendingCheckpointState":             &types.AttributeValueMemberB{Value: []byte{1, 2, 3}},
		"throughputKBps":                     &types.AttributeValueMemberN{Value: "12.5"},
		"lastCounterIncrementNanos":          &types.AttributeValueMemberN{Value: "1767366245000000000"},
		"checkpointOwner":                    &types.AttributeValueMemberS{Value: "other"},
		"isMarkedForLeaseSteal":              &types.AttributeValueMemberBOOL{Value: false},
		"leaseTableName":                     &types.AttributeValueMemberS{Value: "app"},
	}
	got, err := decode(item)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	want := Lease{
		Key:                          "shardId-000000000001",
		Owner:                        "ip-10-0-0-1.ec2.internal:1a2b3c",
		CheckpointOwner:              "other",
		ThroughputKBps:               12.5,
		Counter:                      1234,
		Checkpoint:                   stream.Position{Seq: kclSeq, SubSeq: 3},
		OwnerSwitchesSinceCheckpoint: 1,
		ParentShardIDs:               []string{"shardId-000000000000"},
		StartingHashKey:              "0",
		EndingHashKey:                "170141183460469231731687303715884105727",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decode = %+v, want %+v", got, want)
	}
}

func TestDecodeTolerated(t *testing.T) {
	tests := []struct {
		name string
		item map[string]types.AttributeValue
		want Lease
	}{
		{
			name: "key and counter only",
			item: map[string]types.AttributeValue{"leaseKey": &types.AttributeValueMemberS{Value: "k"}, "leaseCounter": &types.AttributeValueMemberN{Value: "0"}},
			want: Lease{Key: "k"},
		},
		{
			name: "malformed display attributes of Shardline's are ignored",
			item: map[string]types.AttributeValue{
				"leaseKey": &types.AttributeValueMemberS{Value: "k"}, "leaseCounter": &types.AttributeValueMemberN{Value: "0"},
				"shardlineLastRenewal": &types.AttributeValueMemberS{Value: "yesterday"}, "shardlineDroppedOutOfRange": &types.AttributeValueMemberS{Value: "x"},
			},
			want: Lease{Key: "k"},
		},
		{
			name: "NULL owner",
			item: map[string]types.AttributeValue{
				"leaseKey":     &types.AttributeValueMemberS{Value: "k"},
				"leaseCounter": &types.AttributeValueMemberN{Value: "0"},
				"leaseOwner":   &types.AttributeValueMemberNULL{Value: true},
			},
			want: Lease{Key: "k"},
		},
		{
			name: "parents as a list",
			item: map[string]types.AttributeValue{
				"leaseKey":     &types.AttributeValueMemberS{Value: "k"},
				"leaseCounter": &types.AttributeValueMemberN{Value: "0"},
				"parentShardId": &types.AttributeValueMemberL{Value: []types.AttributeValue{
					&types.AttributeValueMemberS{Value: "p1"}, &types.AttributeValueMemberS{Value: "p2"}}},
			},
			want: Lease{Key: "k", ParentShardIDs: []string{"p1", "p2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decode(tt.item)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	tests := []struct {
		name string
		attr string
		val  types.AttributeValue
	}{
		{"key missing", "leaseKey", nil},
		{"counter missing", "leaseCounter", nil},
		{"AT_TIMESTAMP time not a time", "shardlineTimestamp", s("noon")},
		{"key a number", "leaseKey", n("1")},
		{"owner a number", "leaseOwner", n("1")},
		{"checkpoint owner a number", "checkpointOwner", n("1")},
		{"counter a string", "leaseCounter", s("1")},
		{"counter not an integer", "leaseCounter", n("1.5")},
		{"checkpoint a number", "checkpoint", n("123")},
		{"sub-sequence a string", "checkpointSubSequenceNumber", s("0")},
		{"owner switches a string", "ownerSwitchesSinceCheckpoint", s("0")},
		{"parents a string", "parentShardId", s("p")},
		{"parents a list of numbers", "parentShardId", &types.AttributeValueMemberL{Value: []types.AttributeValue{n("1")}}},
		{"children a string", "childShardIds", s("c")},
		{"starting hash key a number", "startingHashKey", n("0")},
		{"ending hash key a number", "endingHashKey", n("9")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item := map[string]types.AttributeValue{"leaseKey": s("shardId-000000000001"), "leaseCounter": n("0")}
			if tt.val == nil {
				delete(item, tt.attr)
			} else {
				item[tt.attr] = tt.val
			}
			_, err := decode(item)
			if err == nil {
				t.Fatalf("decode with %s = %#v: nil error, want one", tt.attr, tt.val)
			}
			if !strings.Contains(err.Error(), tt.attr) {
				t.Errorf("error %q does not name the attribute %s", err, tt.attr)
			}
			if tt.attr != "leaseKey" && !strings.Contains(err.Error(), "shardId-000000000001") {
				t.Errorf("error %q does not name the lease", err)
			}
		})
	}
}

// TestDecodeSingularChildShardID: some KCL 2.x versions wrote the children
// as childShardId; they are read as ChildShardIDs.
func TestDecodeSingularChildShardID(t *testing.T) {
	item := map[string]types.AttributeValue{
		"leaseKey":     &types.AttributeValueMemberS{Value: "shardId-000000000000"},
		"leaseCounter": &types.AttributeValueMemberN{Value: "3"},
		"checkpoint":   &types.AttributeValueMemberS{Value: "SHARD_END"},
		"childShardId": &types.AttributeValueMemberSS{Value: []string{"shardId-000000000001", "shardId-000000000002"}},
	}
	l, err := decode(item)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(l.ChildShardIDs); got != 2 {
		t.Fatalf("ChildShardIDs = %v, want the two children", l.ChildShardIDs)
	}
}

func TestKindOf(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	others := leasetest.KCL351Entities("ip-10-0-0-1.ec2.internal:1a2b3c", "ip-10-0-0-2.ec2.internal:4d5e6f")
	others["entityType not a string"] = map[string]types.AttributeValue{"leaseKey": s("odd"), "entityType": n("1")}
	for name, item := range others {
		if got := kindOf(item); got != kindNotLease {
			t.Errorf("%s: kind %d, want not a lease", name, got)
		}
	}
	tests := []struct {
		name string
		item map[string]types.AttributeValue
		want itemKind
	}{
		{"KCL 2.x lease (no entityType)", map[string]types.AttributeValue{"leaseKey": s("shardId-000000000000"), "leaseCounter": n("1")}, kindLease},
		{"KCL 3.5 lease", map[string]types.AttributeValue{"leaseKey": s("shardId-000000000000"), "leaseCounter": n("1"), "entityType": s("LEASE")}, kindLease},
		{"lease without a counter", map[string]types.AttributeValue{"leaseKey": s("shardId-000000000000")}, kindLease},
		{"multi-stream lease", map[string]types.AttributeValue{
			"leaseKey": s("123456789012:orders:1767366245:shardId-000000000000"), "leaseCounter": n("1"), "entityType": s("LEASE"),
			"streamName": s("123456789012:orders:1767366245"), "shardId": s("shardId-000000000000"),
		}, kindMultiStream},
		{"multi-stream key alone", map[string]types.AttributeValue{"leaseKey": s("123456789012:orders:1767366245:shardId-000000000000"), "leaseCounter": n("1")}, kindMultiStream},
		{"streamName alone", map[string]types.AttributeValue{"leaseKey": s("shardId-000000000000"), "leaseCounter": n("1"), "streamName": s("a:b:1")}, kindMultiStream},
	}
	for _, tt := range tests {
		if got := kindOf(tt.item); got != tt.want {
			t.Errorf("%s: kind %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestThroughputKBps(t *testing.T) {
	for v, want := range map[float64]string{12.3456: "12.346", 1e-300: "0", 0: "0", 2048: "2048"} {
		if got := kbps(v).(*types.AttributeValueMemberN).Value; got != want {
			t.Errorf("kbps(%g) = %s, want %s", v, got, want)
		}
	}
	// As Java's Double.toString writes them.
	for in, want := range map[string]float64{"1.4921875": 1.4921875, "1.0E-4": 1e-4, "0.0": 0} {
		item := map[string]types.AttributeValue{
			"leaseKey": &types.AttributeValueMemberS{Value: "k"}, "leaseCounter": &types.AttributeValueMemberN{Value: "0"},
			"throughputKBps": &types.AttributeValueMemberN{Value: in},
		}
		l, err := decode(item)
		if err != nil || l.ThroughputKBps != want {
			t.Errorf("decode throughputKBps %s = %g, %v; want %g", in, l.ThroughputKBps, err, want)
		}
	}
}

func TestHolder(t *testing.T) {
	l := Lease{Key: "k", Owner: "next"}
	if l.Holder() != "next" || l.MidHandoff() {
		t.Errorf("no handoff: holder %q, mid-handoff %v", l.Holder(), l.MidHandoff())
	}
	l.CheckpointOwner = "old"
	if l.Holder() != "old" || !l.MidHandoff() {
		t.Errorf("mid-handoff: holder %q, mid-handoff %v; want old, true", l.Holder(), l.MidHandoff())
	}
}
