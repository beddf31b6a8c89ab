package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// enc builds CBOR for the tests, item by item.
type enc struct{ b []byte }

func (e *enc) head(major byte, n uint64) *enc { e.b = appendHead(e.b, major, n); return e }
func (e *enc) text(s string) *enc             { e.b = appendText(e.b, s); return e }
func (e *enc) bytes(p []byte) *enc {
	e.head(majBytes, uint64(len(p)))
	e.b = append(e.b, p...)
	return e
}

// benchRecords writes the Records key and the benchmarks' 1,000 records
// of 100 bytes.
func (e *enc) benchRecords() *enc {
	e.text("Records").head(majArray, 1000)
	data := bytes.Repeat([]byte("d"), 100)
	for range 1000 {
		e.head(majMap, 5)
		e.text("SequenceNumber").text("49590338271490256608559692538361571095921575989136588801")
		e.text("ApproximateArrivalTimestamp").tag(1).uint(1796051652086)
		e.text("Data").bytes(data)
		e.text("PartitionKey").text("partition-key-0001")
		e.text("EncryptionType").text("NONE")
	}
	return e
}

func (e *enc) raw(p ...byte) *enc { e.b = append(e.b, p...); return e }
func (e *enc) tag(n uint64) *enc  { return e.head(majTag, n) }
func (e *enc) uint(n uint64) *enc { return e.head(majUint, n) }
func (e *enc) float64(f float64) *enc {
	e.b = binary.BigEndian.AppendUint64(append(e.b, 0xfb), math.Float64bits(f))
	return e
}

// kinesisAnswer is a GetRecords answer as Kinesis writes it in CBOR: blobs
// as byte strings, times as tag 1 over epoch milliseconds.
func kinesisAnswer() []byte {
	e := &enc{}
	e.head(majMap, 4)
	e.text("MillisBehindLatest").uint(1500)
	e.text("NextShardIterator").text("iter-2")
	e.text("Records").head(majArray, 2)
	e.head(majMap, 5)
	e.text("SequenceNumber").text("49590338271490256608559692538361571095921575989136588801")
	e.text("ApproximateArrivalTimestamp").tag(1).uint(1796051652086)
	e.text("Data").bytes([]byte{0, 1, 2, 0xff})
	e.text("PartitionKey").text("pk-é")
	e.text("EncryptionType").text("KMS")
	e.head(majMap, 3)
	e.text("SequenceNumber").text("49590338271490256608559692538361571095921575989136588802")
	e.text("Data").bytes(nil)
	e.text("PartitionKey").text("k2")
	e.text("ChildShards").raw(nullByte)
	return e.b
}

