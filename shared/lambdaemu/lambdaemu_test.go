package lambdaemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shardline/shardline/shared/lambdaemu"
)

// fnPath is the test function (testdata/fn), built once by TestMain.
var fnPath string

func TestMain(m *testing.M) {
	if mode := os.Getenv(rawRuntimeEnv); mode != "" {
		os.Exit(rawRuntime(mode))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lambdaemu-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fnPath = filepath.Join(dir, "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", fnPath, "./testdata/fn")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testdata/fn: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// request and response mirror testdata/fn.
type request struct {
	Echo    any      `json:"echo,omitempty"`
	Env     []string `json:"env,omitempty"`
	Fail    string   `json:"fail,omitempty"`
	Panic   string   `json:"panic,omitempty"`
	Exit    int      `json:"exit,omitempty"`
	Sleep   bool     `json:"sleep,omitempty"`
	Barrier string   `json:"barrier,omitempty"`
	Big     int      `json:"big,omitempty"`
	Print   string   `json:"print,omitempty"`
}

type response struct {
	Echo        json.RawMessage   `json:"echo"`
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	DeadlineMs  int64             `json:"deadlineMs"`
	PID         int               `json:"pid"`
	Env         map[string]string `json:"env"`
	Padding     string            `json:"padding"`
}

type errorPayload struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// start serves fns and closes the server when the test ends, failing the
// test if a process is left behind.
func start(t *testing.T, fns ...lambdaemu.Function) *lambdaemu.Server {
	t.Helper()
	s, err := lambdaemu.Start(context.Background(), fns...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var pids []int
		for _, f := range fns {
			for _, p := range s.Processes(f.Name) {
				pids = append(pids, p.PID)
			}
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("process %d still exists after Close", pid)
			}
		}
	})
	return s
}

// function is the test function with a name and options.
func function(name string, opts ...func(*lambdaemu.Function)) lambdaemu.Function {
	f := lambdaemu.Function{Name: name, Path: fnPath}
	for _, o := range opts {
		o(&f)
	}
	return f
}

// client is the real SDK client, as the pollers build it.
func client(endpoint string, opts ...func(*lambda.Options)) *lambda.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
	return lambda.NewFromConfig(cfg, append([]func(*lambda.Options){func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, opts...)...)
}

func invoke(t *testing.T, c *lambda.Client, name string, req request) *lambda.InvokeOutput {
	t.Helper()
	out, err := invokeErr(c, name, req)
	if err != nil {
		t.Fatalf("Invoke %s: %v", name, err)
	}
	return out
}

func invokeErr(c *lambda.Client, name string, req request) (*lambda.InvokeOutput, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// alive reports whether pid (or a process in its group) exists, zombies
// included.
func alive(pid int) bool {
	return syscall.Kill(pid, 0) != syscall.ESRCH || syscall.Kill(-pid, 0) != syscall.ESRCH
}

// barrier is an HTTP endpoint the function calls and that answers only
// once released: it holds invocations in flight without sleeping.
type barrier struct {
	URL     string
	arrived chan struct{}
	release func()
}

func newBarrier(t *testing.T) *barrier {
	released := make(chan struct{})
	b := &barrier{arrived: make(chan struct{}, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.arrived <- struct{}{}
		select {
		case <-released:
		case <-r.Context().Done():
		}
	}))
	var once sync.Once
	b.release = func() { once.Do(func() { close(released) }) }
	b.URL = srv.URL
	t.Cleanup(func() {
		b.release()
		srv.Close()
	})
	return b
}

