package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// BenchmarkGetRecords: one GetRecords call, HTTP on loopback included, in
// each protocol: the SDK's own JSON client (json-sdk), Shardline's JSON
// reader (json: an endpoint that refuses CBOR, or AWS_CBOR_DISABLE) and
// its CBOR reader, for an answer of plain records (1,000 of 100 bytes) and
// of KPL aggregates (100 of ~12 KB). The server sends prepared bytes, so
// the figures are the client's. ns/record is per Kinesis record; conns is
// the TCP connections the server saw over the run (1: every call on one
// kept connection).
//
//	go test -run '^$' -bench BenchmarkGetRecords -benchmem ./shared/fetch/
func BenchmarkGetRecords(b *testing.B) {
	for _, shape := range []struct {
		name string
		n    int
		size int
	}{{"plain-1000x100B", 1000, 100}, {"kpl-100x12KB", 100, 12 << 10}} {
		data := bytes.Repeat([]byte{0xf3, 0x89, 0x9a, 0xc2, 'x', 'y', 'z'}, shape.size/7)
		var js strings.Builder
		js.WriteString(`{"MillisBehindLatest":1000,"NextShardIterator":"` + strings.Repeat("I", 200) + `","Records":[`)
		e := &enc{}
		e.head(majMap, 3).text("MillisBehindLatest").uint(1000).text("NextShardIterator").text(strings.Repeat("I", 200))
		e.text("Records").head(majArray, uint64(shape.n))
		for i := range shape.n {
			seq := fmt.Sprintf("4959033827149025660855969253836157109592157598913658%04d", i)
			if i > 0 {
				js.WriteByte(',')
			}
			fmt.Fprintf(&js, `{"ApproximateArrivalTimestamp":1.796051652086E9,"Data":"%s","EncryptionType":"NONE","PartitionKey":"partition-key-%04d","SequenceNumber":"%s"}`,
				base64.StdEncoding.EncodeToString(data), i, seq)
			e.head(majMap, 5)
			e.text("ApproximateArrivalTimestamp").tag(1).uint(1796051652086)
			e.text("Data").bytes(data)
			e.text("EncryptionType").text("NONE")
			e.text("PartitionKey").text(fmt.Sprintf("partition-key-%04d", i))
			e.text("SequenceNumber").text(seq)
		}
		js.WriteString("]}")
		jsonBody, cborBody := []byte(js.String()), e.b
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Content-Type") == CBOR {
				w.Header().Set("Content-Type", CBOR)
				w.Write(cborBody)
				return
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Write(jsonBody)
		}))
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		srv.Start()
		// Each client its own SDK client, so its own connections.
		sdk := func() *kinesis.Client {
			return kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
				Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
				}))})
		}
		for _, c := range []struct {
			name string
			api  func() KinesisAPI
		}{
			{"json-sdk", func() KinesisAPI { return sdk() }},
			{"json", func() KinesisAPI { return NewClient(sdk(), ClientConfig{JSON: true}) }},
			{"cbor", func() KinesisAPI { return NewClient(sdk(), ClientConfig{}) }},
		} {
			b.Run(shape.name+"/"+c.name, func(b *testing.B) {
				in := &kinesis.GetRecordsInput{ShardIterator: aws.String(strings.Repeat("I", 200)), Limit: aws.Int32(10000)}
				api := c.api()
				conns.Store(0)
				b.ReportAllocs()
				for b.Loop() {
					out, err := api.GetRecords(context.Background(), in)
					if err != nil {
						b.Fatal(err)
					}
					if len(out.Records) != shape.n {
						b.Fatalf("%d records, want %d", len(out.Records), shape.n)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*shape.n), "ns/record")
				b.ReportMetric(float64(conns.Load()), "conns")
			})
		}
		srv.Close()
	}
}
