package fakekinesis

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/eventstream"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/fxamacker/cbor/v2"
)

// efo is a served fake with an empty stream "efo" of 4 shards and a
// client of it, built as a user builds one: from config.LoadDefaultConfig,
// with AWS_CA_BUNDLE naming the fake's certificate when it serves TLS.
type efo struct {
	fk  *Server
	ep  *Endpoint
	c   *kinesis.Client
	rec *protoRecorder
	arn string // the stream's
}

func startEFO(t *testing.T, useTLS bool, tweak func(*Server)) *efo {
	t.Helper()
	fk := New()
	fk.Logf = t.Logf
	if tweak != nil {
		tweak(fk)
	}
	if err := fk.AddEmptyStream("efo", 4); err != nil {
		t.Fatal(err)
	}
	ep, err := fk.Start(ServeOptions{TLS: useTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	t.Setenv("AWS_CA_BUNDLE", ep.CAFile) // "" for plain HTTP: none
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithRetryMaxAttempts(1),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPClient == nil { // no AWS_CA_BUNDLE: the SDK's default
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	rec := &protoRecorder{inner: cfg.HTTPClient, protos: map[string]string{}}
	c := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(ep.URL)
		o.HTTPClient = rec
	})
	return &efo{fk: fk, ep: ep, c: c, rec: rec, arn: fk.streams["efo"].ARN()}
}

// protoRecorder notes the HTTP version each operation was answered in.
type protoRecorder struct {
	inner  aws.HTTPClient
	mu     sync.Mutex
	protos map[string]string // X-Amz-Target -> resp.Proto
}

func (p *protoRecorder) Do(r *http.Request) (*http.Response, error) {
	resp, err := p.inner.Do(r)
	if err == nil {
		p.mu.Lock()
		p.protos[r.Header.Get("X-Amz-Target")] = resp.Proto
		p.mu.Unlock()
	}
	return resp, err
}

func (p *protoRecorder) proto(op string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.protos[targetPfx+op]
}

func (e *efo) register(t *testing.T, name string) string {
	t.Helper()
	out, err := e.c.RegisterStreamConsumer(context.Background(), &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(e.arn), ConsumerName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Consumer.ConsumerARN)
}

// shardKey is a hash key in shard i of "efo" (its first).
func (e *efo) shardKey(i int) string { return e.fk.streams["efo"].shardsNow()[i].StartingHashKey }

func (e *efo) put(t *testing.T, shard int, data []byte) *kinesis.PutRecordOutput {
	t.Helper()
	out, err := e.c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamARN: aws.String(e.arn), PartitionKey: aws.String("k"),
		ExplicitHashKey: aws.String(e.shardKey(shard)), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// subscribe calls SubscribeToShard with a protocol of its own: the
// client's awsJson protocol decodes every event stream with one shared
// codec, unsynchronised, a data race (aws/smithy-go#714, in v1.28.8 and
// v1.28.9) as soon as two streams of one client are open.
func (e *efo) subscribe(ctx context.Context, consumer, shard string, pos types.StartingPosition) (*kinesis.SubscribeToShardEventStream, error) {
	out, err := e.c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(consumer), ShardId: aws.String(shard), StartingPosition: &pos},
		func(o *kinesis.Options) { o.Protocol = awsjson.New11(schemas.Kinesis_20131202) })
	if err != nil {
		return nil, err
	}
	return out.GetStream(), nil
}

func (e *efo) mustSubscribe(t *testing.T, consumer, shard string, pos types.StartingPosition) *kinesis.SubscribeToShardEventStream {
	t.Helper()
	es, err := e.subscribe(context.Background(), consumer, shard, pos)
	if err != nil {
		t.Fatalf("SubscribeToShard %s %s: %v", shard, pos.Type, err)
	}
	t.Cleanup(func() { es.Close() })
	return es
}

