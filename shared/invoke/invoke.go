package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shardline/shardline/shared/stream"
)

// lambdaAPI lists the Lambda call made here.
type lambdaAPI interface {
	Invoke(context.Context, *lambda.InvokeInput, ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ lambdaAPI = (*lambda.Client)(nil)

// FunctionError is a function's own error: Lambda's X-Amz-Function-Error
// ("Unhandled" or "Handled") with the error payload it returned.
type FunctionError struct {
	Function string
	Kind     string // X-Amz-Function-Error
	Type     string // errorType
	Message  string // errorMessage
}

func (e *FunctionError) Error() string {
	msg := fmt.Sprintf("function %s failed (%s)", e.Function, e.Kind)
	if e.Type != "" {
		msg += ": " + e.Type
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Handler returns a stream.Handler that invokes function synchronously
// (RequestResponse) with each event.
func Handler(client lambdaAPI, function string) stream.Handler {
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		payload, err := Marshal(ev)
		if err != nil {
			return events.KinesisEventResponse{}, err
		}
		out, err := client.Invoke(ctx, &lambda.InvokeInput{
			FunctionName:   aws.String(function),
			InvocationType: types.InvocationTypeRequestResponse,
			Payload:        payload,
		})
		if err != nil {
			return events.KinesisEventResponse{}, fmt.Errorf("invoke %s: %w", function, err)
		}
		if out.FunctionError != nil {
			fe := &FunctionError{Function: function, Kind: aws.ToString(out.FunctionError)}
			var body struct {
				Type    string `json:"errorType"`
				Message string `json:"errorMessage"`
			}
			if json.Unmarshal(out.Payload, &body) == nil {
				fe.Type, fe.Message = body.Type, body.Message
			} else {
				fe.Message = string(out.Payload)
			}
			return events.KinesisEventResponse{}, fe
		}
		p := bytes.TrimSpace(out.Payload)
		if len(p) == 0 || string(p) == "null" {
			return events.KinesisEventResponse{}, nil // an empty or null answer is success
		}
		var answer struct {
			events.KinesisEventResponse
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}
		if err := json.Unmarshal(p, &answer); err != nil {
			// Lambda treats an answer it cannot read as a failed batch.
			return events.KinesisEventResponse{}, fmt.Errorf("function %s answered %q: not a KinesisEventResponse: %w", function, truncate(p), err)
		}
		if answer.ErrorType != "" || answer.ErrorMessage != "" {
			// The runtime interface emulator reports a function error
			// with status 200 and no X-Amz-Function-Error header.
			return events.KinesisEventResponse{}, &FunctionError{Function: function, Kind: "Unhandled", Type: answer.ErrorType, Message: answer.ErrorMessage}
		}
		return answer.KinesisEventResponse, nil
	}
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
