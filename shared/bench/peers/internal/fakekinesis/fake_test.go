package fakekinesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fxamacker/cbor/v2"
)

var t0 = time.UnixMilli(1796051652086)

// testStream: two shards; shard 0 has 5 records a second apart, shard 1
// none.
func testStream() *Stream {
	sh := &Shard{ID: "shardId-000000000000", StartingHashKey: "0", EndingHashKey: "170141183460469231731687303715884105727", StartingSequence: "49000000000000000000000000000000000000000000000000000000"}
	for i := range 5 {
		sh.Records = append(sh.Records, Record{
			SequenceNumber: fmt.Sprintf("4900000000000000000000000000000000000000000000000000000%d", i+1),
			PartitionKey:   fmt.Sprintf("key-%d", i),
			Data:           []byte{0, 1, 2, 0xff, byte(i)},
			Arrival:        t0.Add(time.Duration(i) * time.Second),
		})
	}
	return &Stream{Name: "s", Created: t0.Add(-time.Hour), Shards: []*Shard{sh,
		{ID: "shardId-000000000001", StartingHashKey: "170141183460469231731687303715884105728", EndingHashKey: "340282366920938463463374607431768211455", StartingSequence: "49000000000000000000000000000000000000000000000000000100"},
	}}
}

func serve(t *testing.T) (*Server, *httptest.Server, *kinesis.Client) {
	t.Helper()
	fk := New()
	fk.Logf = t.Logf
	fk.Add(testStream())
	hs := httptest.NewServer(fk)
	t.Cleanup(hs.Close)
	c := kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(hs.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("local", "local", ""),
		RetryMaxAttempts: 1,
	})
	return fk, hs, c
}

func TestJSONWithSDK(t *testing.T) {
	_, _, c := serve(t)
	ctx := context.Background()
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Shards) != 2 || aws.ToString(ls.Shards[1].HashKeyRange.StartingHashKey) != "170141183460469231731687303715884105728" || ls.NextToken != nil {
		t.Fatalf("ListShards = %+v", ls.Shards)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
	if err != nil {
		t.Fatal(err)
	}
	if d := sum.StreamDescriptionSummary; aws.ToInt32(d.OpenShardCount) != 2 || d.StreamStatus != types.StreamStatusActive || !d.StreamCreationTimestamp.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("DescribeStreamSummary = %+v", d)
	}
	ds, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("s")})
	if err != nil || len(ds.StreamDescription.Shards) != 2 {
		t.Fatalf("DescribeStream = %+v, %v", ds, err)
	}

	iter := func(typ types.ShardIteratorType, seq string, ts *time.Time) *string {
		t.Helper()
		out, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"),
			ShardIteratorType: typ, StartingSequenceNumber: aws.String(seq), Timestamp: ts})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		return out.ShardIterator
	}
	first := func(it *string) string {
		t.Helper()
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) == 0 {
			return ""
		}
		return aws.ToString(out.Records[0].PartitionKey)
	}
	seq2 := testStream().Shards[0].Records[2].SequenceNumber
	for _, tc := range []struct {
		name string
		it   *string
		want string
	}{
		{"TRIM_HORIZON", iter(types.ShardIteratorTypeTrimHorizon, "", nil), "key-0"},
		{"LATEST", iter(types.ShardIteratorTypeLatest, "", nil), ""},
		{"AT_SEQUENCE_NUMBER", iter(types.ShardIteratorTypeAtSequenceNumber, seq2, nil), "key-2"},
		{"AFTER_SEQUENCE_NUMBER", iter(types.ShardIteratorTypeAfterSequenceNumber, seq2, nil), "key-3"},
		{"AT_TIMESTAMP", iter(types.ShardIteratorTypeAtTimestamp, "", aws.Time(t0.Add(1500*time.Millisecond))), "key-2"},
		{"AT_TIMESTAMP exact", iter(types.ShardIteratorTypeAtTimestamp, "", aws.Time(t0.Add(time.Second))), "key-1"},
	} {
		if got := first(tc.it); got != tc.want {
			t.Errorf("%s: first record %q, want %q", tc.name, got, tc.want)
		}
	}

	// Paging with Limit 2: 2 + 2 + 1, then empty at the tip.
	it := iter(types.ShardIteratorTypeTrimHorizon, "", nil)
	var got []types.Record
	var behind []int64
	for range 4 {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.Records...)
		behind = append(behind, aws.ToInt64(out.MillisBehindLatest))
		if out.NextShardIterator == nil {
			t.Fatal("no NextShardIterator on an open shard")
		}
		it = out.NextShardIterator
	}
	if len(got) != 5 {
		t.Fatalf("%d records, want 5", len(got))
	}
	if fmt.Sprint(behind) != "[3000 1000 0 0]" {
		t.Errorf("MillisBehindLatest %v, want [3000 1000 0 0]", behind)
	}
	want := testStream().Shards[0].Records
	for i, r := range got {
		w := want[i]
		if aws.ToString(r.SequenceNumber) != w.SequenceNumber || aws.ToString(r.PartitionKey) != w.PartitionKey ||
			!bytes.Equal(r.Data, w.Data) || !r.ApproximateArrivalTimestamp.Equal(w.Arrival) {
			t.Errorf("record %d = %s %s %x %v, want %s %s %x %v", i, aws.ToString(r.SequenceNumber), aws.ToString(r.PartitionKey), r.Data, r.ApproximateArrivalTimestamp,
				w.SequenceNumber, w.PartitionKey, w.Data, w.Arrival)
		}
	}
}