// next is the stream's next event; ok is false once it has ended. It
// fails the test if none comes within d.
func next(t *testing.T, es *kinesis.SubscribeToShardEventStream, d time.Duration) (ev types.SubscribeToShardEvent, ok bool) {
	t.Helper()
	select {
	case m, ok := <-es.Events():
		if !ok {
			return ev, false
		}
		v, isEvent := m.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			t.Fatalf("event %T", m)
		}
		return v.Value, true
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	return ev, false
}

// nextRecords skips empty events (heartbeats) up to the next with
// records.
func nextRecords(t *testing.T, es *kinesis.SubscribeToShardEventStream, d time.Duration) types.SubscribeToShardEvent {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ev, ok := next(t, es, time.Until(deadline))
		if !ok {
			t.Fatalf("stream ended (%v) before records came", es.Err())
		}
		if len(ev.Records) > 0 {
			return ev
		}
	}
}

const shard0 = "shardId-000000000000"

func TestConsumers(t *testing.T) {
	e := startEFO(t, false, func(s *Server) { s.ConsumerActivation = 200 * time.Millisecond })
	ctx := context.Background()
	reg, err := e.c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(e.arn), ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(reg.Consumer.ConsumerARN)
	if !regexp.MustCompile(`^arn:aws:kinesis:us-east-1:000000000000:stream/efo/consumer/app:[0-9]{10}$`).MatchString(arn) {
		t.Errorf("ConsumerARN %s", arn)
	}
	if reg.Consumer.ConsumerStatus != types.ConsumerStatusCreating || reg.Consumer.ConsumerCreationTimestamp == nil {
		t.Errorf("registered %+v, want CREATING with a creation time", reg.Consumer)
	}
	_, err = e.c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(e.arn), ConsumerName: aws.String("app")})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Errorf("second RegisterStreamConsumer: %v, want ResourceInUseException", err)
	}
	_, err = e.subscribe(ctx, arn, shard0, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	if !errors.As(err, &inUse) {
		t.Errorf("SubscribeToShard while CREATING: %v, want ResourceInUseException", err)
	}
	// ACTIVE after ConsumerActivation: poll.
	for deadline := time.Now().Add(5 * time.Second); ; {
		d, err := e.c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		if d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			if aws.ToString(d.ConsumerDescription.StreamARN) != e.arn || aws.ToString(d.ConsumerDescription.ConsumerName) != "app" {
				t.Errorf("DescribeStreamConsumer = %+v", d.ConsumerDescription)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer still %s", d.ConsumerDescription.ConsumerStatus)
		}
		time.Sleep(10 * time.Millisecond)
	}
	byName, err := e.c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(e.arn), ConsumerName: aws.String("app")})
	if err != nil || aws.ToString(byName.ConsumerDescription.ConsumerARN) != arn {
		t.Errorf("DescribeStreamConsumer by name = %+v, %v", byName, err)
	}
	e.register(t, "other")
	list, err := e.c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(e.arn)})
	if err != nil || len(list.Consumers) != 2 || aws.ToString(list.Consumers[0].ConsumerName) != "app" || aws.ToString(list.Consumers[1].ConsumerName) != "other" {
		t.Errorf("ListStreamConsumers = %+v, %v", list, err)
	}
	sum, err := e.c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(e.arn)})
	if err != nil || aws.ToInt32(sum.StreamDescriptionSummary.ConsumerCount) != 2 {
		t.Errorf("DescribeStreamSummary = %+v, %v", sum, err)
	}

	// Deregistering ends its subscriptions.
	es := e.mustSubscribe(t, arn, shard0, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	if _, err := e.c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := next(t, es, 5*time.Second); ok {
		t.Error("an event after deregistering")
	}
	var rnf *types.ResourceNotFoundException
	if !errors.As(es.Err(), &rnf) {
		t.Errorf("subscription of a deregistered consumer ended with %v, want ResourceNotFoundException", es.Err())
	}
	_, err = e.c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
	if !errors.As(err, &rnf) {
		t.Errorf("DescribeStreamConsumer after deregistering: %v, want ResourceNotFoundException", err)
	}
	_, err = e.c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: aws.String(e.arn), ConsumerName: aws.String("other")})
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := e.c.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: aws.String(e.arn)}); len(list.Consumers) != 0 {
		t.Errorf("consumers left: %+v", list.Consumers)
	}
}

