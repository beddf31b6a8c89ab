package fakekinesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/fxamacker/cbor/v2"

	"github.com/shardline/shardline/shared/kpl"
)

// shardOf is the shard of list whose range holds the hash key, by
// shared/kpl's own reading of ranges and MD5 (not the fake's).
func shardOf(t *testing.T, list []types.Shard, hashKey string) string {
	t.Helper()
	for _, s := range list {
		hr, err := kpl.ParseHashRange(aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.EndingHashKey))
		if err != nil {
			t.Fatal(err)
		}
		if hr.Contains(hashKey) {
			return aws.ToString(s.ShardId)
		}
	}
	t.Fatalf("no shard holds %s", hashKey)
	return ""
}

func TestPutRecordsRouteAndSequence(t *testing.T) {
	fk, _, c := serve(t)
	ctx := context.Background()
	if err := fk.AddEmptyStream("w", 4); err != nil {
		t.Fatal(err)
	}
	if err := fk.AddEmptyStream("w", 4); err == nil {
		t.Error("AddEmptyStream twice: no error")
	}
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("w")})
	if err != nil {
		t.Fatal(err)
	}
	// The ranges CreateStream gives 4 shards.
	wantEnds := []string{"85070591730234615865843651857942052863", "170141183460469231731687303715884105727", "255211775190703847597530955573826158591", "340282366920938463463374607431768211455"}
	for i, s := range ls.Shards {
		if aws.ToString(s.HashKeyRange.EndingHashKey) != wantEnds[i] || aws.ToString(s.ShardId) != fmt.Sprintf("shardId-%012d", i) || len(aws.ToString(s.SequenceNumberRange.StartingSequenceNumber)) != 56 {
			t.Errorf("shard %d = %s %+v %+v", i, aws.ToString(s.ShardId), *s.HashKeyRange, *s.SequenceNumberRange)
		}
	}
	// Iterators at the tip of every shard, before any put.
	iters := map[string]*string{}
	for _, s := range ls.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("w"), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeLatest})
		if err != nil {
			t.Fatal(err)
		}
		iters[aws.ToString(s.ShardId)] = it.ShardIterator
	}
	before := time.Now().Truncate(time.Millisecond)
	var in kinesis.PutRecordsInput
	in.StreamName = aws.String("w")
	for i := range 300 {
		e := types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("key-", i)), Data: []byte(fmt.Sprint("data-", i))}
		if i%50 == 0 {
			e.ExplicitHashKey = aws.String("300000000000000000000000000000000000000") // the last shard
		}
		in.Records = append(in.Records, e)
	}
	out, err := c.PutRecords(ctx, &in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 || len(out.Records) != 300 {
		t.Fatalf("PutRecords: %d failed, %d results", aws.ToInt32(out.FailedRecordCount), len(out.Records))
	}
	last := map[string]string{}
	perShard := map[string][]int{}
	for i, r := range out.Records {
		key := kpl.PartitionKeyHash(aws.ToString(in.Records[i].PartitionKey))
		if in.Records[i].ExplicitHashKey != nil {
			key = *in.Records[i].ExplicitHashKey
		}
		sid, seq := aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
		if want := shardOf(t, ls.Shards, key); sid != want {
			t.Errorf("record %d went to %s, want %s", i, sid, want)
		}
		if len(seq) != 56 || (last[sid] != "" && !seqLess(last[sid], seq)) {
			t.Errorf("record %d: sequence number %s after %s", i, seq, last[sid])
		}
		last[sid] = seq
		perShard[sid] = append(perShard[sid], i)
	}
	one, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("w"), PartitionKey: aws.String("key-0"), Data: []byte("one more")})
	if err != nil {
		t.Fatal(err)
	}
	sid := aws.ToString(one.ShardId)
	if !seqLess(last[sid], aws.ToString(one.SequenceNumber)) {
		t.Errorf("PutRecord: sequence number %s not after %s", aws.ToString(one.SequenceNumber), last[sid])
	}
	perShard[sid] = append(perShard[sid], -1)

	// The iterators taken at the tip now read what was put, in order.
	for id, idx := range perShard {
		got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iters[id]})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Records) != len(idx) || aws.ToInt64(got.MillisBehindLatest) != 0 {
			t.Fatalf("%s: %d records (behind %d), want %d", id, len(got.Records), aws.ToInt64(got.MillisBehindLatest), len(idx))
		}
		for k, r := range got.Records {
			want := []byte("one more")
			if idx[k] >= 0 {
				want = in.Records[idx[k]].Data
			}
			if !bytes.Equal(r.Data, want) || r.ApproximateArrivalTimestamp.Before(before) || r.ApproximateArrivalTimestamp.After(time.Now()) {
				t.Errorf("%s record %d: %q at %v, want %q", id, k, r.Data, r.ApproximateArrivalTimestamp, want)
			}
		}
		// Caught up: empty, with an iterator.
		again, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: got.NextShardIterator})
		if err != nil || len(again.Records) != 0 || again.NextShardIterator == nil {
			t.Errorf("%s at the tip: %v %+v", id, err, again)
		}
	}

	// Errors.
	var rnf *types.ResourceNotFoundException
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("none"), PartitionKey: aws.String("k"), Data: []byte("x")}); !errors.As(err, &rnf) {
		t.Errorf("put to a missing stream: %v", err)
	}
	var inv *types.InvalidArgumentException
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("w"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456"), Data: []byte("x")}); !errors.As(err, &inv) {
		t.Errorf("hash key 2^128: %v", err)
	}
}

