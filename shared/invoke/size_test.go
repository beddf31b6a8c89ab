package invoke

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/stream"
)

var sizerSources = []stream.Source{
	{},
	{StreamARN: "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream", Region: "us-east-2",
		InvokeIdentityARN: "arn:aws:iam::123456789012:role/lambda-role"},
	{StreamARN: "arn:aws:kinesis:eu-west-1:123456789012:stream/<odd>&\"name\"", Region: "eu-west-1"},
}

// checkSize compares the Sizer with the bytes Marshal writes.
func checkSize(t *testing.T, src stream.Source, recs []stream.Record) {
	t.Helper()
	b, err := Marshal(stream.Event(src, recs))
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	s := NewSizer(src)
	sum := 0
	for i := range recs {
		sum += s.Record(&recs[i])
	}
	if got, want := EventSize(len(recs), sum), len(b); got != want {
		t.Errorf("EventSize = %d, Marshal wrote %d bytes: %s", got, want, b)
	}
	for i := range recs {
		if bound, exact := s.Bound(&recs[i]), s.Record(&recs[i]); bound < exact {
			t.Errorf("record %d: Bound %d under the exact size %d", i, bound, exact)
		}
	}
}

// TestSizer: the size computed without marshalling is exactly what
// Marshal writes, whatever the records hold.
func TestSizer(t *testing.T) {
	base := stream.Record{ShardID: "shardId-000000000006", SequenceNumber: "49590338271490256608559692538361571095921575989136588898",
		PartitionKey: "pk", Data: []byte("Hello, this is a test."), ApproximateArrivalTimestamp: time.UnixMilli(1545084650987)}
	with := func(f func(r *stream.Record)) stream.Record {
		r := base
		f(&r)
		return r
	}
	tests := []struct {
		name string
		recs []stream.Record
	}{
		{"no records", nil},
		{"one plain record", []stream.Record{base}},
		{"aggregated", []stream.Record{with(func(r *stream.Record) { r.Aggregated, r.SubSequenceNumber = true, 12 })}},
		{"aggregated, sub 0", []stream.Record{with(func(r *stream.Record) { r.Aggregated = true })}},
		{"encryption type", []stream.Record{with(func(r *stream.Record) { r.EncryptionType = "KMS" })}},
		{"nil data", []stream.Record{with(func(r *stream.Record) { r.Data = nil })}},
		{"empty data", []stream.Record{with(func(r *stream.Record) { r.Data = []byte{} })}},
		{"data of every length mod 3", []stream.Record{
			with(func(r *stream.Record) { r.Data = []byte("a") }),
			with(func(r *stream.Record) { r.Data = []byte("ab") }),
			with(func(r *stream.Record) { r.Data = []byte("abc") }),
			with(func(r *stream.Record) { r.Data = []byte{0, 0xff, 0xfe, 0x80} }),
		}},
		{"HTML and quotes in the partition key", []stream.Record{with(func(r *stream.Record) { r.PartitionKey = `<a href="x">&'\` })}},
		{"control characters", []stream.Record{with(func(r *stream.Record) { r.PartitionKey = "\x00\x01\b\f\n\r\t\x1f\x7f" })}},
		{"unicode", []stream.Record{with(func(r *stream.Record) { r.PartitionKey = "é日本語🎉\u2028\u2029\ufeff" })}},
		{"invalid UTF-8", []stream.Record{with(func(r *stream.Record) {
			r.PartitionKey = "a\xffb\xc3\xe2\x82\xf0\x9f\x98"
			r.ShardID = "shard\xc3"
		})}},
		{"timestamps", []stream.Record{
			with(func(r *stream.Record) { r.ApproximateArrivalTimestamp = time.UnixMilli(0) }),
			with(func(r *stream.Record) { r.ApproximateArrivalTimestamp = time.UnixMilli(1545084711000) }),
			with(func(r *stream.Record) { r.ApproximateArrivalTimestamp = time.UnixMilli(1545084711010) }),
			with(func(r *stream.Record) { r.ApproximateArrivalTimestamp = time.UnixMilli(1545084711100) }),
			with(func(r *stream.Record) { r.ApproximateArrivalTimestamp = time.UnixMilli(-1500) }),
			with(func(r *stream.Record) { r.ApproximateArrivalTimestamp = time.Time{} }),
			with(func(r *stream.Record) { r.ApproximateArrivalTimestamp = time.Unix(0, 1) }),
		}},
		{"empty strings", []stream.Record{{}}},
		{"a large record", []stream.Record{with(func(r *stream.Record) { r.Data = []byte(strings.Repeat("x", 1<<20+1)) })}},
		{"a negative sub-sequence number", []stream.Record{with(func(r *stream.Record) { r.Aggregated, r.SubSequenceNumber = true, -3 })}},
		{"the largest sub-sequence number", []stream.Record{with(func(r *stream.Record) { r.Aggregated, r.SubSequenceNumber = true, math.MaxInt64 })}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, src := range sizerSources {
				checkSize(t, src, tt.recs)
			}
		})
	}
}

// FuzzSizer: any record, any source.
func FuzzSizer(f *testing.F) {
	f.Add("shardId-000000000006", "49590338271490256608559692538361571095921575989136588898", "pk", []byte("data"), int64(1545084650987), "", false, int64(0), "us-east-2")
	f.Add("s\xff", "1", "<&>\u2028", []byte{}, int64(-1), "KMS", true, int64(7), "\n")
	f.Fuzz(func(t *testing.T, shard, seq, pk string, data []byte, ms int64, enc string, agg bool, sub int64, region string) {
		if ms < -1<<50 || ms > 1<<50 { // time.UnixMilli's range
			return
		}
		r := stream.Record{ShardID: shard, SequenceNumber: seq, PartitionKey: pk, Data: data,
			ApproximateArrivalTimestamp: time.UnixMilli(ms), EncryptionType: enc, Aggregated: agg, SubSequenceNumber: sub}
		checkSize(t, stream.Source{Region: region, StreamARN: pk, InvokeIdentityARN: shard}, []stream.Record{r, r})
	})
}

// BenchmarkSizer: the cost per record of measuring a batch.
func BenchmarkSizer(b *testing.B) {
	s := NewSizer(sizerSources[1])
	r := stream.Record{ShardID: "shardId-000000000006", SequenceNumber: "49590338271490256608559692538361571095921575989136588898",
		PartitionKey: "partition-key-0123456789", Data: make([]byte, 1000), ApproximateArrivalTimestamp: time.UnixMilli(1545084650987)}
	b.Run("exact", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Record(&r)
		}
	})
	b.Run("bound", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = s.Bound(&r)
		}
	})
}