func TestDecodeKinesisAnswer(t *testing.T) {
	buf := kinesisAnswer()
	out, err := decodeGetRecords(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt64(out.MillisBehindLatest); got != 1500 {
		t.Errorf("MillisBehindLatest = %d, want 1500", got)
	}
	if got := aws.ToString(out.NextShardIterator); got != "iter-2" {
		t.Errorf("NextShardIterator = %q", got)
	}
	if len(out.Records) != 2 {
		t.Fatalf("%d records, want 2", len(out.Records))
	}
	r := out.Records[0]
	if aws.ToString(r.SequenceNumber) != "49590338271490256608559692538361571095921575989136588801" ||
		aws.ToString(r.PartitionKey) != "pk-é" || !bytes.Equal(r.Data, []byte{0, 1, 2, 0xff}) ||
		r.EncryptionType != types.EncryptionTypeKms {
		t.Errorf("record 0 = %+v", r)
	}
	if want := time.UnixMilli(1796051652086); !aws.ToTime(r.ApproximateArrivalTimestamp).Equal(want) {
		t.Errorf("timestamp = %v, want %v", aws.ToTime(r.ApproximateArrivalTimestamp), want)
	}
	r = out.Records[1]
	if aws.ToString(r.PartitionKey) != "k2" || r.Data == nil || len(r.Data) != 0 || r.ApproximateArrivalTimestamp != nil {
		t.Errorf("record 1 = %+v", r)
	}
	// The data shares the answer's buffer, and cannot be appended over it.
	if &out.Records[0].Data[0] != &buf[bytes.Index(buf, []byte{0, 1, 2, 0xff})] {
		t.Error("data was copied")
	}
	if cap(out.Records[0].Data) != 4 {
		t.Errorf("data capacity %d, want 4", cap(out.Records[0].Data))
	}
	// The iterator does not: it outlives the answer.
	buf[bytes.Index(buf, []byte("iter-2"))] = 'X'
	if got := aws.ToString(out.NextShardIterator); got != "iter-2" {
		t.Errorf("NextShardIterator shares the buffer: %q", got)
	}
}

// kinesis-mock writes blobs as base64 text and times as bare integers;
// indefinite lengths, floats, unknown keys and nulls must decode too.
func TestDecodeOtherForms(t *testing.T) {
	e := &enc{}
	e.raw(0xbf) // indefinite map
	e.text("Unknown").head(majArray, 2).uint(1).raw(0xbf, 0x61, 'x', 0xf5, 0xff)
	e.text("Records").raw(0x9f) // indefinite array
	for i := range 9 {
		e.raw(0xbf)
		e.text("ApproximateArrivalTimestamp")
		switch i {
		case 0:
			e.uint(1796051652086) // milliseconds, no tag
		case 1:
			e.tag(1).float64(1796051652.25) // seconds
		default:
			e.tag(1).uint(1796051652000 + uint64(i))
		}
		e.text("Data").text(base64.StdEncoding.EncodeToString([]byte("hello")))
		e.text("SequenceNumber").raw(0x7f).text("12").text("34").raw(0xff) // chunked text
		e.text("PartitionKey").text("p")
		e.text("Extra").tag(55799).head(majMap, 1).text("a").head(majBytes, 0)
		e.raw(0xff)
	}
	e.raw(0xff)
	e.text("NextShardIterator").raw(nullByte)
	e.text("ChildShards").head(majArray, 1).head(majMap, 3)
	e.text("ShardId").text("shardId-000000000002")
	e.text("ParentShards").head(majArray, 1).text("shardId-000000000000")
	e.text("HashKeyRange").head(majMap, 2).text("StartingHashKey").text("0").text("EndingHashKey").text("99")
	e.raw(0xff)
	out, err := decodeGetRecords(e.b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 9 {
		t.Fatalf("%d records, want 9", len(out.Records))
	}
	for i, r := range out.Records {
		if string(r.Data) != "hello" || aws.ToString(r.SequenceNumber) != "1234" || aws.ToString(r.PartitionKey) != "p" {
			t.Errorf("record %d = %q %q %q", i, r.Data, aws.ToString(r.SequenceNumber), aws.ToString(r.PartitionKey))
		}
	}
	// Blobs came as text: the records hold copies, not the answer.
	clear(e.b)
	for i, r := range out.Records {
		if string(r.Data) != "hello" || aws.ToString(r.SequenceNumber) != "1234" || aws.ToString(r.PartitionKey) != "p" {
			t.Fatalf("record %d changed with the answer's buffer: %q %q", i, r.Data, aws.ToString(r.SequenceNumber))
		}
	}
	ts := func(i int) time.Time { return aws.ToTime(out.Records[i].ApproximateArrivalTimestamp) }
	if !ts(0).Equal(time.UnixMilli(1796051652086)) || !ts(1).Equal(time.UnixMilli(1796051652250)) || !ts(8).Equal(time.UnixMilli(1796051652008)) {
		t.Errorf("timestamps %v %v %v", ts(0), ts(1), ts(8))
	}
	if out.NextShardIterator != nil {
		t.Errorf("NextShardIterator = %q, want nil (the shard ended)", *out.NextShardIterator)
	}
	if len(out.ChildShards) != 1 || aws.ToString(out.ChildShards[0].ShardId) != "shardId-000000000002" ||
		len(out.ChildShards[0].ParentShards) != 1 || aws.ToString(out.ChildShards[0].HashKeyRange.EndingHashKey) != "99" {
		t.Errorf("ChildShards = %+v", out.ChildShards)
	}
}

func TestDecodeRefusesMalformed(t *testing.T) {
	good := kinesisAnswer()
	cases := map[string][]byte{
		"empty":          nil,
		"not a map":      {0x80},
		"truncated":      good[:len(good)-3],
		"trailing bytes": append(append([]byte{}, good...), 0),
		"no Records":     (&enc{}).head(majMap, 1).text("NextShardIterator").text("x").b,
		"record without a sequence number": (&enc{}).head(majMap, 1).text("Records").head(majArray, 1).
			head(majMap, 1).text("Data").bytes([]byte("x")).b,
		"a key that is not text": (&enc{}).head(majMap, 1).uint(1).uint(2).b,
		"a huge length":          (&enc{}).head(majMap, 1).text("Records").head(majArray, 1<<40).b,
		"a huge string":          (&enc{}).head(majMap, 1).text("Records").head(majArray, 1).head(majMap, 1).text("Data").head(majBytes, 1<<40).b,
		"bad base64": (&enc{}).head(majMap, 1).text("Records").head(majArray, 1).head(majMap, 2).
			text("SequenceNumber").text("1").text("Data").text("!!!").b,
		"an empty sequence number": (&enc{}).head(majMap, 1).text("Records").head(majArray, 1).
			head(majMap, 1).text("SequenceNumber").text("").b,
		"a child shard without an id": (&enc{}).head(majMap, 2).text("Records").head(majArray, 0).
			text("ChildShards").head(majArray, 1).head(majMap, 1).text("ParentShards").head(majArray, 1).text("shardId-0").b,
		"an empty parent shard id": (&enc{}).head(majMap, 2).text("Records").head(majArray, 0).
			text("ChildShards").head(majArray, 1).head(majMap, 2).text("ShardId").text("shardId-1").
			text("ParentShards").head(majArray, 1).text("").b,
		"more records than bytes": (&enc{}).head(majMap, 1).text("Records").head(majArray, 3).
			head(majMap, 1).text("SequenceNumber").text("1").b,
		"reserved info": {0xbc},
		"deep nesting":  append(append((&enc{}).head(majMap, 1).text("X").b, bytes.Repeat([]byte{0x81}, 100)...), 0),
	}
	for name, b := range cases {
		if out, err := decodeGetRecords(b); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, out)
		}
	}
}

