package fetch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/stream"
)

// reply is what a test endpoint sends: a status, a content type, a body
// and headers.
type reply struct {
	status int
	ctype  string
	body   string
	header []string
}

var (
	jsonRecords = reply{200, JSON, `{"Records":[{"SequenceNumber":"1","Data":"eA==","PartitionKey":"k"}],"NextShardIterator":"n","MillisBehindLatest":0}`, nil}
	cborRecords = reply{200, CBOR, string(kinesisAnswer()), nil} // two records
	html500     = reply{500, "text/html; charset=utf-8", "<!doctype html><title>500 Internal Server Error</title>", nil}
)

func jsonError(status int, code string) reply {
	return reply{status, JSON, `{"__type":"` + code + `","message":"m"}`, nil}
}

func cborError(status int, code string) reply {
	return reply{status, CBOR, string((&enc{}).head(majMap, 2).text("__type").text(code).text("message").text("m").b), nil}
}

// endpoint is a Kinesis endpoint for the tests: it answers GetRecords in
// CBOR with cbor(n) (n: the CBOR requests so far, from 1) and in JSON
// with json(n), and counts requests and connections.
type endpoint struct {
	*httptest.Server
	cbor, json func(n int64) reply
	cborN      atomic.Int64
	jsonN      atomic.Int64
	conns      atomic.Int64
}

func newEndpoint(t *testing.T, cbor, json func(n int64) reply) *endpoint {
	t.Helper()
	e := &endpoint{cbor: cbor, json: json}
	e.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a reply
		switch ct := r.Header.Get("Content-Type"); ct {
		case CBOR:
			a = e.cbor(e.cborN.Add(1))
		case JSON:
			a = e.json(e.jsonN.Add(1))
		default:
			t.Errorf("a request of type %q", ct)
		}
		if r.Header.Get("X-Amz-Target") != "Kinesis_20131202.GetRecords" || !strings.Contains(r.Header.Get("Authorization"), "Credential=AKID/") {
			t.Errorf("request headers %v", r.Header)
		}
		for i := 0; i+1 < len(a.header); i += 2 {
			w.Header().Set(a.header[i], a.header[i+1])
		}
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	e.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			e.conns.Add(1)
		}
	}
	e.Start()
	t.Cleanup(e.Close)
	return e
}

func always(a reply) func(int64) reply { return func(int64) reply { return a } }

// client returns a Client for the endpoint and what it logs.
func (e *endpoint) client(cfg ClientConfig) (*Client, *bytes.Buffer) {
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	sdk := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(e.URL),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
		}))})
	return NewClient(sdk, cfg), &logs
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

const switchLine = "reading it in JSON from now on"