func TestJSONErrors(t *testing.T) {
	fk, _, c := serve(t)
	ctx := context.Background()
	_, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("nope")})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("ListShards of a missing stream: %v, want ResourceNotFoundException", err)
	}
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("fk1.garbage")})
	var inv *types.InvalidArgumentException
	if !errors.As(err, &inv) {
		t.Errorf("bad iterator: %v, want InvalidArgumentException", err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	fk.now = func() time.Time { return time.Now().Add(6 * time.Minute) }
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	var exp *types.ExpiredIteratorException
	if !errors.As(err, &exp) {
		t.Errorf("old iterator: %v, want ExpiredIteratorException", err)
	}
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("s"), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	if err == nil || !strings.Contains(err.Error(), "UnknownOperation") {
		t.Errorf("UpdateShardCount: %v, want UnknownOperationException", err)
	}
	if fk.Calls()["UpdateShardCount"] != 1 {
		t.Errorf("Calls = %v", fk.Calls())
	}
}

// post sends one CBOR request and returns the status, error-type header and
// body.
func post(t *testing.T, url, op string, req any) (int, string, []byte) {
	t.Helper()
	body, err := cbor.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/x-amz-cbor-1.1")
	hr.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-cbor-1.1" {
		t.Errorf("%s: Content-Type %q", op, ct)
	}
	return resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"), b
}

func TestCBOR(t *testing.T) {
	_, hs, _ := serve(t)
	code, _, b := post(t, hs.URL, "GetShardIterator", map[string]any{"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP",
		"Timestamp": cbor.Tag{Number: 1, Content: t0.Add(time.Second).UnixMilli()}})
	if code != 200 {
		t.Fatalf("GetShardIterator: %d %s", code, b)
	}
	var it struct{ ShardIterator string }
	if err := cbor.Unmarshal(b, &it); err != nil || it.ShardIterator == "" {
		t.Fatalf("GetShardIterator answer %x: %v", b, err)
	}
	code, _, b = post(t, hs.URL, "GetRecords", map[string]any{"ShardIterator": it.ShardIterator, "Limit": 3})
	if code != 200 {
		t.Fatalf("GetRecords: %d %s", code, b)
	}
	var out struct {
		Records            []map[string]cbor.RawMessage
		NextShardIterator  cbor.RawMessage
		MillisBehindLatest cbor.RawMessage
	}
	if err := cbor.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 3 {
		t.Fatalf("%d records, want 3", len(out.Records))
	}
	want := testStream().Shards[0].Records[1:4]
	for i, r := range out.Records {
		if len(r) != 4 {
			t.Errorf("record %d has %d fields, want 4", i, len(r))
		}
		if r["Data"][0]>>5 != 2 {
			t.Errorf("record %d: Data is major type %d, want 2 (byte string)", i, r["Data"][0]>>5)
		}
		var data []byte
		if err := cbor.Unmarshal(r["Data"], &data); err != nil || !bytes.Equal(data, want[i].Data) {
			t.Errorf("record %d: Data %x (%v), want %x", i, data, err, want[i].Data)
		}
		var ts cbor.Tag
		if err := cbor.Unmarshal(r["ApproximateArrivalTimestamp"], &ts); err != nil {
			t.Fatalf("record %d: timestamp %x: %v", i, r["ApproximateArrivalTimestamp"], err)
		}
		if ms, ok := ts.Content.(uint64); ts.Number != 1 || !ok || int64(ms) != want[i].Arrival.UnixMilli() {
			t.Errorf("record %d: timestamp tag %d %T %v, want tag 1 around %d", i, ts.Number, ts.Content, ts.Content, want[i].Arrival.UnixMilli())
		}
		for _, k := range []string{"SequenceNumber", "PartitionKey"} {
			if r[k][0]>>5 != 3 {
				t.Errorf("record %d: %s is major type %d, want 3", i, k, r[k][0]>>5)
			}
		}
		var seq string
		if cbor.Unmarshal(r["SequenceNumber"], &seq); seq != want[i].SequenceNumber {
			t.Errorf("record %d: seq %s, want %s", i, seq, want[i].SequenceNumber)
		}
	}
	if out.NextShardIterator[0]>>5 != 3 || out.MillisBehindLatest[0]>>5 != 0 {
		t.Errorf("NextShardIterator %x, MillisBehindLatest %x: want a text string and an unsigned integer", out.NextShardIterator, out.MillisBehindLatest)
	}
	var behind int64
	if cbor.Unmarshal(out.MillisBehindLatest, &behind); behind != 1000 {
		t.Errorf("MillisBehindLatest %d, want 1000", behind)
	}

	// Other operations answer CBOR too.
	code, _, b = post(t, hs.URL, "ListShards", map[string]any{"StreamName": "s"})
	var ls struct{ Shards []struct{ ShardId string } }
	if err := cbor.Unmarshal(b, &ls); code != 200 || err != nil || len(ls.Shards) != 2 {
		t.Errorf("ListShards: %d %v %+v", code, err, ls)
	}
	code, _, b = post(t, hs.URL, "DescribeStreamSummary", map[string]any{"StreamName": "s"})
	var sum struct {
		StreamDescriptionSummary struct {
			StreamCreationTimestamp cbor.Tag
			OpenShardCount          int
		}
	}
	if err := cbor.Unmarshal(b, &sum); code != 200 || err != nil || sum.StreamDescriptionSummary.OpenShardCount != 2 || sum.StreamDescriptionSummary.StreamCreationTimestamp.Number != 1 {
		t.Errorf("DescribeStreamSummary: %d %v %+v", code, err, sum)
	}
}