func TestEncodeGetRecords(t *testing.T) {
	it := strings.Repeat("A", 300)
	b := encodeGetRecords(it, aws.Int32(10000))
	d := &decoder{b: b}
	n, err := d.container(majMap)
	if err != nil || n != 2 {
		t.Fatalf("map of %d, %v", n, err)
	}
	if k, _ := d.key(); k != "ShardIterator" {
		t.Fatalf("key %q", k)
	}
	if v, _ := d.text(); v != it {
		t.Fatalf("iterator %q", v)
	}
	if k, _ := d.key(); k != "Limit" {
		t.Fatalf("key %q", k)
	}
	if v, err := d.int(); v != 10000 || err != nil || d.i != len(b) {
		t.Fatalf("limit %d, %v, %d bytes left", v, err, len(b)-d.i)
	}
}

// cborServer answers every request with status, body and content type,
// after checking that the request is a signed GetRecords (in CBOR, or in
// JSON when the client finds out whether CBOR is refused).
func cborServer(t *testing.T, status int, contentType string, body []byte, header ...string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct := r.Header.Get("Content-Type"); ct != CBOR && ct != JSON || r.Header.Get("X-Amz-Target") != "Kinesis_20131202.GetRecords" {
			t.Errorf("request headers %v", r.Header)
		}
		if a := r.Header.Get("Authorization"); !strings.Contains(a, "Credential=AKID/") || !strings.Contains(a, "/us-east-1/kinesis/aws4_request") {
			t.Errorf("Authorization %q", a)
		}
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	c := kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
		})),
	})
	return NewClient(c, ClientConfig{})
}