// wait waits until n calls have arrived.
func (b *barrier) wait(t *testing.T, n int) {
	t.Helper()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for range n {
		select {
		case <-b.arrived:
		case <-timeout.C:
			t.Fatalf("barrier: fewer than %d calls arrived", n)
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while processes write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestEchoRoundTrip(t *testing.T) {
	var stdout syncBuffer
	s := start(t, function("echo", func(f *lambdaemu.Function) {
		f.Env = []string{"MY_SETTING=42", "AWS_REGION=eu-west-1"}
		f.MemoryMB = 256
		f.Stdout = &stdout
	}))
	c := client(s.Endpoint)
	want := map[string]any{"hello": "world", "n": 1.5}
	env := []string{
		"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
		"AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_RUNTIME_API", "_HANDLER",
		"AWS_REGION", "AWS_DEFAULT_REGION", "LAMBDA_TASK_ROOT", "TZ", "MY_SETTING", "HOME",
		"AWS_ACCESS_KEY_ID", "AWS_LAMBDA_MAX_CONCURRENCY",
	}
	out := invoke(t, c, "echo", request{Echo: want, Env: env, Print: "hello from fn"})

	if out.StatusCode != 200 || out.FunctionError != nil {
		t.Fatalf("got status %d, function error %v; want 200 and none", out.StatusCode, aws.ToString(out.FunctionError))
	}
	if got := aws.ToString(out.ExecutedVersion); got != "$LATEST" {
		t.Errorf("ExecutedVersion = %q, want $LATEST", got)
	}
	resp := decode[response](t, out.Payload)
	if got := decode[map[string]any](t, resp.Echo); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("echo = %v, want %v", got, want)
	}
	recs := s.Invocations("echo")
	if len(recs) != 1 {
		t.Fatalf("got %d invocation records, want 1", len(recs))
	}
	rec := recs[0]
	if resp.RequestID != rec.RequestID || rec.RequestID == "" {
		t.Errorf("function saw request id %q, record has %q", resp.RequestID, rec.RequestID)
	}
	wantARN := "arn:aws:lambda:eu-west-1:" + lambdaemu.AccountID + ":function:echo"
	if resp.FunctionARN != wantARN || s.ARN("echo") != wantARN {
		t.Errorf("function ARN = %q (ARN() %q), want %q", resp.FunctionARN, s.ARN("echo"), wantARN)
	}
	if rec.Status != lambdaemu.StatusSuccess || !rec.ColdStart || rec.PID != resp.PID || rec.ResponseBytes != len(out.Payload) {
		t.Errorf("record = %+v; want success, cold start, pid %d, %d response bytes", rec, resp.PID, len(out.Payload))
	}

	procs := s.Processes("echo")
	if len(procs) != 1 {
		t.Fatalf("got %d processes, want 1", len(procs))
	}
	wantEnv := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "echo",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/echo",
		"AWS_LAMBDA_LOG_STREAM_NAME":      procs[0].LogStream,
		"_HANDLER":                        "bootstrap",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"LAMBDA_TASK_ROOT":                filepath.Dir(fnPath),
		"TZ":                              ":UTC",
		"MY_SETTING":                      "42",
	}
	for k, v := range wantEnv {
		if resp.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, resp.Env[k], v)
		}
	}
	if !strings.HasPrefix(resp.Env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q, want 127.0.0.1:port", resp.Env["AWS_LAMBDA_RUNTIME_API"])
	}
	if resp.Env["AWS_ACCESS_KEY_ID"] == "" {
		t.Error("AWS_ACCESS_KEY_ID not set: Lambda always gives credentials")
	}
	for _, k := range []string{"HOME", "AWS_LAMBDA_MAX_CONCURRENCY"} {
		if v, ok := resp.Env[k]; ok {
			t.Errorf("env %s = %q, want it unset", k, v)
		}
	}

	// By ARN, partial ARN and name:$LATEST: the same function, warm.
	for _, ref := range []string{wantARN, wantARN + ":$LATEST", lambdaemu.AccountID + ":function:echo", "echo:$LATEST"} {
		out := invoke(t, c, ref, request{Echo: "x"})
		got := decode[response](t, out.Payload)
		if got.PID != resp.PID {
			t.Errorf("invoke %s: pid %d, want the warm process %d", ref, got.PID, resp.PID)
		}
		wantSeen := wantARN
		if strings.HasSuffix(ref, ":$LATEST") {
			wantSeen += ":$LATEST"
		}
		if got.FunctionARN != wantSeen {
			t.Errorf("invoke %s: function saw ARN %q, want %q", ref, got.FunctionARN, wantSeen)
		}
	}
	if recs := s.Invocations("echo"); recs[len(recs)-1].ColdStart {
		t.Error("a warm invocation is recorded as a cold start")
	}
	// Close waits for the processes' output to be copied.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	log := stdout.String()
	for _, want := range []string{"hello from fn\n", "START RequestId: " + rec.RequestID + " Version: $LATEST\n", "END RequestId: " + rec.RequestID + "\n", "REPORT RequestId: " + rec.RequestID + "\t", "Init Duration: "} {
		if !strings.Contains(log, want) {
			t.Errorf("stdout lacks %q:\n%s", want, log)
		}
	}
	t.Logf("cold start: init %v, invoke round trip %v", rec.InitDuration, rec.End.Sub(rec.Received))
}