// TestSubscribe: over plain HTTP/1.1 and over TLS with HTTP/2, records
// put after subscribing come as events, as they were put.
func TestSubscribe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tls   bool
		proto string
	}{{"http1", false, "HTTP/1.1"}, {"tls-h2", true, "HTTP/2.0"}} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEFO(t, tc.tls, nil)
			consumer := e.register(t, "app")
			es := e.mustSubscribe(t, consumer, shard0, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
			if p := e.rec.proto("SubscribeToShard"); p != tc.proto {
				t.Errorf("SubscribeToShard answered in %s, want %s", p, tc.proto)
			}
			if n := e.fk.Protocols()["SubscribeToShard "+tc.proto]; n != 1 {
				t.Errorf("Protocols() = %v, want one SubscribeToShard in %s", e.fk.Protocols(), tc.proto)
			}
			var want []string
			for i := range 3 {
				before := time.Now().Truncate(time.Millisecond)
				out := e.put(t, 0, []byte{byte(i), 0xff})
				want = append(want, aws.ToString(out.SequenceNumber))
				ev := nextRecords(t, es, 5*time.Second)
				if len(ev.Records) != 1 {
					t.Fatalf("event of %d records, want 1", len(ev.Records))
				}
				r := ev.Records[0]
				if aws.ToString(r.SequenceNumber) != want[i] || aws.ToString(r.PartitionKey) != "k" || string(r.Data) != string([]byte{byte(i), 0xff}) ||
					r.ApproximateArrivalTimestamp.Before(before) || time.Since(*r.ApproximateArrivalTimestamp) > time.Minute {
					t.Errorf("record %d = %s %s %x %v, want %s k %x", i, aws.ToString(r.SequenceNumber), aws.ToString(r.PartitionKey), r.Data, r.ApproximateArrivalTimestamp, want[i], []byte{byte(i), 0xff})
				}
				if aws.ToString(ev.ContinuationSequenceNumber) != want[i] || ev.MillisBehindLatest == nil || *ev.MillisBehindLatest != 0 || ev.ChildShards != nil {
					t.Errorf("event %d: continuation %s, behind %v, children %v", i, aws.ToString(ev.ContinuationSequenceNumber), ev.MillisBehindLatest, ev.ChildShards)
				}
			}
			// Records of other shards do not come.
			e.put(t, 1, []byte("elsewhere"))
			e.put(t, 0, []byte("here"))
			if ev := nextRecords(t, es, 5*time.Second); len(ev.Records) != 1 || string(ev.Records[0].Data) != "here" {
				t.Errorf("event %+v, want the record put into shard 0", ev)
			}
		})
	}
}

