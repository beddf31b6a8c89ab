package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/shardline/shardline/shared/stream"
)

// join reads messages back: each must hold the batch's fields, the parts
// must be numbered 1..n, and the records, chunks joined, come back in
// order.
func join(t *testing.T, msgs [][]byte, limit int) (Record, []Item) {
	t.Helper()
	var first Record
	var items []Item
	for i, m := range msgs {
		if len(m) > limit {
			t.Errorf("message %d is %d bytes, over %d", i+1, len(m), limit)
		}
		var r Record
		if err := json.Unmarshal(m, &r); err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		if len(msgs) > 1 && (r.Part != i+1 || r.Parts != len(msgs)) {
			t.Errorf("message %d says part %d of %d, want %d of %d", i+1, r.Part, r.Parts, i+1, len(msgs))
		}
		if i == 0 {
			first = r
		} else if r.KinesisBatchInfo != first.KinesisBatchInfo || r.Timestamp != first.Timestamp || r.RequestContext != first.RequestContext {
			t.Errorf("message %d describes another batch: %+v, want %+v", i+1, r.KinesisBatchInfo, first.KinesisBatchInfo)
		}
		for _, it := range r.Records {
			if it.DataOffset != nil && *it.DataOffset > 0 {
				last := &items[len(items)-1]
				if last.SequenceNumber != it.SequenceNumber || last.SubSequenceNumber != it.SubSequenceNumber || int64(len(last.Data)) != *it.DataOffset {
					t.Fatalf("message %d: chunk at %d does not follow %s/%d's %d bytes", i+1, *it.DataOffset, last.SequenceNumber, last.SubSequenceNumber, len(last.Data))
				}
				last.Data = append(last.Data, it.Data...)
				continue
			}
			it.DataOffset = nil
			items = append(items, it)
		}
	}
	return first, items
}

func bigFailure(n, size int) ([]stream.Record, func() Record) {
	f := failure()
	f.Records = nil
	for i := range n {
		f.Records = append(f.Records, stream.Record{
			ShardID: testShard, SequenceNumber: fmt.Sprintf("4966%052d", i), PartitionKey: fmt.Sprintf("key-%d", i),
			Data: bytes.Repeat([]byte{byte(i)}, size), ApproximateArrivalTimestamp: arrived,
		})
	}
	return f.Records, func() Record { return New(f) }
}

// TestSplit500: a batch of 500 records of 1 KB (≈680 KB of JSON) goes in
// several messages, none over 256 KiB, all parts there, every record once
// and in order.
func TestSplit500(t *testing.T) {
	recs, mk := bigFailure(500, 1000)
	msgs, err := Split(mk(), MaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 3 || len(msgs) > 4 {
		t.Errorf("%d messages, want 3 (about 680 KB in 256 KiB messages)", len(msgs))
	}
	head, items := join(t, msgs, MaxMessageBytes)
	if head.KinesisBatchInfo.BatchSize != 500 {
		t.Errorf("batchSize = %d, want the whole batch's 500", head.KinesisBatchInfo.BatchSize)
	}
	checkItems(t, items, recs)
	for i, m := range msgs[:len(msgs)-1] {
		if len(m) < MaxMessageBytes-2000 {
			t.Errorf("message %d is %d bytes: not filled", i+1, len(m))
		}
	}
}

func checkItems(t *testing.T, items []Item, recs []stream.Record) {
	t.Helper()
	if len(items) != len(recs) {
		t.Fatalf("%d records back, want %d", len(items), len(recs))
	}
	for i, it := range items {
		r := recs[i]
		if it.SequenceNumber != r.SequenceNumber || it.PartitionKey != r.PartitionKey || !bytes.Equal(it.Data, r.Data) {
			t.Fatalf("record %d back = %s/%s (%d bytes), want %s/%s (%d bytes)", i, it.SequenceNumber, it.PartitionKey, len(it.Data),
				r.SequenceNumber, r.PartitionKey, len(r.Data))
		}
		if it.DataSize != nil && *it.DataSize != int64(len(r.Data)) {
			t.Errorf("record %d dataSize = %d, want %d", i, *it.DataSize, len(r.Data))
		}
	}
}

// TestSplitLargeRecords: a record too large for a message of its own
// (1 MiB, Kinesis's record limit) goes in chunks; records around it stay
// whole.
func TestSplitLargeRecords(t *testing.T) {
	recs, _ := bigFailure(3, 10)
	recs[1].Data = bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	f := failure()
	f.Records = recs
	msgs, err := Split(New(f), MaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB is ≈1.4 MB of base64: 6 chunks, each in a message of its
	// own, between the first record's message and the third's.
	if len(msgs) != 8 {
		t.Errorf("%d messages, want the large record in chunks", len(msgs))
	}
	_, items := join(t, msgs, MaxMessageBytes)
	checkItems(t, items, recs)
}

func TestSplitFits(t *testing.T) {
	msgs, err := Split(New(failure()), MaxMessageBytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	if strings.Contains(string(msgs[0]), `"part"`) {
		t.Errorf("a record that fits has part numbers: %s", msgs[0])
	}
	whole, _ := Marshal(New(failure()))
	if !bytes.Equal(msgs[0], whole) {
		t.Errorf("the one message differs from the record")
	}
}

// TestSplitLimits splits one batch under many limits: every message fits,
// nothing is lost; a limit with no room for data is an error.
func TestSplitLimits(t *testing.T) {
	recs, mk := bigFailure(20, 300)
	for _, limit := range []int{1300, 1500, 2000, 5000, 20000} {
		msgs, err := Split(mk(), limit)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		_, items := join(t, msgs, limit)
		checkItems(t, items, recs)
	}
	if _, err := Split(mk(), 900); err == nil {
		t.Error("a 900 byte limit: no error, want one (no room for the record's fields)")
	}
}
