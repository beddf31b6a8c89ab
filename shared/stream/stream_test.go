package stream

import (
	"testing"
	"time"
)

const (
	seqA = "49590338271490256608559692538361571095921575989136588898"
	seqB = "49590338271490256608559692540925702759324208523137515618"
)

func TestCompareSeq(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "1", 0},
		{"1", "2", -1},
		{"2", "1", 1},
		{"9", "10", -1}, // shorter is smaller, not lexically larger
		{"10", "9", 1},
		{"007", "7", 0}, // leading zeros do not count
		{"0010", "9", 1},
		{"9", "0010", -1},
		{"0", "", 0},
		{"000", "0", 0},
		{seqA, seqB, -1},
		{seqB, seqA, 1},
		{seqA, seqA, 0},
		{"0" + seqA, seqA, 0},
		{seqA, "99999999999999999999", 1},
		{"123456789012345678901234567890123456789012345678901234567890", seqA, 1},
	}
	for _, tt := range tests {
		if got := CompareSeq(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareSeq(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestPositionAfter(t *testing.T) {
	tests := []struct {
		name string
		p, q Position
		want bool
	}{
		{"same", Position{Seq: "5"}, Position{Seq: "5"}, false},
		{"greater seq", Position{Seq: "6"}, Position{Seq: "5"}, true},
		{"smaller seq", Position{Seq: "5"}, Position{Seq: "6"}, false},
		{"longer seq", Position{Seq: "10"}, Position{Seq: "9"}, true},
		{"shorter seq", Position{Seq: "9"}, Position{Seq: "10"}, false},
		{"leading zeros equal, sub decides", Position{Seq: "0005", SubSeq: 1}, Position{Seq: "5"}, true},
		{"leading zeros, smaller", Position{Seq: "0009"}, Position{Seq: "10"}, false},
		{"same seq, greater sub", Position{Seq: seqA, SubSeq: 3}, Position{Seq: seqA, SubSeq: 2}, true},
		{"same seq, smaller sub", Position{Seq: seqA, SubSeq: 2}, Position{Seq: seqA, SubSeq: 3}, false},
		{"greater seq beats smaller sub", Position{Seq: seqB}, Position{Seq: seqA, SubSeq: 99}, true},
		{"smaller seq loses to greater sub", Position{Seq: seqA, SubSeq: 99}, Position{Seq: seqB}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.After(tt.q); got != tt.want {
				t.Errorf("%v.After(%v) = %v, want %v", tt.p, tt.q, got, tt.want)
			}
		})
	}
}

func TestPositionIsSentinel(t *testing.T) {
	tests := []struct {
		seq  string
		want bool
	}{
		{TrimHorizon, true},
		{Latest, true},
		{AtTimestamp, true},
		{ShardEnd, true},
		{"", true},
		{seqA, false},
		{"0", false},
		{"trim_horizon", false},
	}
	for _, tt := range tests {
		if got := (Position{Seq: tt.seq}).IsSentinel(); got != tt.want {
			t.Errorf("Position{Seq: %q}.IsSentinel() = %v, want %v", tt.seq, got, tt.want)
		}
	}
}

func TestPositionString(t *testing.T) {
	tests := []struct {
		p    Position
		want string
	}{
		{Position{Seq: "12"}, "12"},
		{Position{Seq: "12", SubSeq: 3}, "12/3"},
		{Position{Seq: TrimHorizon}, TrimHorizon},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestRecordIdentifiers(t *testing.T) {
	tests := []struct {
		name        string
		rec         Record
		wantEventID string
		wantItem    string
	}{
		{
			name:        "plain",
			rec:         Record{ShardID: "shardId-000000000006", SequenceNumber: seqA},
			wantEventID: "shardId-000000000006:" + seqA,
			wantItem:    seqA,
		},
		{
			name:        "aggregated sub 0",
			rec:         Record{ShardID: "shardId-000000000006", SequenceNumber: seqA, Aggregated: true},
			wantEventID: "shardId-000000000006:" + seqA + ":0",
			wantItem:    seqA + ":0",
		},
		{
			name:        "aggregated sub 7",
			rec:         Record{ShardID: "shardId-000000000001", SequenceNumber: seqB, SubSequenceNumber: 7, Aggregated: true},
			wantEventID: "shardId-000000000001:" + seqB + ":7",
			wantItem:    seqB + ":7",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rec.EventID(); got != tt.wantEventID {
				t.Errorf("EventID() = %q, want %q", got, tt.wantEventID)
			}
			if got := tt.rec.ItemIdentifier(); got != tt.wantItem {
				t.Errorf("ItemIdentifier() = %q, want %q", got, tt.wantItem)
			}
			shard, pos, agg, err := ParseEventID(tt.rec.EventID())
			if err != nil {
				t.Fatalf("ParseEventID(%q): %v", tt.rec.EventID(), err)
			}
			if shard != tt.rec.ShardID {
				t.Errorf("ParseEventID shard = %q, want %q", shard, tt.rec.ShardID)
			}
			if pos != tt.rec.Position() {
				t.Errorf("ParseEventID position = %v, want %v", pos, tt.rec.Position())
			}
			if agg != tt.rec.Aggregated {
				t.Errorf("ParseEventID aggregated = %v, want %v", agg, tt.rec.Aggregated)
			}
		})
	}
}

func TestParseEventIDLambda(t *testing.T) {
	// The eventID of Lambda's sample Kinesis event.
	id := "shardId-000000000006:49590338271490256608559692538361571095921575989136588898"
	shard, pos, agg, err := ParseEventID(id)
	if err != nil {
		t.Fatalf("ParseEventID(%q): %v", id, err)
	}
	if got, want := shard, "shardId-000000000006"; got != want {
		t.Errorf("shard = %q, want %q", got, want)
	}
	if got, want := pos, (Position{Seq: seqA}); got != want {
		t.Errorf("position = %v, want %v", got, want)
	}
	if agg {
		t.Errorf("aggregated = true, want false")
	}
}

func TestParseEventIDBad(t *testing.T) {
	for _, id := range []string{
		"",
		"shardId-000000000006",
		":" + seqA,
		"shardId-000000000006:",
		"shardId-000000000006::1",
		"shardId-000000000006:" + seqA + ":x",
		"shardId-000000000006:" + seqA + ":-1",
		"shardId-000000000006:" + seqA + ":",
		"shardId-000000000006:" + seqA + ":1:2",
	} {
		if shard, pos, _, err := ParseEventID(id); err == nil {
			t.Errorf("ParseEventID(%q) = %q, %v, nil; want an error", id, shard, pos)
		}
	}
}

func TestEvent(t *testing.T) {
	src := Source{
		StreamARN:         "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
		Region:            "us-east-2",
		InvokeIdentityARN: "arn:aws:iam::123456789012:role/lambda-role",
	}
	arrival := time.UnixMilli(1545084650987)
	recs := []Record{
		{ShardID: "shardId-000000000006", SequenceNumber: seqA, PartitionKey: "pk-0", Data: []byte("hello"), ApproximateArrivalTimestamp: arrival},
		{ShardID: "shardId-000000000006", SequenceNumber: seqB, SubSequenceNumber: 2, Aggregated: true, PartitionKey: "pk-1", Data: []byte("world"), ApproximateArrivalTimestamp: arrival, EncryptionType: "KMS"},
	}
	ev := Event(src, recs)
	if got, want := len(ev.Records), len(recs); got != want {
		t.Fatalf("len(Records) = %d, want %d", got, want)
	}
	for i, er := range ev.Records {
		r := recs[i]
		checks := []struct{ field, got, want string }{
			{"eventSource", er.EventSource, "aws:kinesis"},
			{"eventName", er.EventName, "aws:kinesis:record"},
			{"eventVersion", er.EventVersion, "1.0"},
			{"eventID", er.EventID, r.EventID()},
			{"eventSourceARN", er.EventSourceArn, src.StreamARN},
			{"awsRegion", er.AwsRegion, src.Region},
			{"invokeIdentityArn", er.InvokeIdentityArn, src.InvokeIdentityARN},
			{"kinesis.kinesisSchemaVersion", er.Kinesis.KinesisSchemaVersion, "1.0"},
			{"kinesis.partitionKey", er.Kinesis.PartitionKey, r.PartitionKey},
			{"kinesis.sequenceNumber", er.Kinesis.SequenceNumber, r.SequenceNumber},
			{"kinesis.data", string(er.Kinesis.Data), string(r.Data)},
			{"kinesis.encryptionType", er.Kinesis.EncryptionType, r.EncryptionType},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("record %d %s = %q, want %q", i, c.field, c.got, c.want)
			}
		}
		if got, want := er.Kinesis.ApproximateArrivalTimestamp.Time, arrival; !got.Equal(want) {
			t.Errorf("record %d approximateArrivalTimestamp = %v, want %v", i, got, want)
		}
	}
	if got, want := ev.Records[1].EventID, "shardId-000000000006:"+seqB+":2"; got != want {
		t.Errorf("aggregated eventID = %q, want %q", got, want)
	}
}