func TestFunctionError(t *testing.T) {
	s := start(t, function("fails"))
	c := client(s.Endpoint)
	out := invoke(t, c, "fails", request{Fail: "boom"})
	if got := aws.ToString(out.FunctionError); got != "Unhandled" || out.StatusCode != 200 {
		t.Fatalf("status %d, FunctionError %q; want 200 and Unhandled", out.StatusCode, got)
	}
	e := decode[errorPayload](t, out.Payload)
	if e.ErrorType != "EchoError" || e.ErrorMessage != "boom" {
		t.Errorf("error payload = %+v, want errorType EchoError, errorMessage boom", e)
	}
	rec := s.Invocations("fails")[0]
	if rec.Status != lambdaemu.StatusError || rec.ErrorType != "EchoError" {
		t.Errorf("record status %q, error type %q; want error, EchoError", rec.Status, rec.ErrorType)
	}
	// The process survives a returned error and serves the next call.
	again := decode[response](t, invoke(t, c, "fails", request{}).Payload)
	if again.PID != rec.PID {
		t.Errorf("after an error: pid %d, want the same process %d", again.PID, rec.PID)
	}
}

func TestPanicAndExit(t *testing.T) {
	s := start(t, function("crashy"))
	c := client(s.Endpoint)

	// A panic is reported by aws-lambda-go, which then exits: the next
	// invocation gets a new process.
	out := invoke(t, c, "crashy", request{Panic: "oh no"})
	e := decode[errorPayload](t, out.Payload)
	if aws.ToString(out.FunctionError) != "Unhandled" || e.ErrorType != "string" || e.ErrorMessage != "oh no" {
		t.Errorf("panic: FunctionError %q, payload %s", aws.ToString(out.FunctionError), out.Payload)
	}
	first := s.Invocations("crashy")[0].PID
	next := decode[response](t, invoke(t, c, "crashy", request{}).Payload)
	if next.PID == first {
		t.Errorf("after a panic the same process %d answered", first)
	}

	// A process that exits mid-invocation: Runtime.ExitError.
	out = invoke(t, c, "crashy", request{Exit: 3})
	e = decode[errorPayload](t, out.Payload)
	recs := s.Invocations("crashy")
	rec := recs[len(recs)-1]
	wantMsg := "RequestId: " + rec.RequestID + " Error: Runtime exited with error: exit status 3"
	if aws.ToString(out.FunctionError) != "Unhandled" || e.ErrorType != "Runtime.ExitError" || e.ErrorMessage != wantMsg {
		t.Errorf("exit: FunctionError %q, payload %+v; want Unhandled, Runtime.ExitError, %q", aws.ToString(out.FunctionError), e, wantMsg)
	}
	if rec.Status != lambdaemu.StatusExited {
		t.Errorf("exit: record status %q, want %q", rec.Status, lambdaemu.StatusExited)
	}
	if alive(rec.PID) {
		t.Errorf("exited process %d still exists", rec.PID)
	}
	if got := decode[response](t, invoke(t, c, "crashy", request{}).Payload); got.PID == rec.PID {
		t.Errorf("after an exit the same process %d answered", rec.PID)
	}
}

