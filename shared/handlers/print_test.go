package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

const (
	testShard = "shardId-000000000006"
	testSeq1  = "49590338271490256608559692538361571095921575989136588898"
	testSeq2  = "49590338271490256608559692540925702759324208523137515618"
)

var testSource = stream.Source{
	StreamARN:         "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
	Region:            "us-east-2",
	InvokeIdentityARN: "arn:aws:iam::123456789012:role/lambda-role",
}

func TestPrintLines(t *testing.T) {
	arrival := time.UnixMilli(1545084650987)
	tests := []struct {
		name string
		rec  stream.Record
		// eventID, if set, replaces the record's eventID in the event.
		eventID string
		want    string
	}{
		{
			name: "plain",
			rec:  stream.Record{ShardID: testShard, SequenceNumber: testSeq1, PartitionKey: "partitionKey-0", Data: []byte("3 7 1 9"), ApproximateArrivalTimestamp: arrival},
			want: `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"partitionKey":"partitionKey-0","approximateArrivalTimestamp":1545084650.987,"data":"3 7 1 9"}`,
		},
		{
			name: "de-aggregated",
			rec:  stream.Record{ShardID: testShard, SequenceNumber: testSeq2, SubSequenceNumber: 2, Aggregated: true, PartitionKey: "user-key", Data: []byte(`say "<hi>" & go`), ApproximateArrivalTimestamp: arrival},
			want: `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692540925702759324208523137515618","subSequenceNumber":2,"partitionKey":"user-key","approximateArrivalTimestamp":1545084650.987,"data":"say \"<hi>\" & go"}`,
		},
		{
			name: "de-aggregated sub 0",
			rec:  stream.Record{ShardID: testShard, SequenceNumber: testSeq2, Aggregated: true, PartitionKey: "k", Data: []byte("3"), ApproximateArrivalTimestamp: arrival},
			want: `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692540925702759324208523137515618","subSequenceNumber":0,"partitionKey":"k","approximateArrivalTimestamp":1545084650.987,"data":"3"}`,
		},
		{
			name: "timestamp SecondsEpochTime renders with noise",
			rec:  stream.Record{ShardID: testShard, SequenceNumber: testSeq2, PartitionKey: "partitionKey-1", Data: []byte("9 3 3 5"), ApproximateArrivalTimestamp: time.UnixMilli(1545084711166)},
			want: `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692540925702759324208523137515618","subSequenceNumber":0,"partitionKey":"partitionKey-1","approximateArrivalTimestamp":1545084711.166,"data":"9 3 3 5"}`,
		},
		{
			name: "timestamp rounded to the millisecond",
			rec:  stream.Record{ShardID: testShard, SequenceNumber: testSeq1, PartitionKey: "k", Data: []byte("x"), ApproximateArrivalTimestamp: time.Unix(1545084711, 165999890)},
			want: `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"partitionKey":"k","approximateArrivalTimestamp":1545084711.166,"data":"x"}`,
		},
		{
			name: "timestamp on the second",
			rec:  stream.Record{ShardID: testShard, SequenceNumber: testSeq1, PartitionKey: "k", Data: []byte("x"), ApproximateArrivalTimestamp: time.Unix(1545084711, 0)},
			want: `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"partitionKey":"k","approximateArrivalTimestamp":1545084711,"data":"x"}`,
		},
		{
			name: "not UTF-8",
			rec:  stream.Record{ShardID: testShard, SequenceNumber: testSeq1, PartitionKey: "bin", Data: []byte{0xff, 0xfe, 'a', 0x00}, ApproximateArrivalTimestamp: arrival},
			want: `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"partitionKey":"bin","approximateArrivalTimestamp":1545084650.987,"data":"//5hAA==","encoding":"base64"}`,
		},
		{
			name: "UTF-8 multibyte and control",
			rec:  stream.Record{ShardID: testShard, SequenceNumber: testSeq1, PartitionKey: "é", Data: []byte("日本\n\t"), ApproximateArrivalTimestamp: arrival},
			want: `{"shardId":"shardId-000000000006","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"partitionKey":"é","approximateArrivalTimestamp":1545084650.987,"data":"日本\n\t"}`,
		},
		{
			name:    "unparsable eventID, no timestamp",
			rec:     stream.Record{ShardID: testShard, SequenceNumber: testSeq1, PartitionKey: "k", Data: []byte("x")},
			eventID: "garbage",
			want:    `{"shardId":"","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"partitionKey":"k","approximateArrivalTimestamp":0,"data":"x"}`,
		},
		{
			name:    "bad sub-sequence number",
			rec:     stream.Record{ShardID: testShard, SequenceNumber: testSeq1, PartitionKey: "k", Data: nil, ApproximateArrivalTimestamp: arrival},
			eventID: testShard + ":" + testSeq1 + ":x",
			want:    `{"shardId":"","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"partitionKey":"k","approximateArrivalTimestamp":1545084650.987,"data":""}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := stream.Event(testSource, []stream.Record{tt.rec})
			if tt.eventID != "" {
				ev.Records[0].EventID = tt.eventID
			}
			var out bytes.Buffer
			resp, err := NewPrinter(Options{Out: &out}).Handle(context.Background(), ev)
			if err != nil {
				t.Fatalf("Handle error: %v", err)
			}
			if len(resp.BatchItemFailures) != 0 {
				t.Errorf("response = %+v, want empty", resp)
			}
			if got, want := out.String(), tt.want+"\n"; got != want {
				t.Errorf("output:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestPrintBatchInOrder(t *testing.T) {
	recs := []stream.Record{
		{ShardID: testShard, SequenceNumber: testSeq1, PartitionKey: "a", Data: []byte("one")},
		{ShardID: testShard, SequenceNumber: testSeq2, SubSequenceNumber: 0, Aggregated: true, PartitionKey: "b", Data: []byte("two")},
		{ShardID: testShard, SequenceNumber: testSeq2, SubSequenceNumber: 1, Aggregated: true, PartitionKey: "c", Data: []byte("three")},
	}
	var out bytes.Buffer
	if _, err := NewPrinter(Options{Out: &out}).Handle(context.Background(), stream.Event(testSource, recs)); err != nil {
		t.Fatalf("Handle error: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(recs), out.String())
	}
	for i, line := range lines {
		got := decodePrintLine(t, line)
		if got.Data != string(recs[i].Data) || got.SubSequenceNumber != recs[i].SubSequenceNumber || got.PartitionKey != recs[i].PartitionKey {
			t.Errorf("line %d = %+v, want record %+v", i, got, recs[i])
		}
	}
}

func TestPrintEmptyBatch(t *testing.T) {
	var out bytes.Buffer
	if _, err := NewPrinter(Options{Out: &out}).Handle(context.Background(), events.KinesisEvent{}); err != nil {
		t.Fatalf("Handle error: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("output = %q, want none", out.String())
	}
}

func TestPrintWriteError(t *testing.T) {
	ev := stream.Event(testSource, []stream.Record{{ShardID: testShard, SequenceNumber: testSeq1}})
	_, err := NewPrinter(Options{Out: failingWriter{}}).Handle(context.Background(), ev)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Handle error = %v, want the write error", err)
	}
}

// TestPrintConcurrent calls one Printer from several goroutines, as several
// shards do, through a writer that takes one byte at a time: a batch split
// across Writes would interleave with others.
func TestPrintConcurrent(t *testing.T) {
	const shards, calls, perBatch = 8, 40, 3
	w := &byteWriter{}
	p := NewPrinter(Options{Out: w})
	var wg sync.WaitGroup
	for s := range shards {
		wg.Go(func() {
			for c := range calls {
				recs := make([]stream.Record, perBatch)
				for r := range recs {
					recs[r] = stream.Record{
						ShardID:        fmt.Sprintf("shardId-%012d", s),
						SequenceNumber: fmt.Sprint(c),
						PartitionKey:   "k",
						Data:           []byte(fmt.Sprintf("%d/%d/%d %s", s, c, r, strings.Repeat("x", 50))),
					}
				}
				if _, err := p.Handle(context.Background(), stream.Event(testSource, recs)); err != nil {
					t.Errorf("Handle error: %v", err)
				}
			}
		})
	}
	wg.Wait()

	lines := strings.Split(strings.TrimSuffix(string(w.bytes()), "\n"), "\n")
	if got, want := len(lines), shards*calls*perBatch; got != want {
		t.Fatalf("got %d lines, want %d", got, want)
	}
	seen := make(map[string]bool)
	for i := 0; i < len(lines); i += perBatch {
		var first string
		for r := range perBatch {
			l := decodePrintLine(t, lines[i+r])
			id, _, _ := strings.Cut(l.Data, " ")
			var s, c, rr int
			if _, err := fmt.Sscanf(id, "%d/%d/%d", &s, &c, &rr); err != nil {
				t.Fatalf("line %d data %q: %v", i+r, l.Data, err)
			}
			if rr != r {
				t.Errorf("line %d is record %d of its batch, want %d (batch split)", i+r, rr, r)
			}
			batch := fmt.Sprintf("%d/%d", s, c)
			if r == 0 {
				first = batch
			} else if batch != first {
				t.Errorf("line %d is from batch %s, want %s (batches interleaved)", i+r, batch, first)
			}
			seen[id] = true
		}
	}
	if got, want := len(seen), shards*calls*perBatch; got != want {
		t.Errorf("distinct records = %d, want %d", got, want)
	}
}

func decodePrintLine(t *testing.T, line string) PrintLine {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var l PrintLine
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return l
}

// byteWriter appends one byte at a time, yielding between bytes, so that
// unsynchronised concurrent Writes interleave.
type byteWriter struct {
	mu  sync.Mutex
	buf []byte
}

func (w *byteWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		w.mu.Lock()
		w.buf = append(w.buf, b)
		w.mu.Unlock()
		runtime.Gosched()
	}
	return len(p), nil
}

func (w *byteWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf)
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk full") }
