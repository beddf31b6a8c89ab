package fetch

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

// The CBOR client (and the JSON reader) read from kinesis-mock exactly
// what the SDK's JSON client reads: the same records, byte for byte, the same times to the
// millisecond, and iterators either can follow.
func TestCBORAgreesWithJSON(t *testing.T) {
	srv := standintest.Kinesis(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("cbor-%d", time.Now().UnixNano())
	if err := standin.EnsureStreams(ctx, srv.Endpoint, name+":1"); err != nil {
		t.Fatal(err)
	}
	sdk := standintest.KinesisClient(srv.Endpoint)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	datas := [][]byte{[]byte("x"), all, bytes.Repeat([]byte("big "), 100_000/4), []byte("ünïcödé")}
	keys := []string{"k", "key with spaces", "ключ", strings.Repeat("p", 256)}
	for i, d := range datas {
		if _, err := sdk.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), Data: d, PartitionKey: aws.String(keys[i])}); err != nil {
			t.Fatal(err)
		}
	}
	iter := func() *string {
		out, err := sdk.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name),
			ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		return out.ShardIterator
	}
	cb := NewClient(sdk, ClientConfig{})
	viaJSON, err := sdk.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter(), Limit: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	viaCBOR, err := cb.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter(), Limit: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	// Shardline's own JSON reader reads what the SDK reads.
	viaOwnJSON, err := NewClient(sdk, ClientConfig{JSON: true}).GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter(), Limit: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	own, sdks := *viaOwnJSON, *viaJSON
	own.NextShardIterator, sdks.NextShardIterator = nil, nil // kinesis-mock's differ call by call
	own.MillisBehindLatest, sdks.MillisBehindLatest = nil, nil
	if d := diffOutputs(&own, &sdks); d != "" {
		t.Errorf("the JSON reader: %s", d)
	}
	if len(viaCBOR.Records) != len(datas) || len(viaJSON.Records) != len(datas) {
		t.Fatalf("CBOR read %d records, JSON %d, want %d", len(viaCBOR.Records), len(viaJSON.Records), len(datas))
	}
	for i := range datas {
		j, c := viaJSON.Records[i], viaCBOR.Records[i]
		if !bytes.Equal(c.Data, datas[i]) || aws.ToString(c.PartitionKey) != keys[i] ||
			aws.ToString(c.SequenceNumber) != aws.ToString(j.SequenceNumber) || c.EncryptionType != j.EncryptionType {
			t.Errorf("record %d: CBOR %q %q %q %q, JSON %q %q %q", i, trunc(c.Data), aws.ToString(c.PartitionKey),
				aws.ToString(c.SequenceNumber), c.EncryptionType, aws.ToString(j.PartitionKey), aws.ToString(j.SequenceNumber), j.EncryptionType)
		}
		if !aws.ToTime(c.ApproximateArrivalTimestamp).Equal(aws.ToTime(j.ApproximateArrivalTimestamp).Truncate(time.Millisecond)) ||
			aws.ToTime(c.ApproximateArrivalTimestamp).IsZero() {
			t.Errorf("record %d: CBOR time %v, JSON %v", i, aws.ToTime(c.ApproximateArrivalTimestamp), aws.ToTime(j.ApproximateArrivalTimestamp))
		}
	}
	if viaCBOR.NextShardIterator == nil || viaCBOR.MillisBehindLatest == nil {
		t.Fatalf("next iterator %v, millisBehindLatest %v", viaCBOR.NextShardIterator, viaCBOR.MillisBehindLatest)
	}
	// The CBOR answer's iterator goes on where it ended.
	if _, err := sdk.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), Data: []byte("after"), PartitionKey: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	next, err := cb.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: viaCBOR.NextShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Records) != 1 || string(next.Records[0].Data) != "after" {
		t.Fatalf("next read %d records", len(next.Records))
	}

	// A Reader over the CBOR client reads the shard from TRIM_HORIZON.
	r, err := New(cb, Config{StreamName: name, ShardID: "shardId-000000000000", Start: stream.Position{Seq: stream.TrimHorizon}, FirstLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < len(datas)+1 {
		b, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got += len(b.Records)
	}
	if got != len(datas)+1 {
		t.Errorf("reader read %d records, want %d", got, len(datas)+1)
	}

	// A stream that is gone: the SDK's error type, fatal for the reader.
	if _, err := sdk.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	_, err = r.Next(ctx)
	for err == nil {
		_, err = r.Next(ctx)
	}
	if !IsFatal(err) {
		t.Errorf("reading a deleted stream: %v, want a fatal error", err)
	}
}

func trunc(b []byte) []byte { return b[:min(len(b), 20)] }
