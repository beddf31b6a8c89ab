package redrive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/stream"
)

const (
	testShard  = "shardId-000000000001"
	testStream = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"
)

var arrived = time.Date(2026, 3, 4, 5, 6, 7, 125e6, time.UTC)

func seq(i int) string { return fmt.Sprintf("4966%052d", i) }

// failure is a batch given up: records i..j-1 of testShard.
func failure(i, j int) dispatch.Failure {
	f := dispatch.Failure{ShardID: testShard, StreamARN: testStream, Reason: dispatch.ReasonRetriesExhausted, Attempts: 3, Time: arrived.Add(time.Minute)}
	for k := i; k < j; k++ {
		f.Records = append(f.Records, stream.Record{ShardID: testShard, SequenceNumber: seq(k), PartitionKey: fmt.Sprintf("key-%d", k%3),
			Data: []byte(fmt.Sprintf("r%d", k)), ApproximateArrivalTimestamp: arrived.Add(time.Duration(k) * time.Second)})
	}
	return f
}

func mustMarshal(t *testing.T, r record.Record) []byte {
	t.Helper()
	b, err := record.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseShardline: Shardline's record gives its records back, every
// field kept.
func TestParseShardline(t *testing.T) {
	f := failure(0, 3)
	f.Records[1].SubSequenceNumber = 4
	f.Records[1].ExplicitHashKey = "17"
	e, err := Parse(mustMarshal(t, record.New(f)))
	if err != nil {
		t.Fatal(err)
	}
	if e.Format != FormatShardline || e.ShardID != testShard || e.StreamARN != testStream || e.Range != nil {
		t.Fatalf("entry = %+v", e)
	}
	if len(e.Records) != 3 {
		t.Fatalf("%d records, want 3", len(e.Records))
	}
	for i, r := range e.Records {
		w := f.Records[i]
		if r.ShardID != w.ShardID || r.SequenceNumber != w.SequenceNumber || r.SubSequenceNumber != w.SubSequenceNumber || r.PartitionKey != w.PartitionKey ||
			r.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(r.Data, w.Data) || !r.ApproximateArrivalTimestamp.Equal(w.ApproximateArrivalTimestamp) {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
	}
	if !e.Records[1].Aggregated || e.Records[0].Aggregated {
		t.Errorf("aggregated = %v %v, want a sub-sequence number > 0 to mark it", e.Records[0].Aggregated, e.Records[1].Aggregated)
	}
}

// TestParseChunks: the parts of a record too large for one message are
// chunks, joined by gather.
func TestParseChunks(t *testing.T) {
	f := failure(0, 3)
	f.Records[1].Data = bytes.Repeat([]byte("0123456789"), 3000)
	msgs, err := record.Split(record.New(f), 8000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 4 {
		t.Fatalf("%d messages, want the large record in chunks", len(msgs))
	}
	g := newGather()
	seen := map[string]bool{}
	for i, m := range msgs {
		e, err := Parse(m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		h := &held{msg: &Message{ID: fmt.Sprint(i)}}
		g.msgs = append(g.msgs, h)
		g.add(h, e.Records, seen)
		g.addChunks(h, e.Chunks)
	}
	g.join(seen)
	its := g.shards()[testShard]
	if len(its) != 3 {
		t.Fatalf("%d records joined, want 3", len(its))
	}
	if !bytes.Equal(its[1].rec.Data, f.Records[1].Data) {
		t.Errorf("the large record joined is %d bytes, want %d", len(its[1].rec.Data), len(f.Records[1].Data))
	}
	for _, h := range g.msgs {
		if h.bad != nil || h.pending == 0 {
			t.Errorf("message %s: bad %v, pending %d", h.msg.ID, h.bad, h.pending)
		}
	}
	// Without one of the chunks, the messages holding the others stay.
	g = newGather()
	for i, m := range msgs {
		if i == 2 {
			continue
		}
		e, _ := Parse(m)
		h := &held{msg: &Message{ID: fmt.Sprint(i)}}
		g.msgs = append(g.msgs, h)
		g.add(h, e.Records, seen)
		g.addChunks(h, e.Chunks)
	}
	g.join(seen)
	bad := 0
	for _, h := range g.msgs {
		if h.bad != nil {
			bad++
		}
	}
	if bad == 0 {
		t.Error("a record missing a chunk: no message kept back")
	}
}

// lambdaRecord is Lambda's SQS/SNS on-failure record: metadata only.
func lambdaRecord(start, end string, n int) []byte {
	var b bytes.Buffer
	_ = json.Compact(&b, []byte(`{"requestContext":{"requestId":"c9b8fa9f-5a7f-4e1b-9a37-0b4b4b7b0b61","functionArn":"arn:aws:lambda:eu-west-1:123456789012:function:fn","condition":"RetryAttemptsExhausted","approximateInvokeCount":3},
"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"version":"1.0","timestamp":"2026-03-04T05:07:00.009Z",
"KinesisBatchInfo":{"shardId":"`+testShard+`","startSequenceNumber":"`+start+`","endSequenceNumber":"`+end+`",
"approximateArrivalOfFirstRecord":"2026-03-04T05:06:07.125Z","approximateArrivalOfLastRecord":"2026-03-04T05:06:08.125Z","batchSize":`+fmt.Sprint(n)+`,"streamArn":"`+testStream+`"}}`))
	return b.Bytes()
}

// TestParseLambda: Lambda's metadata-only record is a range; inside an SNS
// notification too.
func TestParseLambda(t *testing.T) {
	body := lambdaRecord(seq(3), seq(9), 7)
	sns, _ := json.Marshal(map[string]string{"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t", "Message": string(body)})
	for _, b := range [][]byte{body, sns} {
		e, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if e.Format != FormatLambda || e.Range == nil || len(e.Records) != 0 {
			t.Fatalf("entry = %+v", e)
		}
		r := e.Range
		if r.ShardID != testShard || r.Start != seq(3) || r.End != seq(9) || r.BatchSize != 7 || r.StreamARN != testStream ||
			!r.FirstArrival.Equal(time.Date(2026, 3, 4, 5, 6, 7, 125e6, time.UTC)) {
			t.Errorf("range = %+v", r)
		}
	}
	if _, err := Parse(lambdaRecord(seq(9), seq(3), 7)); err == nil {
		t.Error("a start after the end: no error")
	}
}

// TestParseLambdaS3: Lambda's S3 object carries the event in payload; its
// KPL aggregates are de-aggregated.
func TestParseLambdaS3(t *testing.T) {
	agg, err := kpl.Aggregate([]kpl.UserRecord{{PartitionKey: "a", Data: []byte("u0")}, {PartitionKey: "b", Data: []byte("u1")}})
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(map[string]any{"Records": []map[string]any{
		{"kinesis": map[string]any{"kinesisSchemaVersion": "1.0", "partitionKey": "p", "sequenceNumber": seq(1), "data": []byte("plain"), "approximateArrivalTimestamp": 1.7725e9},
			"eventSource": "aws:kinesis", "eventID": testShard + ":" + seq(1), "eventSourceARN": testStream},
		{"kinesis": map[string]any{"kinesisSchemaVersion": "1.0", "partitionKey": "a", "sequenceNumber": seq(2), "data": agg, "approximateArrivalTimestamp": 1.7725e9},
			"eventSource": "aws:kinesis", "eventID": testShard + ":" + seq(2), "eventSourceARN": testStream},
	}})
	var doc map[string]any
	_ = json.Unmarshal(lambdaRecord(seq(1), seq(2), 2), &doc)
	doc["payload"] = string(payload)
	body, _ := json.Marshal(doc)
	e, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if e.Format != FormatLambdaS3 || e.Range != nil {
		t.Fatalf("entry = %+v", e)
	}
	var got []string
	for _, r := range e.Records {
		got = append(got, fmt.Sprintf("%s/%d %s %s", r.SequenceNumber[len(r.SequenceNumber)-1:], r.SubSequenceNumber, r.PartitionKey, r.Data))
	}
	want := []string{"1/0 p plain", "2/0 a u0", "2/1 b u1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records = %q, want %q", got, want)
	}
}

func TestParseNotOnFailure(t *testing.T) {
	for _, b := range []string{`{"hello":1}`, `not json`, `{"KinesisBatchInfo":{}}`} {
		if _, err := Parse([]byte(b)); err == nil {
			t.Errorf("Parse(%s): no error", b)
		}
	}
	if _, err := Parse([]byte(`{"a":1}`)); !errors.Is(err, ErrNotOnFailure) {
		t.Errorf("err = %v, want ErrNotOnFailure", err)
	}
}

// TestFromForms: -from takes the forms -on-failure does but SNS; Same
// catches a redrive into its own source.
func TestFromForms(t *testing.T) {
	for _, ok := range []string{"https://sqs.us-east-1.amazonaws.com/123456789012/q", "arn:aws:sqs:us-east-1:123456789012:q", "s3://bucket/p", "s3://bucket", "file:///tmp/x.jsonl"} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "sqs://q", "arn:aws:sns:us-east-1:123456789012:t", "s3://B", "file://rel", "/tmp/x", "discard"} {
		if err := Check(bad); err == nil {
			t.Errorf("Check(%q): no error", bad)
		}
	}
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"https://sqs.us-east-1.amazonaws.com/123456789012/q", "arn:aws:sqs:us-east-1:123456789012:q", true},
		{"https://sqs.us-east-1.amazonaws.com/123456789012/q", "https://sqs.us-east-1.amazonaws.com/123456789012/q2", false},
		{"file:///tmp/a", "file:///tmp/../tmp/a", true},
		{"file:///tmp/a", "file:///tmp/b", false},
		{"s3://bkt/p", "s3://bkt/p/sub", true},
		{"s3://bkt/p", "s3://bkt/p-redriven", false},
		{"s3://bkt", "s3://bkt/x", true},
	} {
		if got := Same(tt.a, tt.b); got != tt.same {
			t.Errorf("Same(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}
