package record

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/stream"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	testShard  = "shardId-000000000003"
	testStream = "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"
)

var (
	arrived = time.Date(2026, 3, 4, 5, 6, 7, 125_000_000, time.UTC)
	gaveUp  = time.Date(2026, 3, 4, 5, 7, 0, 9_000_000, time.UTC)
)

// failure is a batch of three user records: a plain one, two from one
// KPL aggregate (one with an explicit hash key), with binary data.
func failure() dispatch.Failure {
	return dispatch.Failure{
		ShardID:     testShard,
		StreamARN:   testStream,
		FunctionARN: "arn:aws:lambda:eu-west-1:123456789012:function:consumer",
		RequestID:   "5b8f0c2e-1d2a-4c3b-9e8f-7a6b5c4d3e2f",
		Records: []stream.Record{
			{ShardID: testShard, SequenceNumber: "49660000000000000000000000000000000000000000000000000001",
				PartitionKey: "order-1", Data: []byte(`{"id":1}`), ApproximateArrivalTimestamp: arrived},
			{ShardID: testShard, SequenceNumber: "49660000000000000000000000000000000000000000000000000002",
				SubSequenceNumber: 0, Aggregated: true, PartitionKey: "order-2",
				Data: []byte{0, 1, 2, 0xfe, 0xff, '\n'}, ApproximateArrivalTimestamp: arrived.Add(time.Second)},
			{ShardID: testShard, SequenceNumber: "49660000000000000000000000000000000000000000000000000002",
				SubSequenceNumber: 1, Aggregated: true, PartitionKey: "order-3", ExplicitHashKey: "170141183460469231731687303715884105728",
				Data: []byte("<&>"), ApproximateArrivalTimestamp: arrived.Add(time.Second)},
		},
		Attempts:      4,
		Reason:        dispatch.ReasonRetriesExhausted,
		Condition:     dispatch.ConditionRetriesExhausted,
		LastError:     "boom",
		FunctionError: "Unhandled",
		Time:          gaveUp,
	}
}

// golden compares got, indented, with testdata/name, or writes it there
// under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var ind bytes.Buffer
	if err := json.Indent(&ind, got, "", "  "); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", name, err, got)
	}
	ind.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, ind.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(ind.Bytes(), want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", name, ind.Bytes(), want)
	}
}

func TestRecordGolden(t *testing.T) {
	aged := failure()
	aged.Records = aged.Records[:1]
	aged.Attempts, aged.RequestID, aged.FunctionError, aged.LastError = 0, "", "", ""
	aged.Reason, aged.Condition = dispatch.ReasonRecordAge, dispatch.ConditionRecordAge
	for _, tt := range []struct {
		file string
		f    dispatch.Failure
	}{
		{"retries-exhausted.json", failure()},
		{"record-age-never-invoked.json", aged},
	} {
		t.Run(tt.file, func(t *testing.T) {
			b, err := Marshal(New(tt.f))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.file, b)
		})
	}
	t.Run("s3-payload.json", func(t *testing.T) {
		r, err := WithPayload(failure())
		if err != nil {
			t.Fatal(err)
		}
		b, err := Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "s3-payload.json", b)
	})
}

// TestLambdaFields: the record has exactly the fields of Lambda's Kinesis
// on-failure record, named as Lambda names them, plus Shardline's records
// (and payload, for S3).
func TestLambdaFields(t *testing.T) {
	r, err := WithPayload(failure())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Marshal(r)
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(v any) []string { return slices.Sorted(maps.Keys(v.(map[string]any))) }
	for _, tt := range []struct {
		where string
		got   []string
		want  []string
	}{
		{"top level", keys(doc), []string{"KinesisBatchInfo", "payload", "records", "requestContext", "responseContext", "timestamp", "version"}},
		{"requestContext", keys(doc["requestContext"]), []string{"approximateInvokeCount", "condition", "functionArn", "requestId"}},
		{"responseContext", keys(doc["responseContext"]), []string{"executedVersion", "functionError", "statusCode"}},
		{"KinesisBatchInfo", keys(doc["KinesisBatchInfo"]), []string{"approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
			"batchSize", "endSequenceNumber", "shardId", "startSequenceNumber", "streamArn"}},
	} {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s keys = %v, want %v", tt.where, tt.got, tt.want)
		}
	}
	// The payload is the event a function is given, as a JSON string.
	var ev struct {
		Records []struct {
			EventID        string `json:"eventID"`
			EventSourceARN string `json:"eventSourceARN"`
			AwsRegion      string `json:"awsRegion"`
			Kinesis        struct {
				PartitionKey string `json:"partitionKey"`
				Data         []byte `json:"data"`
			} `json:"kinesis"`
		} `json:"Records"`
	}
	if err := json.Unmarshal([]byte(doc["payload"].(string)), &ev); err != nil {
		t.Fatalf("payload is not an event: %v", err)
	}
	if len(ev.Records) != 3 {
		t.Fatalf("payload has %d records, want 3", len(ev.Records))
	}
	if got, want := ev.Records[2].EventID, testShard+":49660000000000000000000000000000000000000000000000000002:1"; got != want {
		t.Errorf("payload eventID = %q, want %q", got, want)
	}
	if ev.Records[0].EventSourceARN != testStream || ev.Records[0].AwsRegion != "eu-west-1" {
		t.Errorf("payload source = %q in %q", ev.Records[0].EventSourceARN, ev.Records[0].AwsRegion)
	}
	if !bytes.Equal(ev.Records[1].Kinesis.Data, []byte{0, 1, 2, 0xfe, 0xff, '\n'}) {
		t.Errorf("payload data = %v", ev.Records[1].Kinesis.Data)
	}
}

