package standintest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// FanOut is a test-only proxy in front of kinesis-mock (or any Kinesis)
// that makes its SubscribeToShard what the Go SDK and AWS expect, and lets
// a test shape subscriptions. It never ships in a product binary.
//
// kinesis-mock 0.6.2 sends no initial-response event, without which the Go
// SDK fails ("deserialize initial response: expected initial-response");
// the proxy sends an empty one first. Every other request and byte passes
// through unchanged, streamed as it comes. The controls, safe to change
// while subscriptions run:
type FanOut struct {
	URL string // the proxy's endpoint, http://127.0.0.1:port

	// EndAfter, when above 0 (nanoseconds), ends each subscription
	// cleanly, at an event's boundary, that long after it began: AWS's
	// 5-minute end, shortened.
	EndAfter atomic.Int64
	// Stalled holds every event back while true: a subscription that goes
	// quiet.
	Stalled atomic.Bool
	// NoContinuation, while true, takes ContinuationSequenceNumber out of
	// the events that carry no child shards: a malformed end of shard.
	NoContinuation atomic.Bool
	// Subscriptions counts the SubscribeToShard calls answered 200.
	Subscriptions atomic.Int64
	// TakenOver counts subscriptions ended because a new one came for
	// their consumer and shard.
	TakenOver atomic.Int64

	mu     sync.Mutex
	active map[string]*relayed // by consumer ARN and shard
}

// relayed is one subscription the proxy relays.
type relayed struct {
	upstream io.Closer
	down     *io.PipeWriter
}

// keyHeader carries a subscription's consumer and shard from the proxy's
// Director to its ModifyResponse.
const keyHeader = "X-Shardline-Fanout-Proxy-Key"

// FanOutProxy starts a FanOut in front of endpoint, stopped at t's cleanup.
func FanOutProxy(t testing.TB, endpoint string) *FanOut {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("FanOutProxy: endpoint %q: %v", endpoint, err)
	}
	f := &FanOut{active: map[string]*relayed{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // events pass at once
	direct := rp.Director
	rp.Director = func(req *http.Request) {
		direct(req)
		if !strings.HasSuffix(req.Header.Get("X-Amz-Target"), ".SubscribeToShard") || req.Body == nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		var in struct{ ConsumerARN, ShardId string }
		if err == nil && json.Unmarshal(body, &in) == nil {
			key := in.ConsumerARN + " " + in.ShardId
			f.takeOver(key)
			req.Header.Set(keyHeader, key) // read and taken off in ModifyResponse
		}
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode == http.StatusOK && strings.HasSuffix(resp.Request.Header.Get("X-Amz-Target"), ".SubscribeToShard") {
			f.Subscriptions.Add(1)
			pr, pw := io.Pipe()
			key := resp.Request.Header.Get(keyHeader)
			f.mu.Lock()
			upstream := resp.Body
			f.active[key] = &relayed{upstream: upstream, down: pw}
			f.mu.Unlock()
			go func() {
				f.relay(upstream, pw)
				f.mu.Lock()
				if r := f.active[key]; r != nil && r.down == pw {
					delete(f.active, key)
				}
				f.mu.Unlock()
			}()
			resp.Body = pr
			resp.Header.Del("Content-Length")
		}
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		f.Stalled.Store(false) // lets held relays see their client gone
		_ = srv.Close()
	})
	f.URL = "http://" + ln.Addr().String()
	return f
}

// takeOver ends the subscription of key the proxy relays, if any, as AWS
// does when a new SubscribeToShard comes for the same consumer and shard:
// kinesis-mock would refuse the new one for as long as the old one's
// connection stays open (a reader that is stopped, say), where AWS lets a
// call 5 s after the last take over. The old reader's stream ends with an
// error; nothing here waits on it.
func (f *FanOut) takeOver(key string) {
	f.mu.Lock()
	old := f.active[key]
	delete(f.active, key)
	f.mu.Unlock()
	if old != nil {
		f.TakenOver.Add(1)
		_ = old.upstream.Close()
		old.down.CloseWithError(errTakenOver)
	}
}

// errTakenOver ends a subscription another one took over.
var errTakenOver = errors.New("fan-out proxy: the subscription was taken over by a new one for its consumer and shard")

// relay writes the initial-response event, then the events of body one by
// one as the controls say, to w.
func (f *FanOut) relay(body io.ReadCloser, w *io.PipeWriter) {
	defer body.Close()
	enc := eventstream.NewEncoder()
	if err := enc.Encode(w, eventstream.Message{
		Headers: eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("event")},
			{Name: ":event-type", Value: eventstream.StringValue("initial-response")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		},
		Payload: []byte("{}"),
	}); err != nil {
		w.CloseWithError(err)
		return
	}
	began := time.Now()
	dec := eventstream.NewDecoder()
	in := bufio.NewReader(body)
	for {
		msg, err := dec.Decode(in, nil)
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			w.CloseWithError(err)
			return
		}
		for f.Stalled.Load() {
			time.Sleep(10 * time.Millisecond) // a stand-in's pace, not a test's synchronisation
		}
		if d := f.EndAfter.Load(); d > 0 && time.Since(began) > time.Duration(d) {
			_ = w.Close() // a clean end between events
			return
		}
		if f.NoContinuation.Load() {
			msg.Payload = dropContinuation(msg.Payload)
		}
		if err := enc.Encode(w, msg); err != nil {
			return // the client went away
		}
	}
}

// dropContinuation takes ContinuationSequenceNumber out of an event's JSON
// payload that has no child shards.
func dropContinuation(payload []byte) []byte {
	var ev map[string]json.RawMessage
	if json.Unmarshal(payload, &ev) != nil {
		return payload
	}
	if c, ok := ev["ChildShards"]; ok && len(bytes.TrimSpace(c)) > 2 && string(bytes.TrimSpace(c)) != "null" {
		return payload
	}
	delete(ev, "ContinuationSequenceNumber")
	out, err := json.Marshal(ev)
	if err != nil {
		return payload
	}
	return out
}