// TestSubscribeBacklogAndRenewal: a subscriber behind gets the backlog in
// events of at most 1 MB; subscriptions are cut short (SubscriptionLength)
// while records are put, and each renewal AFTER_SEQUENCE_NUMBER the last
// ContinuationSequenceNumber gets every record once, in order.
func TestSubscribeBacklogAndRenewal(t *testing.T) {
	e := startEFO(t, true, func(s *Server) {
		s.SubscriptionLength = 150 * time.Millisecond
		s.SubscribeWindow = 20 * time.Millisecond
	})
	consumer := e.register(t, "app")
	// A backlog of 3 MB (+ keys) in 24 records of 128 KiB.
	var want []string
	big := make([]byte, 128<<10)
	for range 24 {
		want = append(want, aws.ToString(e.put(t, 0, big).SequenceNumber))
	}
	// More records while reading, 2 ms apart.
	const more = 300
	putDone := make(chan []string)
	go func() {
		var seqs []string
		for i := range more {
			out, err := e.c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamARN: aws.String(e.arn), PartitionKey: aws.String("k"),
				ExplicitHashKey: aws.String(e.shardKey(0)), Data: binary.BigEndian.AppendUint32(nil, uint32(i))})
			if err != nil {
				t.Error(err)
				break
			}
			seqs = append(seqs, aws.ToString(out.SequenceNumber))
			time.Sleep(2 * time.Millisecond)
		}
		putDone <- seqs
	}()

	var got []string
	subs := 0
	pos := types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
	deadline := time.Now().Add(30 * time.Second)
	var all []string
	for all == nil || len(got) < len(all) {
		if time.Now().After(deadline) {
			t.Fatalf("%d records after %d subscriptions", len(got), subs)
		}
		select {
		case seqs := <-putDone:
			all = append(slices.Clone(want), seqs...)
		default:
		}
		es, err := e.subscribe(context.Background(), consumer, shard0, pos)
		var inUse *types.ResourceInUseException
		if errors.As(err, &inUse) {
			continue // within SubscribeWindow of the last: again
		}
		if err != nil {
			t.Fatal(err)
		}
		subs++
		var cont string
		for {
			ev, ok := next(t, es, 5*time.Second)
			if !ok {
				break
			}
			size := 0
			for _, r := range ev.Records {
				got = append(got, aws.ToString(r.SequenceNumber))
				size += len(r.Data) + len(aws.ToString(r.PartitionKey))
			}
			if size > maxEvent {
				t.Errorf("an event of %d bytes of records", size)
			}
			cont = aws.ToString(ev.ContinuationSequenceNumber)
		}
		if err := es.Err(); err != nil {
			t.Fatalf("subscription %d ended with %v", subs, err)
		}
		es.Close()
		if cont != "" {
			pos = types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(cont)}
		}
	}
	if !slices.Equal(got, all) {
		t.Fatalf("got %d records, want %d: gap or duplicate (first difference at %d)", len(got), len(all), firstDiff(got, all))
	}
	if subs < 3 {
		t.Errorf("%d subscriptions: want the records read across several", subs)
	}
	t.Logf("%d records over %d subscriptions", len(got), subs)
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSubscribeWindow: within SubscribeWindow of a successful
// SubscribeToShard another for the same consumer and shard gets
// ResourceInUseException; after it, one takes over and the older ends
// with a ResourceInUseException event.
func TestSubscribeWindow(t *testing.T) {
	const window = 300 * time.Millisecond
	e := startEFO(t, true, func(s *Server) { s.SubscribeWindow = window })
	consumer := e.register(t, "app")
	latest := types.StartingPosition{Type: types.ShardIteratorTypeLatest}
	start := time.Now()
	old := e.mustSubscribe(t, consumer, shard0, latest)
	_, err := e.subscribe(context.Background(), consumer, shard0, latest)
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("second SubscribeToShard at once: %v, want ResourceInUseException", err)
	}
	// Another shard, or another consumer, is not held up.
	e.mustSubscribe(t, consumer, "shardId-000000000001", latest)
	e.mustSubscribe(t, e.register(t, "other"), shard0, latest)

	var taker *kinesis.SubscribeToShardEventStream
	for taker == nil {
		es, err := e.subscribe(context.Background(), consumer, shard0, latest)
		switch {
		case err == nil:
			taker = es
			t.Cleanup(func() { es.Close() })
		case errors.As(err, &inUse):
			if time.Since(start) > 10*window {
				t.Fatalf("still refused after %v", time.Since(start))
			}
			time.Sleep(window / 10)
		default:
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < window {
		t.Errorf("taken over after %v, before the window of %v", took, window)
	}
	if _, ok := next(t, old, 5*time.Second); ok {
		t.Error("the older subscription got an event after the takeover")
	}
	if !errors.As(old.Err(), &inUse) {
		t.Errorf("older subscription ended with %v, want ResourceInUseException", old.Err())
	}
	e.put(t, 0, []byte("x"))
	if ev := nextRecords(t, taker, 5*time.Second); string(ev.Records[0].Data) != "x" {
		t.Errorf("taker got %+v", ev)
	}
}

// TestSubscribeHeartbeatAndEnd: an idle subscription gets empty events
// with a ContinuationSequenceNumber, and ends after SubscriptionLength.
func TestSubscribeHeartbeatAndEnd(t *testing.T) {
	e := startEFO(t, false, func(s *Server) {
		s.Heartbeat = 30 * time.Millisecond
		s.SubscriptionLength = 500 * time.Millisecond
	})
	consumer := e.register(t, "app")
	seq := aws.ToString(e.put(t, 0, []byte("old")).SequenceNumber)
	start := time.Now()
	es := e.mustSubscribe(t, consumer, shard0, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	beats := 0
	for {
		ev, ok := next(t, es, 5*time.Second)
		if !ok {
			break
		}
		if len(ev.Records) != 0 || aws.ToString(ev.ContinuationSequenceNumber) != seq || aws.ToInt64(ev.MillisBehindLatest) != 0 {
			t.Errorf("heartbeat %+v, want no records and continuation %s", ev, seq)
		}
		beats++
	}
	if took := time.Since(start); took < 500*time.Millisecond || es.Err() != nil {
		t.Errorf("ended after %v with %v, want after 500ms with none", took, es.Err())
	}
	if beats < 3 {
		t.Errorf("%d heartbeats in 500ms at one per 30ms", beats)
	}
}

// TestReshardEFO: a split and then a merge close their parents: the
// parents' subscriptions get their last records and then ChildShards with
// a null ContinuationSequenceNumber and end; GetRecords ends with a null
// NextShardIterator and ChildShards; puts go to the children.
func TestReshardEFO(t *testing.T) {
	e := startEFO(t, true, nil)
	ctx := context.Background()
	consumer := e.register(t, "app")
	es := e.mustSubscribe(t, consumer, shard0, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	last := aws.ToString(e.put(t, 0, []byte("before")).SequenceNumber)
	nextRecords(t, es, 5*time.Second)
	it, err := e.c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamARN: aws.String(e.arn), ShardId: aws.String(shard0), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}

	sh0 := e.fk.streams["efo"].shardsNow()[0]
	lo, _ := new(big.Int).SetString(sh0.StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(sh0.EndingHashKey, 10)
	mid := new(big.Int).Add(lo, new(big.Int).Rsh(new(big.Int).Sub(hi, lo), 1))
	if _, err := e.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamARN: aws.String(e.arn), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatal(err)
	}
	ev, ok := next(t, es, 5*time.Second)
	if !ok {
		t.Fatalf("stream ended (%v) without ChildShards", es.Err())
	}
	kids := []string{"shardId-000000000004", "shardId-000000000005"}
	if ev.ContinuationSequenceNumber != nil || len(ev.Records) != 0 || len(ev.ChildShards) != 2 {
		t.Fatalf("last event %+v, want ChildShards and no continuation", ev)
	}
	for i, c := range ev.ChildShards {
		if aws.ToString(c.ShardId) != kids[i] || !slices.Equal(c.ParentShards, []string{shard0}) || c.HashKeyRange == nil {
			t.Errorf("child %d = %s %v", i, aws.ToString(c.ShardId), c.ParentShards)
		}
	}
	if aws.ToString(ev.ChildShards[1].HashKeyRange.StartingHashKey) != mid.String() || aws.ToString(ev.ChildShards[0].HashKeyRange.StartingHashKey) != sh0.StartingHashKey {
		t.Errorf("children's ranges %+v %+v", ev.ChildShards[0].HashKeyRange, ev.ChildShards[1].HashKeyRange)
	}
	if _, ok := next(t, es, 5*time.Second); ok || es.Err() != nil {
		t.Errorf("after ChildShards: ended %v, err %v", !ok, es.Err())
	}

	// GetRecords reads the parent to its end.
	gr, err := e.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(gr.Records) != 1 || aws.ToString(gr.Records[0].SequenceNumber) != last || gr.NextShardIterator != nil || len(gr.ChildShards) != 2 {
		t.Errorf("GetRecords of the closed parent = %d records, next %v, children %+v", len(gr.Records), gr.NextShardIterator, gr.ChildShards)
	}
	// A subscription to the closed parent reads it and ends.
	es2 := e.mustSubscribe(t, e.register(t, "late"), shard0, types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	if ev, ok := next(t, es2, 5*time.Second); !ok || len(ev.Records) != 1 || len(ev.ChildShards) != 2 || ev.ContinuationSequenceNumber != nil {
		t.Errorf("subscription to the closed parent: %+v", ev)
	}
	if out := e.put(t, 0, []byte("after")); aws.ToString(out.ShardId) != kids[0] {
		t.Errorf("put at the parent's first hash key went to %s, want %s", aws.ToString(out.ShardId), kids[0])
	}
	ls, err := e.c.ListShards(ctx, &kinesis.ListShardsInput{StreamARN: aws.String(e.arn)})
	if err != nil || len(ls.Shards) != 6 || ls.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil || aws.ToString(ls.Shards[4].ParentShardId) != shard0 {
		t.Errorf("ListShards = %+v, %v", ls, err)
	}

	// Merging the children closes both; the merged child names both.
	es4 := e.mustSubscribe(t, consumer, kids[0], types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	if _, err := e.c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamARN: aws.String(e.arn), ShardToMerge: aws.String(kids[1]), AdjacentShardToMerge: aws.String(kids[0])}); err != nil {
		t.Fatal(err)
	}
	ev = nextRecords(t, es4, 5*time.Second)
	if string(ev.Records[0].Data) != "after" {
		t.Errorf("child's record %q", ev.Records[0].Data)
	}
	if ev.ChildShards == nil {
		if ev, ok = next(t, es4, 5*time.Second); !ok {
			t.Fatal("no ChildShards after the merge")
		}
	}
	if len(ev.ChildShards) != 1 || aws.ToString(ev.ChildShards[0].ShardId) != "shardId-000000000006" || !slices.Equal(ev.ChildShards[0].ParentShards, []string{kids[1], kids[0]}) ||
		aws.ToString(ev.ChildShards[0].HashKeyRange.StartingHashKey) != sh0.StartingHashKey || aws.ToString(ev.ChildShards[0].HashKeyRange.EndingHashKey) != sh0.EndingHashKey {
		t.Errorf("merge ChildShards %+v", ev.ChildShards)
	}
	_, err = e.c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamARN: aws.String(e.arn), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000003")})
	var inv *types.InvalidArgumentException
	if !errors.As(err, &inv) {
		t.Errorf("merging shards not adjacent: %v, want InvalidArgumentException", err)
	}
	_, err = e.c.SplitShard(ctx, &kinesis.SplitShardInput{StreamARN: aws.String(e.arn), ShardToSplit: aws.String(shard0), NewStartingHashKey: aws.String(mid.String())})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Errorf("splitting a closed shard: %v, want ResourceInUseException", err)
	}
}

// TestPutToEventLatency puts 2,000 records at 1,000 a second over 4
// shards, one subscriber per shard, and logs the put→event latency (from
// before PutRecord to the event's arrival at the SDK's reader).
func TestPutToEventLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("2 s a transport")
	}
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http1", false}, {"tls-h2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			p50, p99 := putToEvent(t, tc.tls, 2000, time.Millisecond)
			t.Logf("put→event over %s: p50 %v, p99 %v", tc.name, p50, p99)
			if p50 > 10*time.Millisecond || p99 > 30*time.Millisecond {
				t.Errorf("p50 %v, p99 %v: above the product's whole budget (10 ms, 30 ms)", p50, p99)
			}
		})
	}
}

