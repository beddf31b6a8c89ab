package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// Subscription is one SubscribeToShard stream's events, one at a time.
type Subscription interface {
	// Next blocks for the next event. It returns io.EOF when the
	// subscription ended as planned (after 5 minutes), and the
	// exception's error when Kinesis ended it with one
	// (*types.ResourceInUseException and the rest, as the SDK's).
	Next() (*types.SubscribeToShardEvent, error)
	// Close ends the subscription; a Next blocked in another goroutine
	// returns. It may be called more than once, from any goroutine.
	Close() error
}

// SubscribeFunc starts a subscription. The subscription lives as long as
// ctx, or until Close.
type SubscribeFunc func(ctx context.Context, in *kinesis.SubscribeToShardInput) (Subscription, error)

// SDKSubscribe starts subscriptions through the SDK's client and its
// event stream reader (JSON decoded by the SDK, a goroutine and channel per
// subscription). Client.Subscribe is Shardline's own, cheaper reader.
func SDKSubscribe(c SubscribeAPI) SubscribeFunc {
	return func(ctx context.Context, in *kinesis.SubscribeToShardInput) (Subscription, error) {
		ctx, cancel := context.WithCancel(ctx)
		out, err := c.SubscribeToShard(ctx, in, ownCodec)
		if err != nil {
			cancel()
			return nil, err
		}
		st := out.GetStream()
		return &sdkSubscription{stream: st, events: st.Events(), cancel: cancel}, nil
	}
}

type sdkSubscription struct {
	stream *kinesis.SubscribeToShardEventStream
	events <-chan types.SubscribeToShardEventStream
	cancel context.CancelFunc
	once   sync.Once
}

func (s *sdkSubscription) Next() (*types.SubscribeToShardEvent, error) {
	for ev := range s.events {
		if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
			return &e.Value, nil
		}
		// An event type this SDK does not know: skipped.
	}
	if err := s.stream.Err(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}

func (s *sdkSubscription) Close() error {
	s.once.Do(func() {
		s.cancel()
		_ = s.stream.Close()
	})
	return nil
}

// Subscribe starts a subscription with Shardline's own reader: the
// request signed as GetRecords is, the answer's event stream read as it
// comes (eventstream.go) and each event's JSON decoded as a GetRecords
// answer is (decodeEventJSON): a few allocations an event, the records'
// data in one buffer of their own. Errors are the SDK's types, as for
// GetRecords: a refused call's in an *awshttp.ResponseError, an exception
// in the stream as its type (*types.ResourceInUseException, ...).
func (c *Client) Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (Subscription, error) {
	inJSON := c.json.Load() || c.subscribeJSON.Load()
	sub, err := c.subscribe(ctx, in, inJSON)
	if why := refusal(err); why != "" && !inJSON {
		// As for GetRecords: an endpoint that refuses the request in
		// CBOR and takes it in JSON is asked in JSON from now on.
		jsub, jerr := c.subscribe(ctx, in, true)
		if answered(jerr, why) {
			if c.subscribeJSON.CompareAndSwap(false, true) {
				c.log.Info("the Kinesis endpoint refuses SubscribeToShard in CBOR and answers it in JSON: subscribing in JSON from now on",
					"endpoint", c.url, "cborAnswer", err.Error())
			}
			sub, err = jsub, jerr
		} else if jsub != nil {
			_ = jsub.Close()
		}
	}
	if err != nil {
		return nil, &smithy.OperationError{ServiceID: "Kinesis", OperationName: "SubscribeToShard", Err: err}
	}
	return sub, nil
}

var _ SubscribeFunc = (*Client)(nil).Subscribe