func TestCBORErrors(t *testing.T) {
	fk, hs, _ := serve(t)
	check := func(op string, req any, want string) {
		t.Helper()
		code, typ, b := post(t, hs.URL, op, req)
		var e struct {
			Type    string `cbor:"__type"`
			Message string `cbor:"message"`
		}
		if err := cbor.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s: error body %x: %v", op, b, err)
		}
		if code != 400 || typ != want || e.Type != want || e.Message == "" {
			t.Errorf("%s: %d %q %+v, want 400 %s", op, code, typ, e, want)
		}
	}
	check("GetRecords", map[string]any{"ShardIterator": "nope"}, "InvalidArgumentException")
	check("GetRecords", map[string]any{"ShardIterator": fk.makeIterator(fk.streams["s"], 0, 0), "Limit": 10001}, "InvalidArgumentException")
	check("GetShardIterator", map[string]any{"StreamName": "x", "ShardId": "shardId-000000000000", "ShardIteratorType": "LATEST"}, "ResourceNotFoundException")
	check("SubscribeToShard", map[string]any{}, "InvalidArgumentException")
	check("UpdateShardCount", map[string]any{"StreamName": "s"}, "UnknownOperationException")
	old := fk.makeIterator(fk.streams["s"], 0, 0)
	fk.now = func() time.Time { return time.Now().Add(time.Hour) }
	check("GetRecords", map[string]any{"ShardIterator": old}, "ExpiredIteratorException")
}

func TestTenMegabyteCap(t *testing.T) {
	sh := &Shard{ID: "shardId-000000000000", StartingHashKey: "0", EndingHashKey: "1", StartingSequence: "1"}
	for i := range 12 {
		sh.Records = append(sh.Records, Record{SequenceNumber: fmt.Sprint(10 + i), PartitionKey: "k", Data: make([]byte, 1<<20-1), Arrival: t0})
	}
	fk := New()
	fk.Add(&Stream{Name: "big", Shards: []*Shard{sh}})
	hs := httptest.NewServer(fk)
	defer hs.Close()
	c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(hs.URL), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	out, err := c.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String(fk.makeIterator(fk.streams["big"], 0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 10 {
		t.Errorf("%d records of 1 MiB in one answer, want 10", len(out.Records))
	}
}

func TestLoad(t *testing.T) {
	_, _, c := serve(t)
	st, err := Load(context.Background(), c, "s")
	if err != nil {
		t.Fatal(err)
	}
	want := testStream()
	if len(st.Shards) != 2 || st.Records() != 5 || !st.Created.Equal(want.Created) {
		t.Fatalf("loaded %d shards, %d records, created %v", len(st.Shards), st.Records(), st.Created)
	}
	for i, r := range st.Shards[0].Records {
		w := want.Shards[0].Records[i]
		if r.SequenceNumber != w.SequenceNumber || !bytes.Equal(r.Data, w.Data) || !r.Arrival.Equal(w.Arrival) || r.PartitionKey != w.PartitionKey {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
	}
	if s := st.Shards[1]; s.StartingHashKey != want.Shards[1].StartingHashKey || s.StartingSequence != want.Shards[1].StartingSequence {
		t.Errorf("shard 1 = %+v", s)
	}
}

// TestOnRead: the hook sees each GetRecords (and no other call but
// SubscribeToShard: TestOnReadSubscribe) before it is answered, and can be
// replaced and removed while serving.
func TestOnRead(t *testing.T) {
	fk, _, c := serve(t)
	ctx := context.Background()
	var mu sync.Mutex
	var seen []string
	hook := func(name string) func() {
		return func() { mu.Lock(); seen = append(seen, name); mu.Unlock() }
	}
	fk.SetOnRead(hook("a"))
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	early := len(seen)
	mu.Unlock()
	if early != 0 {
		t.Fatalf("hook called %d times before any GetRecords", early)
	}
	get := func() {
		t.Helper()
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
		if err != nil || len(out.Records) != 1 {
			t.Fatalf("GetRecords = %+v, %v", out, err)
		}
	}
	get()
	get()
	fk.SetOnRead(hook("b"))
	get()
	fk.SetOnRead(nil)
	get()
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != "[a a b]" {
		t.Errorf("hook calls %v, want [a a b]", seen)
	}
}
