package fakekinesis

import (
	"net/http"
	"sync"
	"time"

	"github.com/aws/smithy-go/eventstream"
)

// SubscribeToShard, as Kinesis answers it (and as aws-sdk-go-v2's awsJson
// 1.1 protocol reads it): HTTP 200, Content-Type
// application/vnd.amazon.eventstream, then event-stream messages (binary
// frames: prelude, headers, payload, CRCs):
//
//   - first :message-type event, :event-type initial-response, payload {}
//     (the operation's output, which has no members);
//   - then :event-type SubscribeToShardEvent, payload {"Records": [...],
//     "ContinuationSequenceNumber": ..., "MillisBehindLatest": ...}, and at
//     the end of a closed shard "ChildShards": [...] with a null
//     ContinuationSequenceNumber, after which the stream ends;
//   - errors inside the stream are :message-type exception with an
//     :exception-type (ResourceInUseException when another subscription
//     takes over) and payload {"message": ...}.
//
// Payloads are JSON (:content-type application/json, records as in
// GetRecords: Data base64, timestamps epoch seconds) for a JSON request;
// for a CBOR request they are CBOR, as the fake's GetRecords answers
// (:content-type application/x-amz-cbor-1.1).
const (
	contentEventStream = "application/vnd.amazon.eventstream"
	// maxEvent caps the records of one event (as encoded): Kinesis sends
	// at most about 1 MB a second per shard and consumer; HTTP flow
	// control paces a subscriber that reads slower.
	maxEvent = 1 << 20
	// http1Pause: see subscribe.
	http1Pause = 5 * time.Millisecond
)

// Defaults, as Kinesis has them.
const (
	DefaultSubscriptionLength = 5 * time.Minute
	DefaultSubscribeWindow    = 5 * time.Second
	DefaultHeartbeat          = 5 * time.Second
)

// subscriptions holds, per consumer and shard, the last successful
// SubscribeToShard and the subscription it opened, for the 5-second rule.
type subscriptions struct {
	mu     sync.Mutex
	leases map[leaseKey]*lease
}

type leaseKey struct{ consumer, shard string }

type lease struct {
	at  time.Time     // of the last successful SubscribeToShard
	sub *subscription // still open, or nil
}

// subscription is one open SubscribeToShard stream; done is closed when
// it must end early, why saying why.
type subscription struct {
	done chan struct{}
	why  *apiError
	once sync.Once
}

func (sub *subscription) end(why *apiError) {
	sub.once.Do(func() {
		sub.why = why
		close(sub.done)
	})
}

// acquire opens a subscription for key unless one succeeded less than
// window ago (window < 0: never refused); an older one still open is
// ended with ResourceInUseException.
func (ss *subscriptions) acquire(key leaseKey, now time.Time, window time.Duration) (*subscription, *apiError) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.leases == nil {
		ss.leases = map[leaseKey]*lease{}
	}
	l := ss.leases[key]
	if l == nil {
		l = &lease{}
		ss.leases[key] = l
	} else if window >= 0 && now.Sub(l.at) < window {
		return nil, errorf("ResourceInUseException", "Another active subscription exists for this consumer: %s, shard %s (subscribed %v ago).", key.consumer, key.shard, now.Sub(l.at).Round(time.Millisecond))
	}
	if l.sub != nil {
		l.sub.end(errorf("ResourceInUseException", "Another subscription for consumer %s, shard %s took this one over.", key.consumer, key.shard))
	}
	sub := &subscription{done: make(chan struct{})}
	l.at, l.sub = now, sub
	return sub, nil
}

// release forgets sub once it has ended (its lease's time stays).
func (ss *subscriptions) release(key leaseKey, sub *subscription) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if l := ss.leases[key]; l != nil && l.sub == sub {
		l.sub = nil
	}
}

// endConsumer ends the consumer's subscriptions and forgets its leases.
func (ss *subscriptions) endConsumer(arn string, why *apiError) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, l := range ss.leases {
		if k.consumer == arn {
			if l.sub != nil {
				l.sub.end(why)
			}
			delete(ss.leases, k)
		}
	}
}

// orDefault is d if it is positive, else def.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// startingPosition is SubscribeToShard's StartingPosition.
type startingPosition struct {
	Type           string `json:"Type,omitempty"`
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	Timestamp      any    `json:"Timestamp,omitempty"`
}