func TestCBORClientReads(t *testing.T) {
	c := cborServer(t, 200, CBOR, kinesisAnswer())
	out, err := c.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it"), Limit: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 2 || aws.ToString(out.NextShardIterator) != "iter-2" {
		t.Errorf("got %d records, next %q", len(out.Records), aws.ToString(out.NextShardIterator))
	}
}

func TestCBORClientErrors(t *testing.T) {
	errBody := func(code, msg string) []byte {
		return (&enc{}).head(majMap, 2).text("__type").text(code).text("message").text(msg).b
	}
	type check func(error) bool
	as := func(target any) check { return func(err error) bool { return errors.As(err, target) } }
	cases := []struct {
		name   string
		status int
		ctype  string
		body   []byte
		header []string
		is     check
		fatal  bool
		thrott bool
	}{
		{"expired", 400, CBOR, errBody("ExpiredIteratorException", "Iterator expired"), nil, as(new(*types.ExpiredIteratorException)), false, false},
		{"namespaced code", 400, CBOR, errBody("com.amazonaws.kinesis#ProvisionedThroughputExceededException", "slow down"), nil,
			as(new(*types.ProvisionedThroughputExceededException)), false, true},
		{"code in the header", 400, "", nil, []string{"X-Amzn-ErrorType", "ResourceNotFoundException:http://internal"},
			as(new(*types.ResourceNotFoundException)), true, false},
		{"access denied", 400, CBOR, errBody("AccessDeniedException", "no"), nil, as(new(*types.AccessDeniedException)), true, false},
		{"KMS throttled", 400, CBOR, errBody("KMSThrottlingException", "kms"), nil, as(new(*types.KMSThrottlingException)), false, true},
		{"unknown code", 400, CBOR, errBody("SomethingNewException", "new"), nil, func(err error) bool {
			var g *smithy.GenericAPIError
			return errors.As(err, &g) && g.Code == "SomethingNewException" && g.Message == "new"
		}, false, false},
		{"server error, no body", 500, "", nil, nil, func(err error) bool {
			var g *smithy.GenericAPIError
			return errors.As(err, &g) && g.Code == "HTTP500"
		}, false, false},
		{"answer that does not decode", 200, CBOR, []byte{0xa1}, nil, func(err error) bool {
			return strings.Contains(err.Error(), "decode the CBOR answer")
		}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cborServer(t, tc.status, tc.ctype, tc.body, tc.header...)
			_, err := c.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
			if err == nil {
				t.Fatal("no error")
			}
			var op *smithy.OperationError
			if !errors.As(err, &op) || op.OperationName != "GetRecords" || op.ServiceID != "Kinesis" {
				t.Errorf("%v is not an OperationError of Kinesis GetRecords", err)
			}
			if !tc.is(err) {
				t.Errorf("error %v (%T) is not the one expected", err, errors.Unwrap(err))
			}
			if IsFatal(err) != tc.fatal || IsThrottle(err) != tc.thrott {
				t.Errorf("IsFatal %v IsThrottle %v, want %v %v", IsFatal(err), IsThrottle(err), tc.fatal, tc.thrott)
			}
		})
	}
}

// An endpoint that never answers ends with the context, as a context error.
func TestCBORClientContext(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	c := NewClient(kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL)}), ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's deadline", err)
	}
}

func TestCBORDisabled(t *testing.T) {
	for v, want := range map[string]bool{"": false, "true": true, "1": true, "false": false, "nonsense": false} {
		t.Setenv("AWS_CBOR_DISABLE", v)
		if CBORDisabled() != want {
			t.Errorf("AWS_CBOR_DISABLE=%q: disabled %v, want %v", v, !want, want)
		}
	}
}

