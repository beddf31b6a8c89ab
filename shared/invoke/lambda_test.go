package invoke_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// Tests here run testdata/kinesisfn on shared/lambdaemu (Lambda's process
// model, 413, 429, timeouts) or talk to a fake Invoke API on 127.0.0.1,
// through the Lambda client awsconf builds and a dispatcher.

var (
	buildDir  string
	buildOnce sync.Once
	fnPath    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// kinesisFn builds testdata/kinesisfn once.
func kinesisFn(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "invoke-test-")
		if buildErr == nil {
			fnPath, buildErr = lambdaemu.Build(context.Background(), buildDir, "./testdata/kinesisfn")
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return fnPath
}

// lambdaClient is the Lambda client as the poller builds it, for endpoint.
func lambdaClient(t *testing.T, endpoint string) *lambda.Client {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_SESSION_TOKEN", "")
	c, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1", LambdaEndpoint: endpoint, InvokeTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return c.Lambda
}

func startFunction(t *testing.T, fn lambdaemu.Function) *lambdaemu.Server {
	t.Helper()
	fn.Name, fn.Path = "kinesisfn", kinesisFn(t)
	s, err := lambdaemu.Start(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var src = stream.Source{StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s", Region: "us-east-1"}

// records returns n records whose data are the given values, in turn.
func records(n int, data ...[]byte) []stream.Record {
	out := make([]stream.Record, n)
	for i := range out {
		out[i] = stream.Record{ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprint(1000 + i),
			PartitionKey: fmt.Sprint("pk-", i), Data: data[i%len(data)], ApproximateArrivalTimestamp: time.UnixMilli(1545084650987)}
	}
	return out
}

func newDispatcher(t *testing.T, cfg dispatch.Config) *dispatch.Dispatcher {
	t.Helper()
	cfg.Source = src
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff, cfg.MaxRetryBackoff = time.Millisecond, 10*time.Millisecond
	}
	d, err := dispatch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deliver runs Deliver with a bound and returns the last position done
// and its error.
func deliver(t *testing.T, d *dispatch.Dispatcher, recs []stream.Record) (stream.Position, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last stream.Position
	err := d.Deliver(ctx, nil, recs, func(p stream.Position) { last = p })
	return last, err
}

// TestBatchesFitLambda: 100 records of 80 KB with the default batch size
// (8.5 MB of event) were refused by Lambda (413) on every retry; the
// dispatcher now sends batches that fit, each as full as it can be.
func TestBatchesFitLambda(t *testing.T) {
	emu := startFunction(t, lambdaemu.Function{Timeout: 10 * time.Second})
	recs := records(100, bytes.Repeat([]byte("k"), 80_000))
	d := newDispatcher(t, dispatch.Config{Handler: invoke.Handler(lambdaClient(t, emu.Endpoint), "kinesisfn"), MaxRetryAttempts: 0})
	last, err := deliver(t, d, recs)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if last != recs[99].Position() {
		t.Errorf("last done %v, want %v", last, recs[99].Position())
	}
	invs := emu.Invocations("kinesisfn")
	if len(invs) != 2 {
		t.Fatalf("%d invocations, want 2", len(invs))
	}
	sizer := invoke.NewSizer(src)
	size := func(k int) int { // the event of the first k records
		sum := 0
		for i := range k {
			sum += sizer.Record(&recs[i])
		}
		return invoke.EventSize(k, sum)
	}
	for i, inv := range invs {
		if inv.Status != lambdaemu.StatusSuccess || inv.RequestBytes > dispatch.DefaultMaxBatchBytes {
			t.Errorf("invocation %d: %s with %d bytes, want success within %d", i, inv.Status, inv.RequestBytes, dispatch.DefaultMaxBatchBytes)
		}
	}
	k := 1
	for size(k) < invs[0].RequestBytes {
		k++
	}
	if size(k) != invs[0].RequestBytes || size(k+1) <= dispatch.DefaultMaxBatchBytes {
		t.Errorf("the first event has %d bytes; %d records make %d, %d make %d: want the fullest batch within %d",
			invs[0].RequestBytes, k, size(k), k+1, size(k+1), dispatch.DefaultMaxBatchBytes)
	}
	if got := d.Stats(); got.Handled != 100 || got.Failures != 0 {
		t.Errorf("Stats = %+v, want 100 handled, no failure", got)
	}
}

// TestSplitWhenLambdaRefusesTheSize: when Lambda refuses a batch as too
// large (413), the dispatcher splits it and sends the halves, using up no
// retry attempt.
func TestSplitWhenLambdaRefusesTheSize(t *testing.T) {
	emu := startFunction(t, lambdaemu.Function{Timeout: 10 * time.Second})
	recs := records(100, bytes.Repeat([]byte("k"), 80_000))
	d := newDispatcher(t, dispatch.Config{Handler: invoke.Handler(lambdaClient(t, emu.Endpoint), "kinesisfn"),
		MaxRetryAttempts: 0, MaxBatchBytes: 64 << 20}) // above Lambda's limit
	last, err := deliver(t, d, recs)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if last != recs[99].Position() {
		t.Errorf("last done %v, want %v", last, recs[99].Position())
	}
	invs := emu.Invocations("kinesisfn") // the 413 never reached a sandbox
	if len(invs) != 2 || invs[0].Status != lambdaemu.StatusSuccess || invs[1].Status != lambdaemu.StatusSuccess {
		t.Errorf("invocations %+v, want the two halves, successful", invs)
	}
	if s := d.Stats(); s.Batches != 3 || s.Records != 200 || s.Handled != 100 || s.Failures != 0 || s.Retries != 0 || s.GivenUp != 0 {
		got, want := s, "3 batches, 200 records, 100 handled, no failure"
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

// TestThrottledByLambda: while the function's one allowed instance is
// busy, Lambda answers 429; the dispatcher retries with back-off and no
// attempt is used up (MaxRetryAttempts 0 would give up on any).
func TestThrottledByLambda(t *testing.T) {
	emu := startFunction(t, lambdaemu.Function{Timeout: 30 * time.Second, MaxConcurrency: 1})
	client := lambdaClient(t, emu.Endpoint)
	release := make(chan struct{})
	barrier := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(barrier.Close)
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseOnce)

	// Another poller's call holds the only instance.
	held := make(chan error, 1)
	go func() {
		_, err := invoke.Handler(client, "kinesisfn")(context.Background(),
			stream.Event(src, records(1, []byte("hold:"+barrier.URL))))
		held <- err
	}()
	testwait.Until(t, 30*time.Second, "the function to be busy", func() bool {
		invs := emu.Invocations("kinesisfn")
		return len(invs) == 1 && !invs[0].Start.IsZero()
	})

	logs := &testwait.Buffer{}
	recs := records(3, []byte("a"))
	d := newDispatcher(t, dispatch.Config{Handler: invoke.Handler(client, "kinesisfn"), MaxRetryAttempts: 0,
		BisectOnError: true, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	type result struct {
		err  error
		last stream.Position
	}
	res := make(chan result, 1)
	go func() {
		last, err := deliver(t, d, recs)
		res <- result{err, last}
	}()
	throttled := func() int {
		n := 0
		for _, inv := range emu.Invocations("kinesisfn") {
			if inv.Status == lambdaemu.StatusThrottled {
				n++
			}
		}
		return n
	}
	testwait.Until(t, 30*time.Second, "two throttled invocations", func() bool { return throttled() >= 2 })
	releaseOnce()
	r := <-res
	if r.err != nil {
		t.Fatalf("Deliver: %v", r.err)
	}
	if err := <-held; err != nil {
		t.Errorf("the holding call: %v", err)
	}
	if r.last != recs[2].Position() {
		t.Errorf("last done %v, want %v", r.last, recs[2].Position())
	}
	st := d.Stats()
	if st.Throttles < 2 || st.Throttles != int64(throttled()) || st.Failures != 0 || st.Handled != 3 || st.Batches != st.Throttles+1 {
		t.Errorf("Stats = %+v, want %d throttles, then one call handling 3 records, no failure", st, throttled())
	}
	if !strings.Contains(logs.String(), "handler throttled; retrying") || !strings.Contains(logs.String(), "TooManyRequestsException") {
		t.Errorf("throttles not logged:\n%s", logs)
	}
}

// TestFunctionTimeoutIsAnAttempt: a function Lambda stops at its timeout
// (Sandbox.Timedout) is a failed attempt counted as a timeout.
func TestFunctionTimeoutIsAnAttempt(t *testing.T) {
	emu := startFunction(t, lambdaemu.Function{Timeout: 300 * time.Millisecond})
	d := newDispatcher(t, dispatch.Config{Handler: invoke.Handler(lambdaClient(t, emu.Endpoint), "kinesisfn"), MaxRetryAttempts: 0})
	_, err := deliver(t, d, records(2, []byte("sleep")))
	var ge *dispatch.GiveUpError
	if !errors.As(err, &ge) || !errors.Is(err, stream.ErrHandlerTimeout) {
		t.Fatalf("Deliver = %v, want a *GiveUpError wrapping stream.ErrHandlerTimeout", err)
	}
	if got := d.Stats(); got.Timeouts != 1 || got.Failures != 1 {
		t.Errorf("Stats = %+v, want 1 timeout, 1 failure", got)
	}
}

// TestCrashShowsInTheRetryLog: when the function's process crashes, the
// dispatcher's retry log line carries the error type and message, whether
// the host answers as Lambda does (200, X-Amz-Function-Error) or as the
// runtime interface emulator and sam local do (502 with the payload).
func TestCrashShowsInTheRetryLog(t *testing.T) {
	const wantType = "Runtime.ExitError"
	t.Run("lambda", func(t *testing.T) {
		emu := startFunction(t, lambdaemu.Function{Timeout: 10 * time.Second})
		logs := &testwait.Buffer{}
		d := newDispatcher(t, dispatch.Config{Handler: invoke.Handler(lambdaClient(t, emu.Endpoint), "kinesisfn"),
			MaxRetryAttempts: 1, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		_, err := deliver(t, d, records(1, []byte("exit")))
		var fe *invoke.FunctionError
		if !errors.As(err, &fe) || fe.Type != wantType {
			t.Fatalf("Deliver = %v, want a *FunctionError of type %s", err, wantType)
		}
		checkRetryLog(t, logs.String(), wantType, "exit status 2")
	})
	t.Run("emulator", func(t *testing.T) {
		var requests atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if requests.Add(1) == 1 {
				w.WriteHeader(http.StatusBadGateway)
				_, _ = w.Write([]byte(`{"errorMessage":"RequestId: 5d3c Error: Runtime exited with error: exit status 2","errorType":"Runtime.ExitError"}`))
				return
			}
			_, _ = w.Write([]byte("null"))
		}))
		t.Cleanup(srv.Close)
		logs := &testwait.Buffer{}
		d := newDispatcher(t, dispatch.Config{Handler: invoke.Handler(lambdaClient(t, srv.URL), "function"),
			MaxRetryAttempts: 1, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		if _, err := deliver(t, d, records(1, []byte("x"))); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if got := requests.Load(); got != 2 {
			t.Errorf("%d Invoke requests, want 2 (one per attempt)", got)
		}
		checkRetryLog(t, logs.String(), wantType, "RequestId: 5d3c Error: Runtime exited with error: exit status 2")
	})
}

func checkRetryLog(t *testing.T, logs string, parts ...string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"msg":"handler failed; retrying"`) {
			continue
		}
		for _, p := range parts {
			if !strings.Contains(line, p) {
				t.Errorf("retry log line %s does not show %q", line, p)
			}
		}
		return
	}
	t.Errorf("no retry logged:\n%s", logs)
}