func putToEvent(t *testing.T, useTLS bool, n int, every time.Duration) (p50, p99 time.Duration) {
	e := startEFO(t, useTLS, nil)
	consumer := e.register(t, "lat")
	sent := make([]atomic.Int64, n)
	lat := make([][]time.Duration, 4)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for s := range 4 {
		es := e.mustSubscribe(t, consumer, fmt.Sprintf("shardId-%012d", s), types.StartingPosition{Type: types.ShardIteratorTypeLatest})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got := 0; got < n/4; {
				var m types.SubscribeToShardEventStream
				var ok bool
				select {
				case m, ok = <-es.Events():
				case <-stop:
					return
				}
				if !ok {
					t.Errorf("shard %d: stream ended: %v", s, es.Err())
					return
				}
				now := time.Now().UnixNano()
				for _, r := range m.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent).Value.Records {
					i := binary.BigEndian.Uint32(r.Data)
					lat[s] = append(lat[s], time.Duration(now-sent[i].Load()))
					got++
				}
			}
		}()
	}
	keys := [4]string{e.shardKey(0), e.shardKey(1), e.shardKey(2), e.shardKey(3)}
	tick := time.NewTicker(every)
	for i := range n {
		<-tick.C
		sent[i].Store(time.Now().UnixNano())
		if _, err := e.c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamARN: aws.String(e.arn), PartitionKey: aws.String("k"),
			ExplicitHashKey: aws.String(keys[i%4]), Data: binary.BigEndian.AppendUint32(nil, uint32(i))}); err != nil {
			t.Error(err)
			close(stop)
			break
		}
	}
	tick.Stop()
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	all := slices.Concat(lat...)
	if len(all) != n {
		t.Fatalf("%d latencies, want %d", len(all), n)
	}
	slices.Sort(all)
	return all[n/2], all[n*99/100]
}