// subscribe answers SubscribeToShard: errors before the stream opens are
// ordinary 400 answers; then it pushes events until the subscription's
// length is up, the shard has ended, another subscription takes over, the
// consumer or stream goes, or the client leaves.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, req *request, isCBOR bool) {
	ctx := r.Context()
	sh, pos, aerr := s.subscribeStart(req)
	var sub *subscription
	key := leaseKey{req.ConsumerARN, req.ShardID}
	if aerr == nil {
		window := s.SubscribeWindow
		if window == 0 {
			window = DefaultSubscribeWindow
		}
		sub, aerr = s.subs.acquire(key, s.now(), window)
	}
	if aerr != nil {
		s.writeError(w, isCBOR, aerr)
		return
	}
	defer s.subs.release(key, sub)

	if r.ProtoMajor < 2 {
		// Over HTTP/1.1 a Go client may still be finishing its request
		// when the answer's header comes: net/http then reads the request
		// body once more, and aws-sdk-go-v2, having closed that body as
		// soon as Do returned, answers io.EOF from WriteTo, which the
		// transport takes for a write error: it closes the connection and
		// the stream dies ("use of closed network connection"). A pause
		// lets the client finish first. Kinesis serves SubscribeToShard
		// over HTTP/2 only, where the body is written otherwise.
		time.Sleep(http1Pause)
	}
	w.Header().Set("Content-Type", contentEventStream)
	w.WriteHeader(http.StatusOK)
	es := eventWriter{w: w, rc: http.NewResponseController(w), enc: eventstream.NewEncoder(), isCBOR: isCBOR}
	if es.send("initial-response", encode(isCBOR, map[string]any{})) != nil {
		return
	}
	length := time.NewTimer(orDefault(s.SubscriptionLength, DefaultSubscriptionLength))
	defer length.Stop()
	beat := orDefault(s.Heartbeat, DefaultHeartbeat)
	heartbeat := time.NewTimer(beat)
	defer heartbeat.Stop()
	var buf []byte
	for {
		v, wake := sh.watch()
		if n := len(v.recs); pos < n || v.ended {
			end, size := pos, 0
			for end < n {
				sz := len(v.json[end])
				if isCBOR {
					sz = len(v.cbor[end])
				}
				if end > pos && size+sz > maxEvent {
					break
				}
				size += sz
				end++
			}
			next, children := continuation(sh, v, end), []childShard(nil)
			if v.ended && end == n {
				next, children = "", v.children
			}
			buf = v.appendAnswer(buf[:0], isCBOR, pos, end, "ContinuationSequenceNumber", next, children)
			if es.send("SubscribeToShardEvent", buf) != nil || children != nil {
				return
			}
			pos = end
			heartbeat.Reset(beat)
			// More may be there already: look again, once the select
			// below has seen whether the subscription must end.
			wake = closedChan
		}
		select {
		case <-wake:
		case <-heartbeat.C:
			buf = v.appendAnswer(buf[:0], isCBOR, pos, pos, "ContinuationSequenceNumber", continuation(sh, v, pos), nil)
			if es.send("SubscribeToShardEvent", buf) != nil {
				return
			}
			heartbeat.Reset(beat)
		case <-length.C:
			return
		case <-sub.done:
			es.exception(sub.why)
			return
		case <-ctx.Done():
			return
		}
	}
}

// closedChan is always ready.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// subscribeStart checks a SubscribeToShard request: its consumer must be
// ACTIVE and its shard exist; pos is where its StartingPosition is.
func (s *Server) subscribeStart(req *request) (*Shard, int, *apiError) {
	if req.ConsumerARN == "" || req.ShardID == "" || req.StartingPosition == nil {
		return nil, 0, errorf("InvalidArgumentException", "ConsumerARN, ShardId and StartingPosition are required")
	}
	c, aerr := s.consumerByARN(req.ConsumerARN)
	if aerr != nil {
		return nil, 0, aerr
	}
	if st := c.status(s.now()); st != "ACTIVE" {
		return nil, 0, errorf("ResourceInUseException", "Consumer %s is %s, not ACTIVE.", c.arn, st)
	}
	sh, _, ok := c.stream.shard(req.ShardID)
	if !ok {
		return nil, 0, noShard(c.stream, req.ShardID)
	}
	p := req.StartingPosition
	pos, aerr := position(sh.view().recs, p.Type, p.SequenceNumber, p.Timestamp)
	return sh, pos, aerr
}

// continuation is the ContinuationSequenceNumber after the records below
// end: the last one's sequence number (the shard's starting one if none),
// for a new subscription AFTER_SEQUENCE_NUMBER it.
func continuation(sh *Shard, v view, end int) string {
	if end > 0 {
		return v.recs[end-1].SequenceNumber
	}
	return sh.StartingSequence
}

// eventWriter writes event-stream messages to a response, each flushed at
// once.
type eventWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	enc    *eventstream.Encoder
	isCBOR bool
}

func (e *eventWriter) contentType() eventstream.StringValue {
	if e.isCBOR {
		return contentCBOR
	}
	return "application/json"
}

func (e *eventWriter) write(msg eventstream.Message) error {
	if err := e.enc.Encode(e.w, msg); err != nil {
		return err
	}
	return e.rc.Flush()
}

// send writes an event of that :event-type.
func (e *eventWriter) send(eventType string, payload []byte) error {
	return e.write(eventstream.Message{
		Headers: eventstream.Headers{
			{Name: eventstream.EventTypeHeader, Value: eventstream.StringValue(eventType)},
			{Name: eventstream.ContentTypeHeader, Value: e.contentType()},
			{Name: eventstream.MessageTypeHeader, Value: eventstream.StringValue(eventstream.EventMessageType)},
		},
		Payload: payload,
	})
}

// exception writes an exception message.
func (e *eventWriter) exception(why *apiError) error {
	return e.write(eventstream.Message{
		Headers: eventstream.Headers{
			{Name: eventstream.ExceptionTypeHeader, Value: eventstream.StringValue(why.Type)},
			{Name: eventstream.ContentTypeHeader, Value: e.contentType()},
			{Name: eventstream.MessageTypeHeader, Value: eventstream.StringValue(eventstream.ExceptionMessageType)},
		},
		Payload: encode(e.isCBOR, map[string]any{"message": why.Message}),
	})
}