func TestDeadline(t *testing.T) {
	const timeout = 7 * time.Second
	s := start(t, function("deadline", func(f *lambdaemu.Function) { f.Timeout = timeout }))
	c := client(s.Endpoint)
	resp := decode[response](t, invoke(t, c, "deadline", request{}).Payload)
	rec := s.Invocations("deadline")[0]
	if !rec.Deadline.Equal(rec.Start.Add(timeout)) {
		t.Errorf("record deadline %v, want start %v + %v", rec.Deadline, rec.Start, timeout)
	}
	// The Runtime API carries the deadline in epoch milliseconds.
	if got, want := resp.DeadlineMs, rec.Deadline.UnixMilli(); got != want {
		t.Errorf("function saw deadline %d ms, want %d ms (start + %v)", got, want, timeout)
	}
	if rec.Start.Before(rec.Received) || rec.End.Before(rec.Start) {
		t.Errorf("record times out of order: received %v, start %v, end %v", rec.Received, rec.Start, rec.End)
	}
}

func TestTimeout(t *testing.T) {
	var stdout syncBuffer
	s := start(t, function("slow", func(f *lambdaemu.Function) {
		f.Timeout = 500 * time.Millisecond
		f.Stdout = &stdout
	}))
	c := client(s.Endpoint)
	out := invoke(t, c, "slow", request{Sleep: true})
	rec := s.Invocations("slow")[0]
	e := decode[errorPayload](t, out.Payload)
	wantMsg := "RequestId: " + rec.RequestID + " Error: Task timed out after 0.50 seconds"
	if aws.ToString(out.FunctionError) != "Unhandled" || e.ErrorType != "Sandbox.Timedout" || e.ErrorMessage != wantMsg {
		t.Errorf("got FunctionError %q, payload %+v; want Unhandled, Sandbox.Timedout, %q", aws.ToString(out.FunctionError), e, wantMsg)
	}
	if rec.Status != lambdaemu.StatusTimeout {
		t.Errorf("record status %q, want timeout", rec.Status)
	}
	if d := rec.End.Sub(rec.Start); d < 500*time.Millisecond {
		t.Errorf("answered %v after start, before the 500ms timeout", d)
	}
	// The answer comes once the process is gone.
	if alive(rec.PID) {
		t.Errorf("timed-out process %d still exists", rec.PID)
	}
	procs := s.Processes("slow")
	if len(procs) != 1 || procs[0].ExitStatus != "signal: killed" {
		t.Errorf("processes = %+v, want one, killed", procs)
	}
	if !strings.Contains(stdout.String(), rec.RequestID+" Task timed out after 0.50 seconds\n") {
		t.Errorf("stdout lacks the timeout line:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "\tStatus: timeout") {
		t.Errorf("REPORT lacks Status: timeout:\n%s", stdout.String())
	}
	// The next invocation starts a new process.
	next := decode[response](t, invoke(t, c, "slow", request{}).Payload)
	if next.PID == rec.PID {
		t.Errorf("after a timeout the killed process %d answered", rec.PID)
	}
	if recs := s.Invocations("slow"); !recs[1].ColdStart {
		t.Error("the invocation after a timeout is not a cold start")
	}
}

func TestConcurrencyAndWarmReuse(t *testing.T) {
	const n = 4
	s := start(t, function("par"))
	c := client(s.Endpoint)

	round := func(name string) []int {
		b := newBarrier(t)
		pids := make([]int, n)
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				out, err := invokeErr(c, "par", request{Barrier: b.URL})
				if err == nil && out.FunctionError != nil {
					err = fmt.Errorf("function error %s", out.Payload)
				}
				if err != nil {
					errs <- err
					return
				}
				var r response
				if err := json.Unmarshal(out.Payload, &r); err != nil {
					errs <- err
					return
				}
				pids[i] = r.PID
			})
		}
		// All n are in the function at once before any is let go.
		b.wait(t, n)
		b.release()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", name, err)
		}
		slices.Sort(pids)
		return slices.Compact(pids)
	}

	first := round("round 1")
	if len(first) != n || len(s.Processes("par")) != n {
		t.Fatalf("round 1: %d distinct pids, %d processes; want %d", len(first), len(s.Processes("par")), n)
	}
	second := round("round 2")
	if !slices.Equal(first, second) {
		t.Errorf("round 2 ran on pids %v, want the warm %v", second, first)
	}
	if got := len(s.Processes("par")); got != n {
		t.Errorf("round 2 started processes: %d in all, want %d", got, n)
	}
	cold := 0
	for _, r := range s.Invocations("par") {
		if r.ColdStart {
			cold++
		}
	}
	if cold != n {
		t.Errorf("%d cold starts, want %d", cold, n)
	}
}

