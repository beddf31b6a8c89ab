package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/shardline/shardline/shared/stream"
)

// lambdaAPI lists the Lambda call made here.
type lambdaAPI interface {
	Invoke(context.Context, *lambda.InvokeInput, ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ lambdaAPI = (*lambda.Client)(nil)

// FunctionError is a function's own error: Lambda's X-Amz-Function-Error
// ("Unhandled" or "Handled") with the error payload it returned, or the
// error payload a local host (the runtime interface emulator, `sam local
// start-lambda`) answers with a 5xx status when the function's process
// crashed.
type FunctionError struct {
	Function   string
	Kind       string // X-Amz-Function-Error; "Unhandled" for a crash a local host reports
	Type       string // errorType, such as Runtime.ExitError or Sandbox.Timedout
	Message    string // errorMessage
	StatusCode int    // the HTTP status of the answer: 200 from Lambda, 5xx from a local host
}

func (e *FunctionError) Error() string {
	msg := fmt.Sprintf("function %s failed (%s", e.Function, e.Kind)
	if e.StatusCode != 0 && e.StatusCode != 200 {
		msg += fmt.Sprintf(", HTTP %d", e.StatusCode)
	}
	msg += ")"
	if e.Type != "" {
		msg += ": " + e.Type
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Is reports a function that ran out of time (Lambda's Sandbox.Timedout,
// or the emulator's "Task timed out") as stream.ErrHandlerTimeout.
func (e *FunctionError) Is(target error) bool {
	return target == stream.ErrHandlerTimeout && e.timedOut()
}

func (e *FunctionError) timedOut() bool {
	return e.Type == "Sandbox.Timedout" || strings.HasPrefix(e.Message, "Task timed out") ||
		strings.Contains(e.Message, "Error: Task timed out")
}

// Handler returns a stream.Handler that invokes function synchronously
// (RequestResponse) with each event.
//
// Each call sends exactly one Invoke request, whatever retry settings
// client has: a request the SDK re-sent could run the function a second
// time while the first still runs, so every new attempt is the
// dispatcher's, logged and counted. The errors, for the dispatcher:
//   - a function error is a *FunctionError (X-Amz-Function-Error, the
//     emulator's error payload with status 200, or a local host's 5xx with
//     an error payload: a crashed process); one that ran out of time also
//     matches stream.ErrHandlerTimeout;
//   - 429 TooManyRequestsException wraps stream.ErrThrottled;
//   - 413 (RequestTooLargeException) wraps stream.ErrTooLarge;
//   - any other error answer of the Invoke API (5xx with no function
//     error payload, 409, 404, 403, ...) and a request that could not be
//     sent (connection refused) are a *NotInvokedError, matching
//     stream.ErrNotInvoked;
//   - the Lambda client's own HTTP timeout (awsconf's InvokeTimeout) wraps
//     stream.ErrHandlerTimeout;
//   - anything else wraps the SDK's error.
func Handler(client lambdaAPI, function string) stream.Handler {
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		payload, err := Marshal(ev)
		if err != nil {
			return events.KinesisEventResponse{}, err
		}
		p, status, err := invokeOnce(ctx, client, function, payload)
		if err != nil {
			return events.KinesisEventResponse{}, err
		}
		if len(p) == 0 || string(p) == "null" {
			return events.KinesisEventResponse{}, nil // an empty or null answer is success
		}
		var answer struct {
			events.KinesisEventResponse
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		if err := json.Unmarshal(p, &answer); err != nil {
			if fe := emulatorTimeout(function, p, status); fe != nil {
				return events.KinesisEventResponse{}, fe
			}
			// Lambda treats an answer it cannot read as a failed batch.
			return events.KinesisEventResponse{}, fmt.Errorf("function %s answered %q: not a KinesisEventResponse: %w", function, truncate(p), err)
		}
		if answer.ErrorType != "" || answer.ErrorMessage != "" {
			// The runtime interface emulator reports a function error
			// with status 200 and no X-Amz-Function-Error header.
			return events.KinesisEventResponse{}, &FunctionError{Function: function, Kind: "Unhandled",
				Type: answer.ErrorType, Message: answer.ErrorMessage, StatusCode: status}
		}
		return answer.KinesisEventResponse, nil
	}
}

// invokeOnce sends payload to function in one Invoke request and returns
// the answer's payload, trimmed, and its HTTP status; a function error
// with Lambda's X-Amz-Function-Error header, and every error of the call,
// become what the dispatcher branches on (see Handler).
func invokeOnce(ctx context.Context, client lambdaAPI, function string, payload []byte) ([]byte, int, error) {
	var capture errorBody
	out, err := client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	}, func(o *lambda.Options) {
		o.Retryer = aws.NopRetryer{}
		o.RetryMaxAttempts = 1
		o.APIOptions = append(o.APIOptions, capture.add)
	})
	if err != nil {
		return nil, 0, invokeError(ctx, function, err, capture.body)
	}
	if out.FunctionError != nil {
		fe := &FunctionError{Function: function, Kind: aws.ToString(out.FunctionError), StatusCode: int(out.StatusCode)}
		var body struct {
			Type    string `json:"errorType"`
			Message string `json:"errorMessage"`
		}
		if json.Unmarshal(out.Payload, &body) == nil {
			fe.Type, fe.Message = body.Type, body.Message
		} else {
			fe.Message = string(out.Payload)
		}
		return nil, 0, fe
	}
	return bytes.TrimSpace(out.Payload), int(out.StatusCode), nil
}

// emulatorTimeout is the function error of an answer that is not JSON but
// the runtime interface emulator's timeout text (status 200), or nil.
func emulatorTimeout(function string, p []byte, status int) *FunctionError {
	if !bytes.HasPrefix(p, []byte("Task timed out")) {
		return nil
	}
	return &FunctionError{Function: function, Kind: "Unhandled", Type: "Sandbox.Timedout", Message: string(p), StatusCode: status}
}

// invokeError turns an Invoke call's error into what the dispatcher
// branches on.
func invokeError(ctx context.Context, function string, err error, body []byte) error {
	status := 0
	if re := (*awshttp.ResponseError)(nil); errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	code := ""
	if ae := smithy.APIError(nil); errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case status >= 500:
		// The runtime interface emulator and sam local answer 502 with
		// the function's error payload when its process crashed.
		var payload struct {
			Type    string `json:"errorType"`
			Message string `json:"errorMessage"`
		}
		if json.Unmarshal(body, &payload) == nil && (payload.Type != "" || payload.Message != "") {
			return &FunctionError{Function: function, Kind: "Unhandled", Type: payload.Type, Message: payload.Message, StatusCode: status}
		}
	case status == 429 || code == "TooManyRequestsException":
		reason := ""
		if tm := (*types.TooManyRequestsException)(nil); errors.As(err, &tm) && tm.Reason != "" {
			reason = " (" + string(tm.Reason) + ")"
		}
		return fmt.Errorf("invoke %s: %w%s: %w", function, stream.ErrThrottled, reason, err)
	case status == 413 || code == "RequestTooLargeException" || code == "RequestEntityTooLargeException":
		return fmt.Errorf("invoke %s: %w: %w", function, stream.ErrTooLarge, err)
	}
	if status >= 400 {
		// An answer of the Invoke API itself, not of the function (that
		// would be a 200 with X-Amz-Function-Error): the function did not
		// run.
		return &NotInvokedError{Function: function, StatusCode: status, Code: code, Err: err}
	}
	if notSent(err) {
		return &NotInvokedError{Function: function, Err: err}
	}
	if ctx.Err() == nil {
		// Not the call's context: the Lambda client's own HTTP timeout
		// (the function timeout and a little more) ran out.
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("invoke %s: no answer within the Lambda client's timeout: %w: %w", function, stream.ErrHandlerTimeout, err)
		}
	}
	return fmt.Errorf("invoke %s: %w", function, err)
}

// NotInvokedError is an Invoke call that never reached the function: the
// Invoke API's own error answer (StatusCode, Code) or a request that could
// not be sent (StatusCode 0). It matches stream.ErrNotInvoked.
type NotInvokedError struct {
	Function   string
	StatusCode int    // the Invoke API's HTTP status; 0 when no request was sent
	Code       string // the API error code (ResourceNotFoundException, ...), if any
	Err        error
}

func (e *NotInvokedError) Error() string {
	if e.StatusCode == 0 {
		return fmt.Sprintf("invoke %s: not sent: %v", e.Function, e.Err)
	}
	return fmt.Sprintf("invoke %s: HTTP %d from the Invoke API, the function did not run: %v", e.Function, e.StatusCode, e.Err)
}

func (e *NotInvokedError) Unwrap() error { return e.Err }

// Is matches stream.ErrNotInvoked.
func (e *NotInvokedError) Is(target error) bool { return target == stream.ErrNotInvoked }

// notSent reports an error from before the request was written: a dial
// that failed (connection refused, no route) or a name that did not
// resolve. A request sent and then cut (a reset, EOF, a timeout) may have
// run the function: not this.
func notSent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// maxErrorBody bounds how much of an error answer is kept.
const maxErrorBody = 64 << 10

// errorBody keeps the body of a 5xx answer, which the SDK reads and drops
// (it knows Lambda's service errors, not a local host's function error
// payload). One per call.
type errorBody struct{ body []byte }

func (c *errorBody) add(stack *middleware.Stack) error {
	// After: next to the transport, before the operation's deserializer
	// reads the body.
	return stack.Deserialize.Add(c, middleware.After)
}

func (c *errorBody) ID() string { return "shardline.KeepErrorBody" }

func (c *errorBody) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
	middleware.DeserializeOutput, middleware.Metadata, error,
) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if !ok || resp.StatusCode < 500 || resp.Body == nil {
		return out, md, err
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	c.body = b
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), errReader{rerr}, resp.Body), resp.Body}
	return out, md, nil
}

