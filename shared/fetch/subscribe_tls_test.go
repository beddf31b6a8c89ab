package fetch

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/stream"
)

// TestSubscribeOverHTTP2 (issue 18): the product's subscription client
// (awsconf's KinesisFanOut, AWS_CA_BUNDLE trusted) speaks HTTP/2 over TLS
// as AWS requires, signs SubscribeToShard, asks in CBOR as the Java SDK
// (and so KCL) does, and Shardline's reader decodes the CBOR events as
// they are flushed, one at a time, with no overall timeout
// cutting the stream; an exception in the stream is the SDK's type.
func TestSubscribeOverHTTP2(t *testing.T) {
	var proto atomic.Value
	var signed atomic.Bool
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		signed.Store(strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "))
		if r.Header.Get("X-Amz-Target") != "Kinesis_20131202.SubscribeToShard" {
			http.Error(w, "unexpected "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		want := encodeSubscribeCBOR(&kinesis.SubscribeToShardInput{ConsumerARN: aws.String(testConsumerARN), ShardId: aws.String("shardId-000000000000"),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String("100")}})
		if r.Header.Get("Content-Type") != CBOR || !bytes.Equal(body, want) {
			http.Error(w, "unexpected body "+string(body), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.WriteHeader(http.StatusOK)
		send := func(h eventstream.Headers, payload []byte) {
			if err := eventstream.NewEncoder().Encode(w, eventstream.Message{Headers: h, Payload: payload}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
		send(eventHeaders("initial-response"), []byte("{}"))
		// The event in CBOR, as Kinesis answers a CBOR request.
		e := &enc{}
		e.head(majMap, 3).text("ContinuationSequenceNumber").text("101").text("MillisBehindLatest").uint(0)
		e.text("Records").head(majArray, 2)
		for i := range 2 {
			e.head(majMap, 4).text("SequenceNumber").text(fmt.Sprint(100 + i)).text("PartitionKey").text("k")
			e.text("ApproximateArrivalTimestamp").tag(1).uint(1796051652086).text("Data").bytes(fmt.Appendf(nil, "data-%d", i))
		}
		h := eventHeaders("SubscribeToShardEvent")
		h.Set(":content-type", eventstream.StringValue(CBOR))
		send(h, e.b)
		<-release // the stream stays open: no timeout may cut it
		send(eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("exception")},
			{Name: ":exception-type", Value: eventstream.StringValue("ResourceInUseException")},
		}, []byte(`{"message":"taken over"}`))
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	defer close(release)

	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", ca)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	cl, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1", KinesisEndpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c := NewClient(cl.Kinesis, ClientConfig{SubscribeHTTP: cl.KinesisFanOut.Options().HTTPClient})
	s, err := NewSubscriber(c.Subscribe, Config{StreamName: "s", ShardID: "shardId-000000000000", Start: stream.Position{Seq: "100"},
		ConsumerARN: testConsumerARN, RetryWaitTime: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if got := fmt.Sprint(proto.Load()); got != "HTTP/2.0" || !signed.Load() {
		t.Errorf("request over %s, signed %v: want HTTP/2.0, signed", got, signed.Load())
	}
	if len(b.Records) != 2 || string(b.Records[1].Data) != "data-1" {
		t.Errorf("batch %+v", b)
	}
	// The stream then ends with an exception, as the SDK's type.
	release <- struct{}{}
	ev, err := s.sub.Next()
	var inUse *types.ResourceInUseException
	if ev != nil || !errors.As(err, &inUse) {
		t.Errorf("after the release: %v, %v; want ResourceInUseException", ev, err)
	}
}
