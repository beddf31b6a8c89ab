package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// efoStream is a one-shard stream on kinesis-mock behind a FanOut proxy,
// with a registered ACTIVE consumer.
type efoStream struct {
	t         *testing.T
	proxy     *standintest.FanOut
	client    *kinesis.Client
	name      string
	consumer  string
	subscribe SubscribeFunc
}

func newEFOStream(t *testing.T) *efoStream {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ks := standintest.Kinesis(t)
	name := standintest.NewStream(t, ks.Endpoint, 1)
	proxy := standintest.FanOutProxy(t, ks.Endpoint)
	kc := standintest.KinesisClient(proxy.URL)
	ctx := context.Background()
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := kc.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: sum.StreamDescriptionSummary.StreamARN, ConsumerName: aws.String("efo")})
	if err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, 20*time.Second, "the consumer ACTIVE", func() bool {
		d, err := kc.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: reg.Consumer.ConsumerARN})
		return err == nil && d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive
	})
	return &efoStream{t: t, proxy: proxy, client: kc, name: name, consumer: aws.ToString(reg.Consumer.ConsumerARN)}
}

// put writes records data-from … data-(from+n-1) and returns their
// sequence numbers.
func (e *efoStream) put(from, n int) []string {
	e.t.Helper()
	var seqs []string
	for i := from; i < from+n; i++ {
		out, err := e.client.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String(e.name),
			Data: []byte(fmt.Sprintf("data-%d", i)), PartitionKey: aws.String(fmt.Sprint("k", i))})
		if err != nil {
			e.t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	return seqs
}

func (e *efoStream) subscriber(start stream.Position, logs *bytes.Buffer, mod func(*Config)) *Subscriber {
	e.t.Helper()
	cfg := Config{StreamName: e.name, ShardID: "shardId-000000000000", Start: start, ConsumerARN: e.consumer,
		RetryWaitTime: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	} else if os.Getenv("SHARDLINE_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewSubscriber(e.subscribe, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

// readers are the two ways to read a subscription: Shardline's own
// (Client.Subscribe) and the SDK's event stream reader.
var readers = []struct {
	name string
	of   func(*kinesis.Client) SubscribeFunc
}{
	{"own", func(c *kinesis.Client) SubscribeFunc { return NewClient(c, ClientConfig{}).Subscribe }},
	{"sdk", func(c *kinesis.Client) SubscribeFunc { return SDKSubscribe(c) }},
}

// eachReader runs test once with each reader.
func eachReader(t *testing.T, test func(t *testing.T, e *efoStream)) {
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			e := newEFOStream(t)
			e.subscribe = r.of(e.client)
			test(t, e)
		})
	}
}

// collect calls Next until it has n records; the subscription lives as
// long as ctx (as a shard's reading does), so the limit is a timer.
func collect(t *testing.T, ctx context.Context, p Publisher, n int, within time.Duration) []string {
	t.Helper()
	limit := time.AfterFunc(within, func() { t.Errorf("no %d records within %s", n, within) })
	defer limit.Stop()
	var got []string
	for len(got) < n {
		b, err := p.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %d of %d records: %v", len(got), n, err)
		}
		for _, r := range b.Records {
			got = append(got, string(r.Data))
		}
	}
	return got
}

func wantData(from, n int) []string {
	var w []string
	for i := from; i < from+n; i++ {
		w = append(w, fmt.Sprintf("data-%d", i))
	}
	return w
}

// TestSubscriberReads (issue 18): a subscription from TRIM_HORIZON brings
// every record in order, then those put later; from a checkpoint it starts
// AT its record.
func TestSubscriberReads(t *testing.T) {
	eachReader(t, func(t *testing.T, e *efoStream) {
		ctx, cancelAll := context.WithTimeout(context.Background(), time.Minute)
		defer cancelAll()
		seqs := e.put(0, 5)
		s := e.subscriber(stream.Position{Seq: stream.TrimHorizon}, nil, nil)
		if s.Mode() != ModeFanOut {
			t.Errorf("Mode() = %q, want %q", s.Mode(), ModeFanOut)
		}
		got := collect(t, ctx, s, 5, 20*time.Second)
		e.put(5, 3)
		got = append(got, collect(t, ctx, s, 3, 20*time.Second)...)
		if want := wantData(0, 8); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("records %q, want %q", got, want)
		}
		if st := s.Stats(); st.SubscriptionStarts != 1 || st.SubscriptionErrors != 0 {
			t.Errorf("stats %+v: want one start, no error", st)
		}

		_ = s.Close() // one subscription per consumer and shard
		from := e.subscriber(stream.Position{Seq: seqs[3]}, nil, nil)
		if got := collect(t, ctx, from, 5, 20*time.Second); fmt.Sprint(got) != fmt.Sprint(wantData(3, 5)) {
			t.Errorf("from the checkpoint %s: %q, want %q", seqs[3], got, wantData(3, 5))
		}
	})
}