// TestItemsKeepPositions: every record keeps its sequence and
// sub-sequence numbers, partition key, explicit hash key, arrival time and
// data.
func TestItemsKeepPositions(t *testing.T) {
	f := failure()
	b, _ := Marshal(New(f))
	var got Record
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != len(f.Records) {
		t.Fatalf("%d records, want %d", len(got.Records), len(f.Records))
	}
	for i, it := range got.Records {
		r := f.Records[i]
		at, err := time.Parse(TimeFormat, it.ApproximateArrivalTimestamp)
		if err != nil || !at.Equal(r.ApproximateArrivalTimestamp) {
			t.Errorf("record %d arrival %q, want %v (%v)", i, it.ApproximateArrivalTimestamp, r.ApproximateArrivalTimestamp, err)
		}
		if it.SequenceNumber != r.SequenceNumber || it.SubSequenceNumber != r.SubSequenceNumber ||
			it.PartitionKey != r.PartitionKey || it.ExplicitHashKey != r.ExplicitHashKey || !bytes.Equal(it.Data, r.Data) {
			t.Errorf("record %d = %+v, want %+v", i, it, r)
		}
		if it.DataOffset != nil || it.DataSize != nil {
			t.Errorf("record %d of a whole record has dataOffset/dataSize", i)
		}
	}
	if got.KinesisBatchInfo.BatchSize != 3 || got.RequestContext.ApproximateInvokeCount != 4 ||
		got.RequestContext.Condition != "RetryAttemptsExhausted" || got.Timestamp != "2026-03-04T05:07:00.009Z" {
		t.Errorf("record = %+v", got)
	}
}

// TestNoncharactersEscaped: U+FFFE and U+FFFF (SQS refuses them raw) are
// written as escapes and read back the same; an empty data is "".
func TestNoncharactersEscaped(t *testing.T) {
	f := failure()
	f.Records = f.Records[:1]
	f.Records[0].PartitionKey = "a\uffffb\ufffe"
	f.Records[0].Data = nil
	b, err := Marshal(New(f))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("\uffff")) || bytes.Contains(b, []byte("\ufffe")) || !bytes.Contains(b, []byte(`a\uffffb\ufffe`)) {
		t.Errorf("partition key written as %s", b)
	}
	if !bytes.Contains(b, []byte(`"data":""`)) {
		t.Errorf("empty data not written as \"\": %s", b)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Records[0].PartitionKey != f.Records[0].PartitionKey {
		t.Errorf("partition key read back %q, want %q", r.Records[0].PartitionKey, f.Records[0].PartitionKey)
	}
	f = failure()
	for i := range f.Records {
		f.Records[i].PartitionKey += "\uffff"
	}
	msgs, err := Split(New(f), 1100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 {
		t.Fatalf("%d messages, want the record split", len(msgs))
	}
	for _, m := range msgs {
		if bytes.Contains(m, []byte("\uffff")) {
			t.Errorf("a split message holds U+FFFF raw: %s", m)
		}
	}
}

// TestNotInvokedResponseContext: a batch given up while the function
// could not be invoked says so: the Invoke API's status and no function
// error (or no responseContext when no answer came), where a function's
// own failure has status 200 and functionError.
func TestNotInvokedResponseContext(t *testing.T) {
	base := dispatch.Failure{ShardID: "shardId-000000000000", Reason: dispatch.ReasonRecordAge, Attempts: 2, FunctionError: ""}
	for _, tt := range []struct {
		name string
		f    func(*dispatch.Failure)
		want *ResponseContext
	}{
		{"function error", func(f *dispatch.Failure) { f.FunctionError = "Unhandled" }, &ResponseContext{StatusCode: 200, ExecutedVersion: ExecutedVersion, FunctionError: "Unhandled"}},
		{"refused by the Invoke API", func(f *dispatch.Failure) { f.NotInvoked, f.StatusCode = true, 409 }, &ResponseContext{StatusCode: 409}},
		{"never sent", func(f *dispatch.Failure) { f.NotInvoked = true }, nil},
	} {
		f := base
		tt.f(&f)
		r := New(f)
		if (r.ResponseContext == nil) != (tt.want == nil) || r.ResponseContext != nil && *r.ResponseContext != *tt.want {
			t.Errorf("%s: responseContext %+v, want %+v", tt.name, r.ResponseContext, tt.want)
		}
		if r.RequestContext.Condition != dispatch.ConditionRecordAge {
			t.Errorf("%s: condition %q", tt.name, r.RequestContext.Condition)
		}
	}
}