func (c *Client) subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput, inJSON bool) (*ownSubscription, error) {
	if in.ConsumerARN == nil || in.ShardId == nil || in.StartingPosition == nil {
		return nil, &types.InvalidArgumentException{Message: aws.String("ConsumerARN, ShardId and StartingPosition are required")}
	}
	url, err := c.endpointFor(in.ConsumerARN)
	if err != nil {
		return nil, err
	}
	body, contentType := encodeSubscribeCBOR(in), CBOR
	if inJSON {
		body, contentType = encodeSubscribeJSON(in), JSON
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
	if c.creds != nil {
		creds, err := c.creds.Retrieve(ctx)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("get credentials: %w", err)
		}
		sum := sha256.Sum256(body)
		signAt := time.Now().Add(time.Duration(c.skew.Load()))
		if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", c.region, signAt); err != nil {
			cancel()
			return nil, fmt.Errorf("sign: %w", err)
		}
	}
	resp, err := c.subscribeHTTP.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		buf, rerr := readBody(resp)
		if rerr != nil {
			return nil, fmt.Errorf("read the answer (HTTP %d): %w", resp.StatusCode, rerr)
		}
		err := errorFrom(resp, buf)
		c.learnSkew(resp, err)
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/vnd.amazon.eventstream") {
		cancel()
		resp.Body.Close()
		return nil, &protocolError{fmt.Errorf("SubscribeToShard answered with %q, not an event stream", ct)}
	}
	s := &ownSubscription{body: resp.Body, cancel: cancel, r: messageReader{r: resp.Body}, ctx: ctx, budget: c.budget}
	s.r.reserve = s.reserve
	// The initial-response event comes first (an empty one: the call's
	// output has no fields). kinesis-mock sends none: its first event is
	// then the first of the records, kept for Next.
	m, err := s.r.next()
	switch {
	case err != nil:
	case m.messageType == "event" && m.eventType == "initial-response":
	case m.messageType == "event" && m.eventType == "SubscribeToShardEvent":
		s.first, err = s.decode(m)
	default:
		if err = s.exception(m); err == nil {
			err = fmt.Errorf("SubscribeToShard: %q %q first, not the initial-response event", m.messageType, m.eventType)
		}
	}
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// endpointFor is the URL of a data call on consumer's stream: the client's
// endpoint when one is set, else the one AWS's rules give (the consumer's
// account's data endpoint).
func (c *Client) endpointFor(consumer *string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.dataURLs[*consumer]; ok {
		return u, nil
	}
	p := c.endpointParams
	p.ConsumerARN = consumer
	p.OperationType = aws.String("data")
	ep, err := c.resolver.ResolveEndpoint(context.Background(), p)
	if err != nil {
		return "", fmt.Errorf("resolve the Kinesis endpoint for %s: %w", *consumer, err)
	}
	u := ep.URI
	if u.Path == "" {
		u.Path = "/"
	}
	if c.dataURLs == nil {
		c.dataURLs = map[string]string{}
	}
	c.dataURLs[*consumer] = u.String()
	return u.String(), nil
}

// ownSubscription reads one SubscribeToShard answer.
type ownSubscription struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	r      messageReader
	once   sync.Once
	first  *types.SubscribeToShardEvent // read before the first Next
	ctx    context.Context              // the subscription's
	budget *Budget                      // nil: no bound
	mu     sync.Mutex                   // guards held and closed against Close
	held   int64                        // bytes taken for the events not yet handed on
	closed bool
}

func (s *ownSubscription) Next() (*types.SubscribeToShardEvent, error) {
	// The last event was handed on: its bytes go back to the budget
	// (under mu: Close may run at once from another goroutine).
	s.mu.Lock()
	s.budget.give(s.held)
	s.held = 0
	s.mu.Unlock()
	if ev := s.first; ev != nil {
		s.first = nil
		return ev, nil
	}
	for {
		m, err := s.r.next()
		if err != nil {
			return nil, err // io.EOF between messages: the planned end
		}
		if m.messageType != "event" {
			if err := s.exception(m); err != nil {
				return nil, err
			}
			continue
		}
		if m.eventType != "SubscribeToShardEvent" {
			continue // initial-response again, or an event type not known
		}
		return s.decode(m)
	}
}

