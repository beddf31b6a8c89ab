package shardline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// The stand-ins of what TestRunHonoursEverySetting cannot see on
// kinesis-mock and DynamoDB Local themselves: which credentials and region
// signed a call (neither checks signatures), a throttled read, STS and a
// Lambda function. Each listens on 127.0.0.1 (httptest) and closes at the
// test's end.

// signedCall is one request a recordingProxy passed on or answered.
type signedCall struct {
	op       string // the operation: GetRecords, PutItem, PutMetricData, ...
	key      string // the access key id of its signature
	region   string // the region of its signature's scope
	at, done time.Time
	status   int
}

// recordingProxy stands in front of a stand-in and records each request's
// operation and signature scope; it answers the first throttle GetRecords
// calls itself with ProvisionedThroughputExceededException, as Kinesis
// does when a shard's reads are over its limit.
type recordingProxy struct {
	URL      string
	throttle int

	mu        sync.Mutex
	target    *url.URL
	calls     []signedCall
	throttled int
}

func (p *recordingProxy) setTarget(t *testing.T, target string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = u
}

// credentialScope reads "Credential=KEY/date/region/service/aws4_request"
// from a SigV4 Authorization header.
var credentialScope = regexp.MustCompile(`Credential=([^/]+)/[^/]+/([^/]+)/`)

// operationName matches an operation named in a query-protocol body
// (Action=PutMetricData) or an RPC path (/operation/PutMetricData).
var operationName = regexp.MustCompile(`(?:Action=|/operation/)([A-Za-z]+)`)

// newRecordingProxy passes requests on to target (given later with
// setTarget when "").
func newRecordingProxy(t *testing.T, target string, throttle int) *recordingProxy {
	t.Helper()
	p := &recordingProxy{throttle: throttle}
	if target != "" {
		p.setTarget(t, target)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		p.mu.Lock()
		defer p.mu.Unlock()
		pr.SetURL(p.target)
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		c := signedCall{at: time.Now()}
		if m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
			c.key, c.region = m[1], m[2]
		}
		if target := r.Header.Get("X-Amz-Target"); target != "" {
			c.op = target[strings.LastIndexByte(target, '.')+1:]
		} else if m := operationName.FindSubmatch(append([]byte(r.URL.Path+" "), body...)); m != nil {
			c.op = string(m[1])
		}
		p.mu.Lock()
		throttle := c.op == "GetRecords" && p.throttled < p.throttle
		if throttle {
			p.throttled++
		}
		p.mu.Unlock()
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if throttle {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-ErrorType", "ProvisionedThroughputExceededException")
			rec.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(rec, `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard (test proxy)"}`)
		} else {
			rp.ServeHTTP(rec, r)
		}
		c.done, c.status = time.Now(), rec.status
		p.mu.Lock()
		p.calls = append(p.calls, c)
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// seen returns the calls answered so far.
func (p *recordingProxy) seen() []signedCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]signedCall(nil), p.calls...)
}

// ops returns the calls of operation op.
func (p *recordingProxy) ops(op string) []signedCall {
	var out []signedCall
	for _, c := range p.seen() {
		if c.op == op {
			out = append(out, c)
		}
	}
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// fakeSTS answers AssumeRole (the query protocol's XML) with credentials of
// its own for each role: the access key id is fakeKey(role), so that a
// recordingProxy tells which role signed a call.
type fakeSTS struct {
	URL string

	mu      sync.Mutex
	assumed []assumeCall
}

type assumeCall struct{ role, session string }

// fakeKey is the access key id fakeSTS gives for a role ARN.
func fakeKey(role string) string {
	name := strings.ToUpper(role[strings.LastIndexByte(role, '/')+1:])
	return "ASIAFAKE" + notKeyChar.ReplaceAllString(name, "")
}

var notKeyChar = regexp.MustCompile(`[^A-Z0-9]`)

func newFakeSTS(t *testing.T) *fakeSTS {
	t.Helper()
	f := &fakeSTS{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "AssumeRole" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>not faked: %s</Message></Error></ErrorResponse>`, r.Form.Get("Action"))
			return
		}
		role, session := r.Form.Get("RoleArn"), r.Form.Get("RoleSessionName")
		f.mu.Lock()
		f.assumed = append(f.assumed, assumeCall{role, session})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleResult><Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>fake-secret</SecretAccessKey>
<SessionToken>fake-token</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>%s/%s</Arn><AssumedRoleId>AROAFAKE:%s</AssumedRoleId></AssumedRoleUser></AssumeRoleResult>
<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			fakeKey(role), time.Now().Add(time.Hour).UTC().Format(time.RFC3339), role, session, session)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// sessions returns the session names each role was assumed with.
func (f *fakeSTS) sessions(role string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.assumed {
		if a.role == role {
			out = append(out, a.session)
		}
	}
	return out
}

// fakeLambda answers Lambda Invoke with success and records each
// invocation's function name and event.
type fakeLambda struct {
	URL string

	mu    sync.Mutex
	calls []invocation
}

type invocation struct {
	function string
	event    events.KinesisEvent
}

var invokePath = regexp.MustCompile(`^/2015-03-31/functions/([^/]+)/invocations$`)

func newFakeLambda(t *testing.T) *fakeLambda {
	t.Helper()
	f := &fakeLambda{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := invokePath.FindStringSubmatch(r.URL.Path)
		var ev events.KinesisEvent
		if err := json.NewDecoder(r.Body).Decode(&ev); m == nil || err != nil {
			w.Header().Set("X-Amzn-ErrorType", "InvalidRequestContentException")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"Type":"User","message":"not an invocation of a function with a Kinesis event: %s %v"}`, r.URL.Path, err)
			return
		}
		name, _ := url.PathUnescape(m[1])
		f.mu.Lock()
		f.calls = append(f.calls, invocation{name, ev})
		f.mu.Unlock()
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeLambda) invocations() []invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]invocation(nil), f.calls...)
}