// errReader returns err (or EOF) so a failed read reaches the deserializer.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	return 0, io.EOF
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// Marshal renders ev as Lambda's event source mapping does. It differs
// from json.Marshal(ev) only in approximateArrivalTimestamp, written as
// Lambda writes it: epoch seconds with at most millisecond digits (the
// aws-lambda-go type prints float noise such as 1545084711.1660001).
// Sizer measures its output without marshalling.
func Marshal(ev events.KinesisEvent) ([]byte, error) {
	out := struct {
		Records []eventRecord `json:"Records"`
	}{Records: make([]eventRecord, len(ev.Records))}
	for i := range ev.Records {
		out.Records[i] = newEventRecord(&ev.Records[i])
	}
	return json.Marshal(out)
}

type kinesisRecord struct {
	ApproximateArrivalTimestamp json.Number `json:"approximateArrivalTimestamp"`
	Data                        []byte      `json:"data"`
	EncryptionType              string      `json:"encryptionType,omitempty"`
	PartitionKey                string      `json:"partitionKey"`
	SequenceNumber              string      `json:"sequenceNumber"`
	KinesisSchemaVersion        string      `json:"kinesisSchemaVersion"`
}

type eventRecord struct {
	AwsRegion         string        `json:"awsRegion"`
	EventID           string        `json:"eventID"`
	EventName         string        `json:"eventName"`
	EventSource       string        `json:"eventSource"`
	EventSourceArn    string        `json:"eventSourceARN"`
	EventVersion      string        `json:"eventVersion"`
	InvokeIdentityArn string        `json:"invokeIdentityArn"`
	Kinesis           kinesisRecord `json:"kinesis"`
}