// An endpoint that refuses GetRecords in CBOR but answers it in JSON is
// read in JSON from then on, with one INFO line; one that refuses both, or
// refuses CBOR once, is not (issue #17, point 7).
func TestClientFindsWhetherCBORIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cbor, json func(int64) reply
		toJSON     bool
		records    int              // from the first call
		err        func(error) bool // the first call's error, if any
		cborN      int64            // CBOR requests of the first call
	}{
		{name: "HTTP 500 to CBOR, as moto_server", cbor: always(html500), json: always(jsonRecords), toJSON: true, records: 1, cborN: 2},
		{name: "InvalidArgumentException to CBOR", cbor: always(jsonError(400, "InvalidArgumentException")), json: always(jsonRecords), toJSON: true, records: 1, cborN: 2},
		{name: "SerializationException to CBOR", cbor: always(reply{400, "", "", []string{"X-Amzn-ErrorType", "SerializationException"}}), json: always(jsonRecords), toJSON: true, records: 1, cborN: 2},
		{name: "HTTP 415 to CBOR", cbor: always(reply{415, "text/plain", "unsupported", nil}), json: always(jsonRecords), toJSON: true, records: 1, cborN: 2},
		{name: "a JSON answer to CBOR", cbor: always(jsonRecords), json: always(jsonRecords), toJSON: true, records: 1, cborN: 2},
		{name: "CBOR refused, JSON's iterator expired", cbor: always(html500), json: always(jsonError(400, "ExpiredIteratorException")), toJSON: true, cborN: 2,
			err: func(err error) bool { var e *types.ExpiredIteratorException; return errors.As(err, &e) }},
		{name: "CBOR 500, JSON's argument refused", cbor: always(html500), json: always(jsonError(400, "InvalidArgumentException")), toJSON: true, cborN: 2,
			err: func(err error) bool { var e *types.InvalidArgumentException; return errors.As(err, &e) }},

		{name: "a passing server error", cbor: func(n int64) reply {
			if n == 1 {
				return cborError(500, "InternalFailure")
			}
			return cborRecords
		}, json: always(jsonRecords), records: 2, cborN: 2},
		{name: "an outage: 500 to both", cbor: always(cborError(503, "ServiceUnavailable")), json: always(jsonError(503, "ServiceUnavailable")), cborN: 1,
			err: func(err error) bool {
				var re *awshttp.ResponseError
				return errors.As(err, &re) && re.HTTPStatusCode() == 503 && !IsFatal(err)
			}},
		{name: "an iterator both refuse", cbor: always(cborError(400, "InvalidArgumentException")), json: always(jsonError(400, "InvalidArgumentException")), cborN: 1,
			err: func(err error) bool { var e *types.InvalidArgumentException; return errors.As(err, &e) && IsFatal(err) }},
		{name: "JSON throttled", cbor: always(html500), json: always(jsonError(400, "ProvisionedThroughputExceededException")), cborN: 1,
			err: func(err error) bool { return strings.Contains(err.Error(), "HTTP500") }},
		{name: "JSON not answered in JSON", cbor: always(html500), json: always(html500), cborN: 1,
			err: func(err error) bool { return strings.Contains(err.Error(), "HTTP500") }},
		{name: "a CBOR answer that does not decode, in JSON neither", cbor: always(reply{200, CBOR, "\xa1", nil}), json: always(reply{200, CBOR, "\xa1", nil}), cborN: 1,
			err: func(err error) bool { return strings.Contains(err.Error(), "decode the CBOR answer") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEndpoint(t, tc.cbor, tc.json)
			c, logs := e.client(ClientConfig{})
			in := &kinesis.GetRecordsInput{ShardIterator: aws.String("it"), Limit: aws.Int32(10)}
			out, err := c.GetRecords(context.Background(), in)
			switch {
			case tc.err == nil && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != nil && (err == nil || !tc.err(err)):
				t.Fatalf("error %v (%T), not the one expected", err, err)
			case err == nil && len(out.Records) != tc.records:
				t.Fatalf("%d records, want %d", len(out.Records), tc.records)
			}
			if got := e.cborN.Load(); got != tc.cborN {
				t.Errorf("%d CBOR requests, want %d", got, tc.cborN)
			}
			want := CBOR
			if tc.toJSON {
				want = JSON
			}
			if got := c.Protocol(); got != want {
				t.Fatalf("protocol %s, want %s", got, want)
			}
			if got, want := strings.Count(logs.String(), switchLine), map[bool]int{true: 1, false: 0}[tc.toJSON]; got != want {
				t.Errorf("%d lines saying so, want %d:\n%s", got, want, logs)
			}
			if tc.toJSON {
				if !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), e.URL) {
					t.Errorf("the line is not INFO or does not name the endpoint: %s", logs)
				}
				// From then on, JSON alone.
				cborBefore, jsonBefore := e.cborN.Load(), e.jsonN.Load()
				e.json = always(jsonRecords)
				for range 3 {
					if _, err := c.GetRecords(context.Background(), in); err != nil {
						t.Fatal(err)
					}
				}
				if e.cborN.Load() != cborBefore || e.jsonN.Load() != jsonBefore+3 {
					t.Errorf("after the switch: %d CBOR and %d JSON requests, want 0 and 3", e.cborN.Load()-cborBefore, e.jsonN.Load()-jsonBefore)
				}
			}
		})
	}
}