func BenchmarkDecodeGetRecords(b *testing.B) {
	e := &enc{}
	e.head(majMap, 3).text("MillisBehindLatest").uint(0).text("NextShardIterator").text(strings.Repeat("I", 200))
	e.benchRecords()
	b.SetBytes(int64(len(e.b)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeGetRecords(e.b); err != nil {
			b.Fatal(err)
		}
	}
}

// Base64 text blobs decode in place to what encoding/base64 decodes, at
// every length and across block boundaries; text that does not decode is
// an error.
func TestDecodeBase64InPlace(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 3071, 3072, 3073, 6144, 100_000} {
		want := make([]byte, n)
		for i := range want {
			want[i] = byte(i*7 + i/13)
		}
		text := []byte(base64.StdEncoding.EncodeToString(want))
		got, err := decodeBase64InPlace(text)
		if err != nil || !bytes.Equal(text[:got], want) {
			t.Fatalf("%d bytes: got %d, %v; equal %v", n, got, err, bytes.Equal(text[:got], want))
		}
	}
	for _, bad := range []string{"abc", "ab=c", "!!!!", "QUJD" + strings.Repeat("QUI=", 1100), "QQ==QUJD"} {
		if _, err := decodeBase64InPlace([]byte(bad)); err == nil {
			t.Errorf("%.20q… decoded", bad)
		}
	}
}

// A host whose clock is an hour off: the first GetRecords is refused for
// its signature's time (a retryable error), the client learns the offset
// from the answer's Date, and the next one is signed at the server's time.
func TestCBORClientClockSkew(t *testing.T) {
	serverNow := func() time.Time { return time.Now().Add(time.Hour) }
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.Header().Set("Date", serverNow().UTC().Format(http.TimeFormat))
		signed, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil || serverNow().Sub(signed).Abs() > 5*time.Minute {
			w.Header().Set("Content-Type", CBOR)
			w.WriteHeader(400)
			w.Write((&enc{}).head(majMap, 2).text("__type").text("InvalidSignatureException").
				text("message").text("Signature expired").b)
			return
		}
		w.Header().Set("Content-Type", CBOR)
		w.Write(kinesisAnswer())
	}))
	defer srv.Close()
	c := NewClient(kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
		}))}), ClientConfig{})
	in := &kinesis.GetRecordsInput{ShardIterator: aws.String("it")}
	_, err := c.GetRecords(context.Background(), in)
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidSignatureException" || IsFatal(err) {
		t.Fatalf("first call: %v, want a retryable InvalidSignatureException", err)
	}
	out, err := c.GetRecords(context.Background(), in)
	if err != nil || len(out.Records) != 2 {
		t.Fatalf("second call: %v, want the answer signed at the server's time", err)
	}
	if calls != 2 {
		t.Errorf("%d calls, want 2", calls)
	}
}

// BenchmarkDecodeGetRecordsIndefinite: BenchmarkDecodeGetRecords's
// answer with indefinite-length maps and array, and blobs as base64 text
// (as kinesis-mock writes them); the blobs are decoded in place, so each
// run decodes a fresh copy (the copy is timed too).
func BenchmarkDecodeGetRecordsIndefinite(b *testing.B) {
	e := &enc{}
	e.raw(0xbf).text("MillisBehindLatest").uint(0).text("NextShardIterator").text(strings.Repeat("I", 200))
	e.text("Records").raw(0x9f)
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("d"), 100))
	for range 1000 {
		e.raw(0xbf)
		e.text("SequenceNumber").text("49590338271490256608559692538361571095921575989136588801")
		e.text("ApproximateArrivalTimestamp").uint(1796051652086)
		e.text("Data").text(data)
		e.text("PartitionKey").text("partition-key-0001")
		e.text("EncryptionType").text("NONE")
		e.raw(0xff)
	}
	e.raw(0xff, 0xff)
	buf := make([]byte, len(e.b))
	b.SetBytes(int64(len(e.b)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, e.b)
		if _, err := decodeGetRecords(buf); err != nil {
			b.Fatal(err)
		}
	}
}