func newEventRecord(r *events.KinesisEventRecord) eventRecord {
	k := &r.Kinesis
	return eventRecord{
		AwsRegion: r.AwsRegion, EventID: r.EventID, EventName: r.EventName, EventSource: r.EventSource,
		EventSourceArn: r.EventSourceArn, EventVersion: r.EventVersion, InvokeIdentityArn: r.InvokeIdentityArn,
		Kinesis: kinesisRecord{
			ApproximateArrivalTimestamp: EpochSeconds(k.ApproximateArrivalTimestamp.UnixMilli()),
			Data:                        k.Data, EncryptionType: k.EncryptionType, PartitionKey: k.PartitionKey,
			SequenceNumber: k.SequenceNumber, KinesisSchemaVersion: k.KinesisSchemaVersion,
		},
	}
}

// EpochSeconds writes milliseconds since the epoch as seconds with up to
// three decimals, exactly: 1545084711166 → 1545084711.166.
func EpochSeconds(ms int64) json.Number {
	neg := ms < 0
	if neg {
		ms = -ms
	}
	s := strconv.FormatInt(ms/1000, 10)
	if frac := ms % 1000; frac != 0 {
		f := fmt.Sprintf("%03d", frac)
		for f[len(f)-1] == '0' {
			f = f[:len(f)-1]
		}
		s += "." + f
	}
	if neg {
		s = "-" + s
	}
	return json.Number(s)
}
