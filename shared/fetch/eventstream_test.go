package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// frame encodes one event stream message with the SDK's encoder.
func frame(t testing.TB, headers eventstream.Headers, payload []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&b, eventstream.Message{Headers: headers, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func eventHeaders(eventType string) eventstream.Headers {
	return eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("event")},
		{Name: ":event-type", Value: eventstream.StringValue(eventType)},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		// Headers of other types are skipped.
		{Name: "x-n", Value: eventstream.Int64Value(7)},
		{Name: "x-b", Value: eventstream.BytesValue([]byte{1, 2})},
		{Name: "x-t", Value: eventstream.BoolValue(true)},
	}
}

// eventPayload is a SubscribeToShardEvent's JSON with n records.
func eventPayload(n int, cont string) []byte {
	var b strings.Builder
	b.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"SequenceNumber":"%d","PartitionKey":"k%d","Data":%q,"ApproximateArrivalTimestamp":1796051652.086}`,
			100+i, i, base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "data-%d", i)))
	}
	fmt.Fprintf(&b, `],"ContinuationSequenceNumber":%q,"MillisBehindLatest":12}`, cont)
	return []byte(b.String())
}

// TestEventStreamReader (issue 18): the messages the SDK's encoder writes
// read back with their headers and payloads; events decode as the SDK
// would; exceptions become the SDK's types; a damaged checksum, a message
// too large and one cut short are errors, never a silent end.
func TestEventStreamReader(t *testing.T) {
	var stream bytes.Buffer
	stream.Write(frame(t, eventHeaders("initial-response"), []byte("{}")))
	stream.Write(frame(t, eventHeaders("SubscribeToShardEvent"), eventPayload(3, "103")))
	stream.Write(frame(t, eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
		{Name: ":exception-type", Value: eventstream.StringValue("ResourceInUseException")},
	}, []byte(`{"message":"Another active subscription exists"}`)))
	s := &ownSubscription{body: io.NopCloser(&stream), cancel: func() {}, r: messageReader{r: &stream}}
	m, err := s.r.next()
	if err != nil || m.eventType != "initial-response" || string(m.payload) != "{}" {
		t.Fatalf("first message %+v, %v", m, err)
	}
	ev, err := s.Next()
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 3 || aws.ToString(ev.ContinuationSequenceNumber) != "103" || aws.ToInt64(ev.MillisBehindLatest) != 12 ||
		string(ev.Records[2].Data) != "data-2" || aws.ToString(ev.Records[1].PartitionKey) != "k1" {
		t.Errorf("event %+v", ev)
	}
	var inUse *types.ResourceInUseException
	if _, err := s.Next(); !errors.As(err, &inUse) || !strings.Contains(err.Error(), "Another active") {
		t.Errorf("the exception: %v, want ResourceInUseException with its message", err)
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last message: %v, want io.EOF", err)
	}

	good := frame(t, eventHeaders("SubscribeToShardEvent"), eventPayload(1, "100"))
	for name, b := range map[string][]byte{
		"payload changed": func() []byte { b := bytes.Clone(good); b[len(b)-10] ^= 1; return b }(),
		"prelude changed": func() []byte { b := bytes.Clone(good); b[5] ^= 1; return b }(),
		"cut short":       good[:len(good)-3],
		"too large":       append([]byte{0x7f, 0, 0, 0, 0, 0, 0, 0}, 0, 0, 0, 0),
	} {
		r := messageReader{r: bytes.NewReader(b)}
		if _, err := r.next(); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
}

// FuzzEventStream: any bytes, read as a subscription's answer, give events
// or an error, never a panic, and allocate no more than their size allows
// (the frame buffer, then what the JSON decoder may allocate).
func FuzzEventStream(f *testing.F) {
	f.Add(frame(f, eventHeaders("SubscribeToShardEvent"), eventPayload(3, "103")))
	f.Add(frame(f, eventHeaders("initial-response"), []byte("{}")))
	cborHeaders := eventHeaders("SubscribeToShardEvent")
	cborHeaders.Set(":content-type", eventstream.StringValue(CBOR))
	e := &enc{}
	e.head(majMap, 2).text("ContinuationSequenceNumber").text("101").text("Records").head(majArray, 1)
	e.head(majMap, 2).text("SequenceNumber").text("100").text("Data").bytes([]byte("data-0"))
	f.Add(frame(f, cborHeaders, e.b))
	f.Add(frame(f, eventstream.Headers{{Name: ":message-type", Value: eventstream.StringValue("exception")},
		{Name: ":exception-type", Value: eventstream.StringValue("LimitExceededException")}}, []byte(`{"message":"m"}`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		limit := uint64(allocPerByte*len(b) + allocSlack)
		ok, n := allocatedAtMost(limit, func() {
			s := &ownSubscription{body: io.NopCloser(bytes.NewReader(b)), cancel: func() {}, r: messageReader{r: bytes.NewReader(b)}}
			for range 100 {
				if _, err := s.Next(); err != nil {
					return
				}
			}
		})
		if !ok {
			t.Fatalf("reading %d bytes allocated %d bytes, more than %d", len(b), n, limit)
		}
	})
}

// BenchmarkEventStream: one SubscribeToShardEvent of 1,000 records of 100
// bytes (BenchmarkDecodeGetRecords's answer), framed, read and decoded by
// Shardline's reader, in JSON and in CBOR.
//
//	go test -run '^$' -bench 'BenchmarkEventStream|BenchmarkDecodeGetRecords$' -benchmem ./shared/fetch/
func BenchmarkEventStream(b *testing.B) {
	var p strings.Builder
	p.WriteString(`{"Records":[`)
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("d"), 100))
	for i := range 1000 {
		if i > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, `{"SequenceNumber":"49590338271490256608559692538361571095921575989136588801","ApproximateArrivalTimestamp":1796051652.086,"Data":%q,"PartitionKey":"partition-key-0001","EncryptionType":"NONE"}`, data)
	}
	p.WriteString(`],"ContinuationSequenceNumber":"49590338271490256608559692538361571095921575989136588801","MillisBehindLatest":0}`)
	e := &enc{}
	e.head(majMap, 3).text("MillisBehindLatest").uint(0).text("ContinuationSequenceNumber").text("49590338271490256608559692538361571095921575989136588801")
	e.benchRecords()
	cborHeaders := eventHeaders("SubscribeToShardEvent")
	cborHeaders.Set(":content-type", eventstream.StringValue(CBOR))
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"json", frame(b, eventHeaders("SubscribeToShardEvent"), []byte(p.String()))},
		{"cbor", frame(b, cborHeaders, e.b)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.msg)))
			b.ReportAllocs()
			r := bytes.NewReader(tc.msg)
			s := &ownSubscription{body: io.NopCloser(r), cancel: func() {}, r: messageReader{r: r}}
			for b.Loop() {
				r.Reset(tc.msg)
				if ev, err := s.Next(); err != nil || len(ev.Records) != 1000 {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBudgetBoundsEvents (issue 18): subscriptions sharing a Budget read
// an event only when its bytes are free: the second waits until the first
// asks for its next event (its last one handed on), or is closed.
func TestBudgetBoundsEvents(t *testing.T) {
	ev := frame(t, eventHeaders("SubscribeToShardEvent"), eventPayload(50, "150"))
	budget := NewBudget(int64(len(ev)) + 10) // one event at a time
	open := func() *ownSubscription {
		in := bytes.NewReader(ev)
		s := &ownSubscription{body: io.NopCloser(in), cancel: func() {}, r: messageReader{r: in}, ctx: context.Background(), budget: budget}
		s.r.reserve = s.reserve
		return s
	}
	a, b := open(), open()
	if _, err := a.Next(); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := b.Next()
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("the second subscription read an event (%v) while the first held the budget", err)
	case <-time.After(100 * time.Millisecond): // a bound on what must not happen, not synchronisation
	}
	if _, err := a.Next(); !errors.Is(err, io.EOF) { // a's event handed on: its bytes go back
		t.Fatalf("a's second Next: %v, want io.EOF", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the second subscription once the first handed its event on: %v", err)
	}
	_ = a.Close()
	_ = b.Close()
	if budget.free != budget.max {
		t.Errorf("budget %d of %d free after both closed: want all given back", budget.free, budget.max)
	}
}