func TestPutAfterLoadedRecords(t *testing.T) {
	fk, _, c := serve(t)
	out, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("5"), Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ShardId) != "shardId-000000000000" || aws.ToString(out.SequenceNumber) != "49000000000000000000000000000000000000000000000000000006" {
		t.Errorf("PutRecord = %s %s", aws.ToString(out.ShardId), aws.ToString(out.SequenceNumber))
	}
	if n := fk.streams["s"].Records(); n != 6 {
		t.Errorf("%d records, want 6", n)
	}
	if nextSeq("999") != "1000" || nextSeq("0129") != "0130" {
		t.Error("nextSeq")
	}
}

func TestCreateDeleteStream(t *testing.T) {
	fk, _, c := serve(t)
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("n"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	var inUse *types.ResourceInUseException
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("n"), ShardCount: aws.Int32(3)}); !errors.As(err, &inUse) {
		t.Errorf("CreateStream twice: %v", err)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("n")})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 3 {
		t.Fatalf("DescribeStreamSummary: %v %+v", err, sum)
	}
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("n")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := fk.streams["n"]; ok {
		t.Error("stream still there after DeleteStream")
	}
}

func TestPutRecordsCBOR(t *testing.T) {
	fk, hs, _ := serve(t)
	fk.AddEmptyStream("w", 2)
	code, _, b := post(t, hs.URL, "PutRecords", map[string]any{"StreamName": "w", "Records": []any{
		map[string]any{"PartitionKey": "a", "Data": []byte{0, 1, 0xff}},
		map[string]any{"PartitionKey": "b", "Data": []byte("bee")},
	}})
	if code != 200 {
		t.Fatalf("PutRecords: %d %x", code, b)
	}
	var out struct {
		FailedRecordCount int
		Records           []struct{ ShardId, SequenceNumber string }
	}
	if err := cbor.Unmarshal(b, &out); err != nil || out.FailedRecordCount != 0 || len(out.Records) != 2 {
		t.Fatalf("answer %x: %v %+v", b, err, out)
	}
	st := fk.streams["w"]
	sh := st.Shards[st.index[out.Records[0].ShardId]]
	v := sh.view()
	found := false
	for _, r := range v.recs {
		if r.SequenceNumber == out.Records[0].SequenceNumber {
			found = bytes.Equal(r.Data, []byte{0, 1, 0xff}) && r.PartitionKey == "a"
		}
	}
	if !found {
		t.Errorf("record a not stored as put: %+v", v.recs)
	}
	code, typ, _ := post(t, hs.URL, "PutRecords", map[string]any{"StreamName": "w", "Records": []any{map[string]any{"PartitionKey": "", "Data": []byte("x")}}})
	if code != 400 || typ != "ValidationException" {
		t.Errorf("empty partition key: %d %s", code, typ)
	}
}

// TestConcurrentPutsAndReads: writers put while readers follow every shard
// from TRIM_HORIZON; each reader sees every record once, in the order of
// its sequence numbers (run with -race).
func TestConcurrentPutsAndReads(t *testing.T) {
	fk, _, c := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fk.AddEmptyStream("w", 2)
	const writers, batches, per = 3, 40, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				in := &kinesis.PutRecordsInput{StreamName: aws.String("w")}
				for k := range per {
					in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(w, "-", b, "-", k)), Data: []byte("d")})
				}
				if _, err := c.PutRecords(ctx, in); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	total := writers * batches * per
	var counts [2]atomic.Int64
	var rg sync.WaitGroup
	for i := range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("w"), ShardId: aws.String(fmt.Sprintf("shardId-%012d", i)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				t.Error(err)
				return
			}
			iter, last := it.ShardIterator, ""
			for ctx.Err() == nil {
				out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(7)})
				if err != nil {
					if ctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				for _, r := range out.Records {
					if last != "" && !seqLess(last, aws.ToString(r.SequenceNumber)) {
						t.Errorf("shard %d: %s after %s", i, aws.ToString(r.SequenceNumber), last)
					}
					last = aws.ToString(r.SequenceNumber)
					counts[i].Add(1)
				}
				iter = out.NextShardIterator
				if int(counts[0].Load()+counts[1].Load()) == total && len(out.Records) == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	// The readers stop once both have everything: wait on a deadline.
	done := make(chan struct{})
	go func() { rg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("readers saw %d + %d of %d records", counts[0].Load(), counts[1].Load(), total)
	}
	if n := fk.streams["w"].Records(); n != total {
		t.Errorf("stored %d, want %d", n, total)
	}
}