func TestMaxConcurrency(t *testing.T) {
	s := start(t, function("one", func(f *lambdaemu.Function) { f.MaxConcurrency = 1 }))
	// The SDK retries throttling by default; see every 429.
	c := client(s.Endpoint, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
	b := newBarrier(t)
	done := make(chan error, 1)
	go func() {
		_, err := invokeErr(c, "one", request{Barrier: b.URL})
		done <- err
	}()
	b.wait(t, 1)

	_, err := invokeErr(c, "one", request{})
	var tooMany *types.TooManyRequestsException
	if !errors.As(err, &tooMany) {
		t.Fatalf("second invocation: got %v, want TooManyRequestsException", err)
	}
	if aws.ToString(tooMany.Message) != "Rate Exceeded." || tooMany.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded {
		t.Errorf("throttle: message %q, reason %q", aws.ToString(tooMany.Message), tooMany.Reason)
	}
	b.release()
	if err := <-done; err != nil {
		t.Fatalf("first invocation: %v", err)
	}
	recs := s.Invocations("one")
	if len(recs) != 2 || recs[1].Status != lambdaemu.StatusThrottled {
		t.Errorf("records = %+v, want the second throttled", recs)
	}
	// Once free, the process takes the next call.
	invoke(t, c, "one", request{})
}

func TestUnknownFunction(t *testing.T) {
	s := start(t, function("known"))
	c := client(s.Endpoint)
	for _, ref := range []string{"nope", "arn:aws:lambda:us-east-1:" + lambdaemu.AccountID + ":function:nope", "known:prod"} {
		_, err := invokeErr(c, ref, request{})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("invoke %s: got %v, want ResourceNotFoundException", ref, err)
			continue
		}
		if msg := aws.ToString(nf.Message); !strings.HasPrefix(msg, "Function not found: arn:aws:lambda:us-east-1:"+lambdaemu.AccountID+":function:") {
			t.Errorf("invoke %s: message %q", ref, msg)
		}
	}
	// The raw answer, as Lambda gives it.
	resp, err := http.Post(s.Endpoint+"/2015-03-31/functions/nope/invocations", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 404 || resp.Header.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" || body["Type"] != "User" {
		t.Errorf("got %d %q %v, want 404 ResourceNotFoundException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
	if n := len(s.Processes("known")); n != 0 {
		t.Errorf("%d processes started for unknown functions", n)
	}
}

func TestInvocationTypes(t *testing.T) {
	s := start(t, function("types"))
	c := client(s.Endpoint)
	ctx := t.Context()

	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("types"), InvocationType: types.InvocationTypeDryRun})
	if err != nil || out.StatusCode != 204 {
		t.Fatalf("DryRun: %v, status %d; want 204", err, statusOf(out))
	}
	if n := len(s.Invocations("types")); n != 0 {
		t.Errorf("DryRun recorded %d invocations", n)
	}

	payload, _ := json.Marshal(request{Echo: "async"})
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("types"), InvocationType: types.InvocationTypeEvent, Payload: payload})
	if err != nil || out.StatusCode != 202 || len(out.Payload) != 0 {
		t.Fatalf("Event: %v, status %d; want 202", err, statusOf(out))
	}
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	recs := s.Invocations("types")
	if len(recs) != 1 || recs[0].Status != lambdaemu.StatusSuccess || recs[0].InvocationType != "Event" {
		t.Errorf("records = %+v, want one successful Event", recs)
	}

	// No payload: the function gets {}.
	out, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("types")})
	if err != nil || out.FunctionError != nil {
		t.Fatalf("empty payload: %v %s", err, payloadOf(out))
	}
	// A payload that is not JSON is refused, as Lambda does.
	_, err = c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("types"), Payload: []byte("not json")})
	var bad *types.InvalidRequestContentException
	if !errors.As(err, &bad) {
		t.Errorf("non-JSON payload: got %v, want InvalidRequestContentException", err)
	}
}

