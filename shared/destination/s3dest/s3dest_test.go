package s3dest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
)

func TestMain(m *testing.M) {
	standintest.Main(m)
}

func TestParseLocation(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Location
	}{
		{"s3://failed-batches", Location{Bucket: "failed-batches"}},
		{"s3://failed-batches/", Location{Bucket: "failed-batches"}},
		{"s3://failed.batches/shardline/orders/", Location{Bucket: "failed.batches", Prefix: "shardline/orders"}},
		{"s3://failed-batches/aws/lambda", Location{Bucket: "failed-batches", Prefix: "aws/lambda"}},
		{"s3://", Location{}},
		{"s3://ab", Location{}},
		{"s3://Failed", Location{}},
		{"s3://a..b/x", Location{}},
		{"s3://bucket/a//b", Location{}},
		{"s3:/bucket", Location{}},
		{"arn:aws:s3:::bucket", Location{}},
	} {
		got, err := ParseLocation(tt.in)
		if tt.want == (Location{}) {
			if err == nil || !strings.Contains(err.Error(), tt.in) || !strings.Contains(err.Error(), "s3://bucket/prefix") {
				t.Errorf("ParseLocation(%q) = %+v, %v; want an error naming the value and the form", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestKey: Lambda's layout, with the app in place of the ESM UUID.
func TestKey(t *testing.T) {
	at := time.Date(2026, 2, 3, 4, 5, 6, 7, time.FixedZone("x", 3600))
	for _, tt := range []struct {
		loc  Location
		want string
	}{
		{Location{Bucket: "b", Prefix: "failed"}, "failed/orders-app/shardId-000000000001/2026/02/03/2026-02-03T03.05.06-U"},
		{Location{Bucket: "b", Prefix: "aws/lambda"}, "aws/lambda/orders-app/shardId-000000000001/2026/02/03/2026-02-03T03.05.06-U"},
		{Location{Bucket: "b"}, "orders-app/shardId-000000000001/2026/02/03/2026-02-03T03.05.06-U"},
	} {
		if got := tt.loc.Key("orders-app", "shardId-000000000001", at, "U"); got != tt.want {
			t.Errorf("Key = %q, want %q", got, tt.want)
		}
	}
	if id := randomUUID(); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("randomUUID() = %q", id)
	}
}

const shard = "shardId-000000000005"

func failure(n int) dispatch.Failure {
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	f := dispatch.Failure{ShardID: shard, StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s",
		FunctionARN: "consumer", RequestID: "r-2", Attempts: 2, Reason: dispatch.ReasonRetriesExhausted,
		Condition: dispatch.ConditionRetriesExhausted, FunctionError: "Handled", Time: time.Now()}
	for i := range n {
		f.Records = append(f.Records, stream.Record{ShardID: shard, SequenceNumber: fmt.Sprintf("4966%052d", i/3), SubSequenceNumber: int64(i % 3),
			Aggregated: true, PartitionKey: fmt.Sprintf("pk-%d", i), ExplicitHashKey: "42",
			Data: bytes.Repeat([]byte{byte(i)}, 2000), ApproximateArrivalTimestamp: at})
	}
	return f
}

func newBucket(t *testing.T, c *s3.Client) string {
	t.Helper()
	name := strings.ToLower(standintest.UniqueName(t))
	name = strings.ReplaceAll(name, "_", "-")
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestPut writes a batch of 600 records of 2 KB (more than any message
// holds: S3 takes it whole) and reads the object back: Lambda's key
// layout, Lambda's fields with the payload, and the records.
func TestPut(t *testing.T) {
	moto := standintest.Moto(t)
	c := standintest.S3Client(moto.Endpoint)
	bucket := newBucket(t, c)
	loc, err := ParseLocation("s3://" + bucket + "/failed/")
	if err != nil {
		t.Fatal(err)
	}
	f := failure(600)
	if err := New(loc, "orders-app", c).Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Contents) != 1 {
		t.Fatalf("%d objects, want 1", len(list.Contents))
	}
	key := aws.ToString(list.Contents[0].Key)
	day := f.Time.UTC()
	want := regexp.MustCompile(`^failed/orders-app/` + shard + `/` + day.Format("2006/01/02") + `/` +
		regexp.QuoteMeta(day.Format("2006-01-02T15.04.05")) + `-[0-9a-f-]{36}$`)
	if !want.MatchString(key) {
		t.Errorf("key %q, want %s", key, want)
	}
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Body.Close()
	body, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := aws.ToString(obj.ContentType); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	wantRec, _ := record.WithPayload(f)
	wantBody, _ := record.Marshal(wantRec)
	if !bytes.Equal(body, wantBody) {
		t.Errorf("object body differs from the record (%d bytes, want %d)", len(body), len(wantBody))
	}
	var got record.Record
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Records []struct {
			EventID string `json:"eventID"`
			Kinesis struct {
				PartitionKey string `json:"partitionKey"`
				Data         []byte `json:"data"`
			} `json:"kinesis"`
		} `json:"Records"`
	}
	if err := json.Unmarshal([]byte(got.Payload), &ev); err != nil {
		t.Fatalf("payload: %v", err)
	}
	if len(ev.Records) != 600 || len(got.Records) != 600 || got.Part != 0 {
		t.Fatalf("payload has %d records, records %d, part %d; want 600, 600, none", len(ev.Records), len(got.Records), got.Part)
	}
	for i, r := range f.Records {
		if ev.Records[i].EventID != r.EventID() || ev.Records[i].Kinesis.PartitionKey != r.PartitionKey || !bytes.Equal(ev.Records[i].Kinesis.Data, r.Data) {
			t.Fatalf("payload record %d = %s, want %s", i, ev.Records[i].EventID, r.EventID())
		}
		it := got.Records[i]
		if it.SubSequenceNumber != r.SubSequenceNumber || it.ExplicitHashKey != "42" || !bytes.Equal(it.Data, r.Data) {
			t.Fatalf("record %d = %+v", i, it)
		}
	}
}

// TestRefuses: a bucket that does not exist is a Send error naming it.
func TestRefuses(t *testing.T) {
	moto := standintest.Moto(t)
	loc, _ := ParseLocation("s3://no-such-bucket-here/x")
	err := New(loc, "app", standintest.S3Client(moto.Endpoint)).Send(context.Background(), failure(1))
	t.Logf("%v", err)
	if err == nil || !strings.Contains(err.Error(), "s3://no-such-bucket-here/x") {
		t.Errorf("Send to a missing bucket: %v, want an error naming it", err)
	}
	if err := New(loc, "app", nil).Send(context.Background(), failure(1)); err == nil || !strings.Contains(err.Error(), "no S3 client") {
		t.Errorf("Send without a client: %v", err)
	}
}