// Shards read at once through one client: one switch, one line, every
// read answered.
func TestClientSwitchesOnce(t *testing.T) {
	e := newEndpoint(t, always(html500), always(jsonRecords))
	c, logs := e.client(ClientConfig{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				out, err := c.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
				if err != nil || len(out.Records) != 1 {
					t.Errorf("GetRecords: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := strings.Count(logs.String(), switchLine); n != 1 {
		t.Errorf("%d lines saying so, want 1:\n%s", n, logs)
	}
	if c.Protocol() != JSON {
		t.Errorf("protocol %s", c.Protocol())
	}
}

// AWS_CBOR_DISABLE=true (ClientConfig.JSON): JSON from the first call,
// no CBOR request and no line.
func TestClientJSONFromTheStart(t *testing.T) {
	e := newEndpoint(t, always(cborRecords), always(jsonRecords))
	c, logs := e.client(ClientConfig{JSON: true})
	for range 3 {
		if _, err := c.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")}); err != nil {
			t.Fatal(err)
		}
	}
	if e.cborN.Load() != 0 || e.jsonN.Load() != 3 || logs.Len() != 0 {
		t.Errorf("%d CBOR and %d JSON requests, logs %q; want 0, 3 and none", e.cborN.Load(), e.jsonN.Load(), logs)
	}
}

// Every answer is read to its end, in either protocol and when it is an
// error, so one connection serves every call.
func TestClientKeepsItsConnection(t *testing.T) {
	expired := func(n int64) reply {
		if n%3 == 0 {
			return jsonError(400, "ExpiredIteratorException")
		}
		return jsonRecords
	}
	for _, tc := range []struct {
		name string
		e    func(*testing.T) *endpoint
		cfg  ClientConfig
	}{
		{"CBOR", func(t *testing.T) *endpoint { return newEndpoint(t, always(cborRecords), always(jsonRecords)) }, ClientConfig{}},
		{"JSON", func(t *testing.T) *endpoint { return newEndpoint(t, always(cborRecords), expired) }, ClientConfig{JSON: true}},
		{"JSON after CBOR was refused", func(t *testing.T) *endpoint { return newEndpoint(t, always(html500), expired) }, ClientConfig{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e(t)
			c, _ := e.client(tc.cfg)
			for range 30 {
				c.GetRecords(context.Background(), &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
			}
			if n := e.conns.Load(); n != 1 {
				t.Errorf("%d connections for 30 calls, want 1", n)
			}
		})
	}
}

// A Reader over an endpoint that answers InvalidArgumentException to
// every CBOR GetRecords (and JSON to JSON) reads the shard to its end,
// with no warning: the refusal is the protocol's, not the iterator's (it
// looped on "shard iterator refused; getting a new one").
func TestReaderOnAnEndpointRefusingCBOR(t *testing.T) {
	iterators := atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Amz-Target") {
		case "Kinesis_20131202.GetShardIterator":
			iterators.Add(1)
			w.Header().Set("Content-Type", JSON)
			w.Write([]byte(`{"ShardIterator":"it-1"}`))
		case "Kinesis_20131202.GetRecords":
			if r.Header.Get("Content-Type") == CBOR {
				w.Header().Set("Content-Type", JSON)
				w.WriteHeader(400)
				w.Write([]byte(`{"__type":"InvalidArgumentException","message":"cannot read the request"}`))
				return
			}
			w.Header().Set("Content-Type", JSON)
			w.Write([]byte(`{"Records":[{"SequenceNumber":"1","Data":"eA==","PartitionKey":"k"},{"SequenceNumber":"2","Data":"eQ==","PartitionKey":"k"}],"MillisBehindLatest":0}`))
		default:
			w.WriteHeader(400)
		}
	}))
	defer srv.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	sdk := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
		}))})
	r, err := New(NewClient(sdk, ClientConfig{Logger: log}), Config{StreamName: "s", ShardID: "shardId-000000000000",
		Start: stream.Position{Seq: stream.TrimHorizon}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := r.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v\n%s", err, logs.String())
	}
	if len(b.Records) != 2 || !b.End || string(b.Records[1].Data) != "y" {
		t.Fatalf("batch of %d records, end %v", len(b.Records), b.End)
	}
	if strings.Contains(logs.String(), "level=WARN") || iterators.Load() != 1 {
		t.Errorf("%d iterators asked for, logs:\n%s", iterators.Load(), logs.String())
	}
	if n := strings.Count(logs.String(), switchLine); n != 1 {
		t.Errorf("%d lines saying it reads JSON, want 1:\n%s", n, logs.String())
	}
}
