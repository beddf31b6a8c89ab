// Command fn is the function the lambdaemu tests run: built with
// -tags lambda.norpc, started by aws-lambda-go's lambda.Start, as a
// provided.al2023 bootstrap. What it does is chosen by the event.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Request is the event.
type Request struct {
	Echo    json.RawMessage `json:"echo,omitempty"`    // returned as is
	Env     []string        `json:"env,omitempty"`     // variables to report
	Fail    string          `json:"fail,omitempty"`    // return an *EchoError with this message
	Panic   string          `json:"panic,omitempty"`   // panic with this value
	Exit    int             `json:"exit,omitempty"`    // exit with this code mid-invocation
	Sleep   bool            `json:"sleep,omitempty"`   // sleep past the deadline, ignoring it
	Barrier string          `json:"barrier,omitempty"` // GET this URL before answering
	Big     int             `json:"big,omitempty"`     // answer with this many bytes of padding
	Print   string          `json:"print,omitempty"`   // write this line to stdout
}

// Response reports what the function saw.
type Response struct {
	Echo        json.RawMessage   `json:"echo,omitempty"`
	RequestID   string            `json:"requestId"`
	FunctionARN string            `json:"functionArn"`
	DeadlineMs  int64             `json:"deadlineMs"`
	PID         int               `json:"pid"`
	Env         map[string]string `json:"env,omitempty"`
	Padding     string            `json:"padding,omitempty"`
}

// EchoError is the error the function returns on demand; Lambda reports
// its type name as errorType.
type EchoError struct{ Msg string }

func (e *EchoError) Error() string { return e.Msg }

func handle(ctx context.Context, req Request) (Response, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	deadline, _ := ctx.Deadline()
	resp := Response{
		Echo:       req.Echo,
		DeadlineMs: deadline.UnixMilli(),
		PID:        os.Getpid(),
	}
	if lc != nil {
		resp.RequestID, resp.FunctionARN = lc.AwsRequestID, lc.InvokedFunctionArn
	}
	if req.Print != "" {
		fmt.Println(req.Print)
	}
	if len(req.Env) > 0 {
		resp.Env = map[string]string{}
		for _, k := range req.Env {
			if v, ok := os.LookupEnv(k); ok {
				resp.Env[k] = v
			}
		}
	}
	if req.Barrier != "" {
		r, err := http.Get(req.Barrier)
		if err != nil {
			return resp, err
		}
		_ = r.Body.Close()
	}
	switch {
	case req.Fail != "":
		return resp, &EchoError{Msg: req.Fail}
	case req.Panic != "":
		panic(req.Panic)
	case req.Exit != 0:
		os.Exit(req.Exit)
	case req.Sleep:
		time.Sleep(time.Until(deadline) + time.Minute)
	case req.Big > 0:
		resp.Padding = strings.Repeat("x", req.Big)
	}
	return resp, nil
}

func main() {
	lambda.StartWithOptions(handle, lambda.WithEnableSIGTERM(func() {
		fmt.Println("fn: SIGTERM")
		os.Exit(0)
	}))
}