func TestPayloadLimits(t *testing.T) {
	s := start(t, function("big"))
	c := client(s.Endpoint)
	_, err := c.Invoke(t.Context(), &lambda.InvokeInput{
		FunctionName: aws.String("big"),
		Payload:      []byte(`"` + strings.Repeat("x", 6*1024*1024) + `"`),
	})
	var tooLarge *types.RequestTooLargeException
	if !errors.As(err, &tooLarge) {
		t.Errorf("7 MB request: got %v, want RequestTooLargeException", err)
	}
	out := invoke(t, c, "big", request{Big: 6*1024*1024 + 200})
	e := decode[errorPayload](t, out.Payload)
	if aws.ToString(out.FunctionError) != "Unhandled" || e.ErrorType != "Function.ResponseSizeTooLarge" {
		t.Errorf("oversized response: FunctionError %q, payload %+v", aws.ToString(out.FunctionError), e)
	}
	// Just under the limit passes.
	out = invoke(t, c, "big", request{Big: 6 * 1000 * 1000})
	if out.FunctionError != nil || len(out.Payload) < 6*1000*1000 {
		t.Errorf("6 MB response: FunctionError %q, %d bytes", aws.ToString(out.FunctionError), len(out.Payload))
	}
}

func TestCloseStopsEveryProcess(t *testing.T) {
	var stdout syncBuffer
	s, err := lambdaemu.Start(context.Background(), function("busy", func(f *lambdaemu.Function) { f.Stdout = &stdout }))
	if err != nil {
		t.Fatal(err)
	}
	c := client(s.Endpoint)
	b := newBarrier(t)
	type answer struct {
		out *lambda.InvokeOutput
		err error
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			out, err := invokeErr(c, "busy", request{Barrier: b.URL})
			answers <- answer{out, err}
		}()
	}
	b.wait(t, 2)
	var pids []int
	for _, p := range s.Processes("busy") {
		pids = append(pids, p.PID)
	}
	if len(pids) != 2 {
		t.Fatalf("got %d processes, want 2", len(pids))
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d (or its group) still exists after Close", pid)
		}
	}
	// SIGTERM came first: the function's handler saw it and exited 0,
	// which Lambda reports as an exit without a reason.
	if got := strings.Count(stdout.String(), "fn: SIGTERM\n"); got != 2 {
		t.Errorf("%d processes saw SIGTERM, want 2:\n%s", got, stdout.String())
	}
	for range 2 {
		a := <-answers
		if a.err != nil {
			t.Errorf("invocation cut by Close: %v", a.err)
			continue
		}
		e := decode[errorPayload](t, a.out.Payload)
		if e.ErrorType != "Runtime.ExitError" || !strings.HasSuffix(e.ErrorMessage, "Runtime exited without providing a reason") {
			t.Errorf("invocation cut by Close: %s", a.out.Payload)
		}
	}
	for _, p := range s.Processes("busy") {
		if p.Exited.IsZero() || p.ExitStatus != "exit status 0" {
			t.Errorf("process record %+v, want exited with status 0", p)
		}
	}
	noRetry := client(s.Endpoint, func(o *lambda.Options) { o.RetryMaxAttempts = 1 })
	if _, err := invokeErr(noRetry, "busy", request{}); err == nil {
		t.Error("Invoke after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestContextCancelCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := lambdaemu.Start(ctx, function("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	invoke(t, client(s.Endpoint), "ctx", request{})
	pid := s.Processes("ctx")[0].PID
	cancel()
	if err := s.Close(); err != nil { // waits for the Close that cancel began
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("process %d still exists", pid)
	}
}

func TestStartValidates(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		fns  []lambdaemu.Function
		want string
	}{
		{"none", nil, "no functions"},
		{"bad name", []lambdaemu.Function{{Name: "a b", Path: fnPath}}, `invalid Name "a b"`},
		{"no path", []lambdaemu.Function{{Name: "a"}}, "invalid Path"},
		{"missing path", []lambdaemu.Function{{Name: "a", Path: "/nonexistent/bootstrap"}}, "invalid Path"},
		{"not executable", []lambdaemu.Function{{Name: "a", Path: notExec}}, "not an executable file"},
		{"timeout", []lambdaemu.Function{{Name: "a", Path: fnPath, Timeout: -time.Second}}, "invalid Timeout"},
		{"memory", []lambdaemu.Function{{Name: "a", Path: fnPath, MemoryMB: 64}}, "invalid MemoryMB 64"},
		{"concurrency", []lambdaemu.Function{{Name: "a", Path: fnPath, MaxConcurrency: -1}}, "invalid MaxConcurrency"},
		{"env", []lambdaemu.Function{{Name: "a", Path: fnPath, Env: []string{"NOEQUALS"}}}, "want KEY=VALUE"},
		{"reserved env", []lambdaemu.Function{{Name: "a", Path: fnPath, Env: []string{"_HANDLER=x"}}}, "reserved"},
		{"duplicate", []lambdaemu.Function{{Name: "a", Path: fnPath}, {Name: "a", Path: fnPath}}, "taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := lambdaemu.Start(context.Background(), tt.fns...)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Start succeeded, want an error with %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func statusOf(out *lambda.InvokeOutput) int32 {
	if out == nil {
		return 0
	}
	return out.StatusCode
}

func payloadOf(out *lambda.InvokeOutput) []byte {
	if out == nil {
		return nil
	}
	return out.Payload
}

func BenchmarkWarmInvoke(b *testing.B) {
	s, err := lambdaemu.Start(context.Background(), lambdaemu.Function{Name: "bench", Path: fnPath})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := client(s.Endpoint)
	payload := []byte(`{"echo":"x"}`)
	ctx := context.Background()
	if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("bench"), Payload: payload}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("bench"), Payload: payload}); err != nil {
			b.Fatal(err)
		}
	}
	// The server's share: from the request arriving to the answer.
	var server time.Duration
	recs := s.Invocations("bench")[1:]
	for _, r := range recs {
		server += r.End.Sub(r.Received)
	}
	b.ReportMetric(float64(server.Microseconds())/float64(len(recs)), "server-µs/op")
}

// BenchmarkColdStart measures a first invocation: process start, runtime
// init and the invocation, reporting the init part and the round trip.
func BenchmarkColdStart(b *testing.B) {
	s, err := lambdaemu.Start(context.Background(), lambdaemu.Function{Name: "cold", Path: fnPath, MaxConcurrency: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := client(s.Endpoint)
	ctx := context.Background()
	var init, total time.Duration
	for b.Loop() {
		// Exiting makes the next invocation a cold start.
		out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("cold"), Payload: []byte(`{"exit":1}`)})
		if err != nil || aws.ToString(out.FunctionError) != "Unhandled" {
			b.Fatalf("%v %s", err, payloadOf(out))
		}
		recs := s.Invocations("cold")
		rec := recs[len(recs)-1]
		if !rec.ColdStart {
			b.Fatal("not a cold start")
		}
		init += rec.InitDuration
		total += rec.End.Sub(rec.Received)
	}
	b.ReportMetric(float64(init.Microseconds())/float64(b.N), "init-µs/op")
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "invoke-µs/op")
}