// decode decodes an event's payload in its content type: CBOR in place
// (the records share the payload, whose buffer is then theirs: the next
// message gets a new one), JSON into a buffer of the records' own.
func (s *ownSubscription) decode(m message) (*types.SubscribeToShardEvent, error) {
	var ev *types.SubscribeToShardEvent
	var err error
	if strings.HasPrefix(m.contentType, CBOR) {
		ev, err = decodeEventCBOR(m.payload)
		s.r.buf = nil
	} else {
		ev, err = decodeEventJSON(m.payload)
		if cap(s.r.buf) > keepBuffer {
			s.r.buf = nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("decode a SubscribeToShardEvent (%d bytes of %s): %w", len(m.payload), m.contentType, err)
	}
	return ev, nil
}

// exception is the error an exception or error message carries, as the
// SDK's types; nil for an event.
func (s *ownSubscription) exception(m message) error {
	switch m.messageType {
	case "exception":
		code := m.exceptionType
		var msg string
		if strings.HasPrefix(m.contentType, CBOR) {
			_, msg = decodeError(m.payload)
		} else {
			_, msg = decodeJSONError(m.payload)
		}
		if msg == "" {
			msg = string(m.payload)
		}
		return apiErrorOf(code, msg)
	case "error":
		return &smithy.GenericAPIError{Code: m.errorCode, Message: m.errorMessage}
	case "event":
		return nil
	}
	return fmt.Errorf("event stream: a message of type %q", m.messageType)
}

func (s *ownSubscription) Close() error {
	s.once.Do(func() {
		s.cancel()
		_ = s.body.Close()
		s.mu.Lock()
		s.budget.give(s.held)
		s.held, s.closed = 0, true
		s.mu.Unlock()
	})
	return nil
}

// reserve takes a message's bytes from the budget before it is read.
func (s *ownSubscription) reserve(total int) error {
	n, err := s.budget.take(s.ctx, int64(total))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed { // closed while waiting: nothing may stay taken
		s.budget.give(n)
		return errors.New("subscription closed")
	}
	s.held += n
	return err
}

// encodeSubscribeCBOR is SubscribeToShard's request in CBOR (a timestamp
// as Kinesis's CBOR has them: tag 1, epoch milliseconds).
func encodeSubscribeCBOR(in *kinesis.SubscribeToShardInput) []byte {
	b := make([]byte, 0, 256)
	b = appendHead(b, majMap, 3)
	b = appendText(appendText(b, "ConsumerARN"), aws.ToString(in.ConsumerARN))
	b = appendText(appendText(b, "ShardId"), aws.ToString(in.ShardId))
	b = appendText(b, "StartingPosition")
	p := in.StartingPosition
	n := uint64(1)
	if p.SequenceNumber != nil {
		n++
	}
	if p.Timestamp != nil {
		n++
	}
	b = appendHead(b, majMap, n)
	b = appendText(appendText(b, "Type"), string(p.Type))
	if p.SequenceNumber != nil {
		b = appendText(appendText(b, "SequenceNumber"), *p.SequenceNumber)
	}
	if p.Timestamp != nil {
		b = appendHead(appendText(b, "Timestamp"), majTag, 1)
		if ms := p.Timestamp.UnixMilli(); ms >= 0 {
			b = appendHead(b, majUint, uint64(ms))
		} else {
			b = appendHead(b, majNegint, uint64(-1-ms))
		}
	}
	return b
}

// encodeSubscribeJSON is SubscribeToShard's request in JSON.
func encodeSubscribeJSON(in *kinesis.SubscribeToShardInput) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"ConsumerARN":`...)
	b = appendJSONString(b, aws.ToString(in.ConsumerARN))
	b = append(b, `,"ShardId":`...)
	b = appendJSONString(b, aws.ToString(in.ShardId))
	b = append(b, `,"StartingPosition":{"Type":`...)
	b = appendJSONString(b, string(in.StartingPosition.Type))
	if in.StartingPosition.SequenceNumber != nil {
		b = append(b, `,"SequenceNumber":`...)
		b = appendJSONString(b, *in.StartingPosition.SequenceNumber)
	}
	if t := in.StartingPosition.Timestamp; t != nil {
		b = append(b, `,"Timestamp":`...)
		b = strconv.AppendFloat(b, float64(t.UnixMilli())/1000, 'f', -1, 64)
	}
	return append(b, "}}"...)
}