// TestSubscriberRenews (issue 18): a subscription that ends as planned
// (AWS: after 5 minutes; here the proxy ends each after 1.5 s) is renewed
// after its last continuation sequence number: nothing missed, nothing
// twice. (kinesis-mock still holds the subscription the proxy ended, and
// refuses the renewal once with ResourceInUseException: an error counted,
// waited out.)
func TestSubscriberRenews(t *testing.T) {
	eachReader(t, func(t *testing.T, e *efoStream) {
		ctx, cancelAll := context.WithTimeout(context.Background(), time.Minute)
		defer cancelAll()
		e.proxy.EndAfter.Store(int64(1500 * time.Millisecond))
		s := e.subscriber(stream.Position{Seq: stream.TrimHorizon}, nil, nil)
		var got []string
		for round := range 3 {
			e.put(round*4, 4)
			got = append(got, collect(t, ctx, s, 4, 20*time.Second)...)
			before := s.Stats().SubscriptionRenewals
			testwait.Until(t, 20*time.Second, "a renewal", func() bool {
				b, err := s.Next(ctx) // kinesis-mock sends an event a second
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				for _, r := range b.Records {
					got = append(got, string(r.Data))
				}
				return s.Stats().SubscriptionRenewals > before
			})
		}
		if want := wantData(0, 12); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("records %q, want %q (none missed or twice across renewals)", got, want)
		}
		if st := s.Stats(); st.SubscriptionStarts != 1 || st.SubscriptionRenewals < 3 {
			t.Errorf("stats %+v: want 1 start, ≥ 3 renewals", st)
		}
	})
}

// TestSubscriberQuiet (issue 18): a subscription that sends nothing for
// QuietTimeout is started again from the last continuation, with a WARN
// line; the records come.
func TestSubscriberQuiet(t *testing.T) {
	eachReader(t, func(t *testing.T, e *efoStream) {
		ctx, cancelAll := context.WithTimeout(context.Background(), time.Minute)
		defer cancelAll()
		var logs bytes.Buffer
		s := e.subscriber(stream.Position{Seq: stream.TrimHorizon}, &logs, func(c *Config) { c.QuietTimeout = 2 * time.Second })
		e.put(0, 2)
		got := collect(t, ctx, s, 2, 20*time.Second)
		e.proxy.Stalled.Store(true)
		subs := e.proxy.Subscriptions.Load()
		e.put(2, 2)
		// The stalled subscription sends nothing; the next one (after the
		// quiet timeout) is let through.
		go func() {
			testwait.Until(t, 10*time.Second, "a new subscription", func() bool { return e.proxy.Subscriptions.Load() > subs })
			e.proxy.Stalled.Store(false)
		}()
		for len(got) < 4 {
			b, err := s.Next(ctx)
			if err != nil {
				t.Fatalf("Next: %v\n%s", err, logs.String())
			}
			for _, r := range b.Records {
				got = append(got, string(r.Data))
			}
		}
		if want := wantData(0, 4); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("records %q, want %q", got, want)
		}
		if !strings.Contains(logs.String(), "subscription sent nothing; subscribing again") {
			t.Errorf("logs:\n%s\nwant the quiet subscription's WARN line", logs.String())
		}
		if st := s.Stats(); st.SubscriptionErrors < 1 || st.SubscriptionStarts != 2 {
			t.Errorf("stats %+v: want the quiet subscription's error and a second start", st)
		}
	})
}

// inUse refuses the first n subscriptions as another subscription holding
// the shard would, then passes the calls on.
type inUse struct {
	next  SubscribeFunc
	n     int
	calls atomic.Int64
	at    []time.Time
}

func (u *inUse) subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (Subscription, error) {
	u.at = append(u.at, time.Now())
	if int(u.calls.Add(1)) <= u.n {
		return nil, &types.ResourceInUseException{Message: aws.String("Another active subscription exists for this consumer")}
	}
	return u.next(ctx, in)
}