// TestSubscribeWire reads SubscribeToShard's answer frame by frame: the
// HTTP answer, the initial-response and, for a CBOR request, CBOR events.
func TestSubscribeWire(t *testing.T) {
	e := startEFO(t, false, nil)
	consumer := e.register(t, "app")
	body, _ := cbor.Marshal(map[string]any{"ConsumerARN": consumer, "ShardId": shard0, "StartingPosition": map[string]any{"Type": "LATEST"}})
	req, _ := http.NewRequest("POST", e.ep.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentCBOR)
	req.Header.Set("X-Amz-Target", targetPfx+"SubscribeToShard")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
		t.Fatalf("answer %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	dec := eventstream.NewDecoder()
	frame := func() (eventType, contentType string, payload []byte) {
		t.Helper()
		m, err := dec.Decode(resp.Body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if mt := m.Headers.Get(":message-type"); mt == nil || mt.String() != "event" {
			t.Fatalf(":message-type %v", mt)
		}
		return m.Headers.Get(":event-type").String(), m.Headers.Get(":content-type").String(), m.Payload
	}
	if et, ct, p := frame(); et != "initial-response" || ct != contentCBOR || !bytes.Equal(p, []byte{0xa0}) {
		t.Errorf("first frame %s %s %x, want initial-response with an empty CBOR map", et, ct, p)
	}
	seq := aws.ToString(e.put(t, 0, []byte{1, 2, 3}).SequenceNumber)
	et, ct, p := frame()
	var ev struct {
		Records []struct {
			Data           []byte
			SequenceNumber string
		}
		ContinuationSequenceNumber string
		MillisBehindLatest         int64
	}
	if err := cbor.Unmarshal(p, &ev); err != nil || et != "SubscribeToShardEvent" || ct != contentCBOR {
		t.Fatalf("frame %s %s %x: %v", et, ct, p, err)
	}
	if len(ev.Records) != 1 || !bytes.Equal(ev.Records[0].Data, []byte{1, 2, 3}) || ev.Records[0].SequenceNumber != seq || ev.ContinuationSequenceNumber != seq {
		t.Errorf("event %+v", ev)
	}
}

// TestOnReadSubscribe: the read hook sees SubscribeToShard too, before the
// stream opens, and not the consumer calls before it.
func TestOnReadSubscribe(t *testing.T) {
	e := startEFO(t, true, nil)
	var n atomic.Int64
	e.fk.SetOnRead(func() { n.Add(1) })
	defer e.fk.SetOnRead(nil)
	consumer := e.register(t, "app")
	if got := n.Load(); got != 0 {
		t.Fatalf("hook called %d times before SubscribeToShard", got)
	}
	e.mustSubscribe(t, consumer, shard0, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	if got := n.Load(); got != 1 {
		t.Errorf("hook called %d times, want 1 (the SubscribeToShard)", got)
	}
}
