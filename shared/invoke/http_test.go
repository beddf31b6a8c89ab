package invoke

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shardline/shardline/shared/stream"
)

// answer is one canned HTTP answer of the Invoke API.
type answer struct {
	status int
	header map[string]string
	body   string
}

// fakeInvokeAPI serves answers (the last repeats) on 127.0.0.1 and counts
// the requests.
func fakeInvokeAPI(t *testing.T, answers ...answer) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		a := answers[min(i, len(answers)-1)]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// sdkClient is a Lambda client as anyone might build it: the SDK's
// default retryer (3 attempts, 5xx, 429 and timeouts retried).
func sdkClient(t *testing.T, endpoint string, timeout time.Duration) *lambda.Client {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	hc := awshttp.NewBuildableClient()
	if timeout > 0 {
		hc = hc.WithTimeout(timeout)
	}
	return lambda.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  hc,
	}, func(o *lambda.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// TestHandlerHTTPAnswers: what the Invoke API answers becomes the error
// the dispatcher branches on, and every call sends one request: the SDK
// never re-sends an Invoke by itself, whatever the client's retryer.
func TestHandlerHTTPAnswers(t *testing.T) {
	const fn = "consumer"
	tests := []struct {
		name     string
		answer   answer
		wantIs   error // errors.Is target
		wantFE   *FunctionError
		wantText string // the error contains
	}{
		{
			name: "throttled",
			answer: answer{429, map[string]string{"X-Amzn-ErrorType": "TooManyRequestsException"},
				`{"Type":"User","Message":"Rate Exceeded.","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}`},
			wantIs:   stream.ErrThrottled,
			wantText: "ReservedFunctionConcurrentInvocationLimitExceeded",
		},
		{
			name: "request too large",
			answer: answer{413, map[string]string{"X-Amzn-ErrorType": "RequestTooLargeException"},
				`{"Type":"User","Message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}`},
			wantIs: stream.ErrTooLarge,
		},
		{
			name:   "request entity too large",
			answer: answer{413, map[string]string{"X-Amzn-ErrorType": "RequestEntityTooLargeException"}, `{"Type":"User","Message":"too large"}`},
			wantIs: stream.ErrTooLarge,
		},
		{
			name:   "413 without a body",
			answer: answer{413, nil, ""},
			wantIs: stream.ErrTooLarge,
		},
		{
			// The runtime interface emulator (and sam local) when the
			// function's process crashed.
			name: "crashed function on a local host",
			answer: answer{502, nil,
				`{"errorMessage":"RequestId: 8e4d Error: Runtime exited with error: exit status 2","errorType":"Runtime.ExitError"}`},
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Type: "Runtime.ExitError",
				Message: "RequestId: 8e4d Error: Runtime exited with error: exit status 2", StatusCode: 502},
			wantText: "HTTP 502",
		},
		{
			name:     "Lambda's own service error",
			answer:   answer{500, map[string]string{"X-Amzn-ErrorType": "ServiceException"}, `{"Type":"Service","Message":"internal"}`},
			wantIs:   stream.ErrNotInvoked,
			wantText: "ServiceException",
		},
		{
			name:     "a function that does not exist",
			answer:   answer{404, map[string]string{"X-Amzn-ErrorType": "ResourceNotFoundException"}, `{"Type":"User","Message":"Function not found: consumer"}`},
			wantIs:   stream.ErrNotInvoked,
			wantText: "HTTP 404",
		},
		{
			name:     "a function being updated",
			answer:   answer{409, map[string]string{"X-Amzn-ErrorType": "ResourceConflictException"}, `{"Type":"User","Message":"The operation cannot be performed at this time."}`},
			wantIs:   stream.ErrNotInvoked,
			wantText: "ResourceConflictException",
		},
		{
			name:   "timeout on the emulator",
			answer: answer{200, nil, "Task timed out after 3.00 seconds"},
			wantIs: stream.ErrHandlerTimeout,
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Type: "Sandbox.Timedout", Message: "Task timed out after 3.00 seconds", StatusCode: 200},
		},
		{
			name: "timeout on Lambda",
			answer: answer{200, map[string]string{"X-Amz-Function-Error": "Unhandled"},
				`{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: 8e4d Error: Task timed out after 3.00 seconds"}`},
			wantIs: stream.ErrHandlerTimeout,
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Type: "Sandbox.Timedout",
				Message: "RequestId: 8e4d Error: Task timed out after 3.00 seconds", StatusCode: 200},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := fakeInvokeAPI(t, tt.answer)
			_, err := Handler(sdkClient(t, srv.URL, 0), fn)(context.Background(), testEvent())
			if err == nil {
				t.Fatal("Handler returned no error")
			}
			if got := n.Load(); got != 1 {
				t.Errorf("%d Invoke requests, want 1", got)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %q", err, tt.wantIs)
			}
			for _, other := range []error{stream.ErrThrottled, stream.ErrTooLarge, stream.ErrHandlerTimeout, stream.ErrNotInvoked} {
				if other != tt.wantIs && errors.Is(err, other) {
					t.Errorf("error %q wraps %q", err, other)
				}
			}
			var fe *FunctionError
			switch {
			case tt.wantFE != nil && !errors.As(err, &fe):
				t.Errorf("error %q (%T) is not a *FunctionError", err, err)
			case tt.wantFE != nil && *fe != *tt.wantFE:
				t.Errorf("FunctionError = %+v, want %+v", *fe, *tt.wantFE)
			case tt.wantFE == nil && errors.As(err, &fe):
				t.Errorf("error %q is a *FunctionError, want an Invoke API error", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

// TestHandlerThrottleKeepsTheSDKError: the throttle is still the SDK's
// typed error underneath.
func TestHandlerThrottleKeepsTheSDKError(t *testing.T) {
	srv, _ := fakeInvokeAPI(t, answer{429, map[string]string{"X-Amzn-ErrorType": "TooManyRequestsException"}, `{"Message":"Rate Exceeded."}`})
	_, err := Handler(sdkClient(t, srv.URL, 0), "fn")(context.Background(), testEvent())
	var tm *types.TooManyRequestsException
	if !errors.As(err, &tm) {
		t.Errorf("error %q (%T) does not unwrap to *types.TooManyRequestsException", err, err)
	}
}

// TestHandlerClientTimeout: when the Lambda client's own HTTP timeout runs
// out (the function timeout), the call failed with
// stream.ErrHandlerTimeout, after one request; when the call's context
// ends, it is the context's error (the dispatcher knows why).
func TestHandlerClientTimeout(t *testing.T) {
	var n atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		// Read the event, so that the server sees the client leave.
		_, _ = io.Copy(io.Discard, r.Body)
		select { // the function runs on until the client leaves
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	_, err := Handler(sdkClient(t, srv.URL, 100*time.Millisecond), "fn")(context.Background(), testEvent())
	if !errors.Is(err, stream.ErrHandlerTimeout) {
		t.Errorf("client timeout: error %v, want it to wrap stream.ErrHandlerTimeout", err)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("client timeout: %d Invoke requests, want 1", got)
	}

	n.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = Handler(sdkClient(t, srv.URL, 0), "fn")(ctx, testEvent())
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, stream.ErrHandlerTimeout) {
		t.Errorf("context deadline: error %v, want the context's error only", err)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("context deadline: %d Invoke requests, want 1", got)
	}
}

// TestHandlerNotSentOrNoAnswer: a request that could not be sent (a
// refused connection) never reached the function (stream.ErrNotInvoked,
// status 0); one that was sent and got no answer (the connection closed
// after the request was read) may have run it: an error of the
// invocation, not ErrNotInvoked.
func TestHandlerNotSentOrNoAnswer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()
	_, err = Handler(sdkClient(t, refused, 0), "consumer")(context.Background(), testEvent())
	var ni *NotInvokedError
	if !errors.Is(err, stream.ErrNotInvoked) || !errors.As(err, &ni) || ni.StatusCode != 0 {
		t.Errorf("refused connection: %v, want a NotInvokedError with status 0", err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // read the request, then hang up with no answer
		}
	}))
	t.Cleanup(srv.Close)
	_, err = Handler(sdkClient(t, srv.URL, 0), "consumer")(context.Background(), testEvent())
	if err == nil || errors.Is(err, stream.ErrNotInvoked) {
		t.Errorf("no answer after the request: %v, want an error of the invocation (not ErrNotInvoked)", err)
	}
}