// TestSubscriberInUse (issue 18): ResourceInUseException (a subscription
// younger than 5 s, or another holding the shard) is waited out, calls at
// least a second apart; ResourceNotFoundException ends the reader with an
// error the consumer reads as a shard gone; a lease lost (ctx ended) ends
// the subscription at once.
func TestSubscriberInUse(t *testing.T) {
	eachReader(t, func(t *testing.T, e *efoStream) {
		ctx, cancelAll := context.WithTimeout(context.Background(), time.Minute)
		defer cancelAll()
		e.put(0, 2)
		api := &inUse{next: e.subscribe, n: 2}
		cfg := Config{StreamName: e.name, ShardID: "shardId-000000000000", Start: stream.Position{Seq: stream.TrimHorizon}, ConsumerARN: e.consumer,
			RetryWaitTime: 10 * time.Millisecond}
		s, err := NewSubscriber(api.subscribe, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := collect(t, ctx, s, 2, 30*time.Second); fmt.Sprint(got) != fmt.Sprint(wantData(0, 2)) {
			t.Errorf("records %q", got)
		}
		for i := 1; i < len(api.at); i++ {
			if gap := api.at[i].Sub(api.at[i-1]); gap < time.Second {
				t.Errorf("SubscribeToShard calls %d and %d %s apart: want at least 1s", i, i+1, gap)
			}
		}
		if st := s.Stats(); st.SubscriptionErrors != 2 || st.SubscriptionStarts != 1 {
			t.Errorf("stats %+v: want 2 errors and 1 start", st)
		}

		lease, leaseLost := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			for {
				b, err := s.Next(lease) // empty events come a second apart
				if err != nil || len(b.Records) > 0 {
					done <- err
					return
				}
			}
		}()
		leaseLost()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Next after the lease went: %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Next did not return within 10s of its context ending")
		}
		if s.sub != nil {
			t.Error("the subscription is still open after its context ended")
		}

		gone, err := NewSubscriber(shardGone, cfg)
		if err != nil {
			t.Fatal(err)
		}
		var nf *types.ResourceNotFoundException
		if _, err := gone.Next(ctx); !errors.As(err, &nf) || !IsFatal(err) {
			t.Errorf("a shard or consumer gone: %v, want ResourceNotFoundException, fatal", err)
		}
	})
}

// shardGone answers every subscription as for a shard or consumer gone.
func shardGone(context.Context, *kinesis.SubscribeToShardInput) (Subscription, error) {
	return nil, &types.ResourceNotFoundException{Message: aws.String("Shard shardId-000000000000 in stream s under account 000000000000 does not exist")}
}

// TestSubscriberNoContinuation (issue 18): an event with neither a
// continuation sequence number nor child shards is an error naming both,
// never a shard's end.
func TestSubscriberNoContinuation(t *testing.T) {
	eachReader(t, func(t *testing.T, e *efoStream) {
		e.proxy.NoContinuation.Store(true)
		e.put(0, 1)
		s := e.subscriber(stream.Position{Seq: stream.TrimHorizon}, nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b, err := s.Next(ctx)
		if !errors.Is(err, ErrNoContinuation) || b.End {
			t.Fatalf("Next: batch end %v, error %v; want ErrNoContinuation and no end", b.End, err)
		}
		if !strings.Contains(err.Error(), "shardId-000000000000") {
			t.Errorf("error %q does not name the shard", err)
		}
	})
}

// TestOwnReaderWithoutInitialResponse (issue 18): Shardline's own reader
// reads kinesis-mock as it is (no initial-response event), without the
// proxy: its first event is the first of the records.
func TestOwnReaderWithoutInitialResponse(t *testing.T) {
	e := newEFOStream(t)
	ks := standintest.Kinesis(t)
	direct := standintest.KinesisClient(ks.Endpoint)
	e.subscribe = NewClient(direct, ClientConfig{}).Subscribe
	e.put(0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := e.subscriber(stream.Position{Seq: stream.TrimHorizon}, nil, nil)
	if got := collect(t, ctx, s, 3, 20*time.Second); fmt.Sprint(got) != fmt.Sprint(wantData(0, 3)) {
		t.Errorf("records %q, want %q", got, wantData(0, 3))
	}
}
