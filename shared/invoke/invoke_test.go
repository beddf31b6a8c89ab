package invoke

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shardline/shardline/shared/stream"
)

func TestEpochSeconds(t *testing.T) {
	tests := []struct {
		ms   int64
		want string
	}{
		{1545084711166, "1545084711.166"},
		{1545084711000, "1545084711"},
		{1545084711001, "1545084711.001"},
		{1545084711010, "1545084711.01"},
		{1545084711100, "1545084711.1"},
		{1545084711120, "1545084711.12"},
		{0, "0"},
		{1, "0.001"},
		{999, "0.999"},
		{-1500, "-1.5"},
		{-1, "-0.001"},
	}
	for _, tt := range tests {
		if got := EpochSeconds(tt.ms); string(got) != tt.want {
			t.Errorf("EpochSeconds(%d) = %q, want %q", tt.ms, got, tt.want)
		}
	}
}

func testEvent() events.KinesisEvent {
	src := stream.Source{
		StreamARN:         "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
		Region:            "us-east-2",
		InvokeIdentityARN: "arn:aws:iam::123456789012:role/lambda-role",
	}
	return stream.Event(src, []stream.Record{
		{ShardID: "shardId-000000000006", SequenceNumber: "49590338271490256608559692538361571095921575989136588898",
			PartitionKey: "partitionKey-0", Data: []byte("Hello, this is a test."), ApproximateArrivalTimestamp: time.UnixMilli(1545084650987)},
		{ShardID: "shardId-000000000006", SequenceNumber: "49590338271490256608559692540925702759324208523137515618",
			SubSequenceNumber: 2, Aggregated: true, PartitionKey: "pk", Data: []byte{0, 1, 0xff},
			ApproximateArrivalTimestamp: time.UnixMilli(1545084711166), EncryptionType: "KMS"},
		{ShardID: "shardId-000000000006", SequenceNumber: "49590338271490256608559692540925702759324208523137515619",
			PartitionKey: "pk", ApproximateArrivalTimestamp: time.UnixMilli(1545084711000)},
	})
}

func TestMarshal(t *testing.T) {
	ev := testEvent()
	ours, err := Marshal(ev)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	theirs, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(b []byte) map[string]any {
		t.Helper()
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		return m
	}
	got, want := decode(ours), decode(theirs)
	wantStamps := []string{"1545084650.987", "1545084711.166", "1545084711"}
	gotRecs := got["Records"].([]any)
	wantRecs := want["Records"].([]any)
	if len(gotRecs) != len(wantRecs) {
		t.Fatalf("Marshal has %d records, want %d", len(gotRecs), len(wantRecs))
	}
	for i := range gotRecs {
		gk := gotRecs[i].(map[string]any)["kinesis"].(map[string]any)
		wk := wantRecs[i].(map[string]any)["kinesis"].(map[string]any)
		if got, want := gk["approximateArrivalTimestamp"], json.Number(wantStamps[i]); got != want {
			t.Errorf("record %d approximateArrivalTimestamp = %v, want %v", i, got, want)
		}
		delete(gk, "approximateArrivalTimestamp")
		delete(wk, "approximateArrivalTimestamp")
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Marshal differs from json.Marshal beyond the timestamps:\n got %s\nwant %s", ours, theirs)
	}
	// The output decodes back into the same event (to the millisecond).
	var back events.KinesisEvent
	if err := json.Unmarshal(ours, &back); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	for i := range back.Records {
		g, w := back.Records[i].Kinesis.ApproximateArrivalTimestamp.Time, ev.Records[i].Kinesis.ApproximateArrivalTimestamp.Time
		if d := g.Sub(w); d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("record %d timestamp decodes to %v, want %v", i, g, w)
		}
	}
}

// fakeLambda answers Invoke with out or err and records the input.
type fakeLambda struct {
	in  []*lambda.InvokeInput
	out *lambda.InvokeOutput
	err error
}

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.in = append(f.in, in)
	if f.err != nil {
		return nil, f.err
	}
	return f.out, nil
}

var _ lambdaAPI = (*fakeLambda)(nil)

func TestHandler(t *testing.T) {
	const fn = "arn:aws:lambda:us-east-2:123456789012:function:consumer"
	errNet := errors.New("connection refused")
	tests := []struct {
		name     string
		out      *lambda.InvokeOutput
		err      error
		want     events.KinesisEventResponse
		wantFE   *FunctionError
		wantErr  error  // errors.Is target
		wantText string // error text contains
	}{
		{name: "empty payload", out: &lambda.InvokeOutput{StatusCode: 200}},
		{name: "null payload", out: &lambda.InvokeOutput{StatusCode: 200, Payload: []byte("null")}},
		{name: "null payload with spaces", out: &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(" null\n")}},
		{name: "empty object", out: &lambda.InvokeOutput{StatusCode: 200, Payload: []byte("{}")}},
		{
			name: "batch item failures",
			out:  &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"batchItemFailures":[{"itemIdentifier":"49590338271490256608559692540925702759324208523137515618"},{"itemIdentifier":"1:2"}]}`)},
			want: events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{
				{ItemIdentifier: "49590338271490256608559692540925702759324208523137515618"}, {ItemIdentifier: "1:2"}}},
		},
		{
			name: "unhandled function error",
			out: &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"),
				Payload: []byte(`{"errorMessage":"bad record","errorType":"*errors.errorString"}`)},
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Type: "*errors.errorString", Message: "bad record", StatusCode: 200},
		},
		{
			name:   "function error with a payload that is not JSON",
			out:    &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"), Payload: []byte("Task timed out")},
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Message: "Task timed out", StatusCode: 200},
		},
		{
			name:     "unparsable payload",
			out:      &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`"ok"`)},
			wantText: "not a KinesisEventResponse",
		},
		{
			name:     "truncated payload",
			out:      &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"batchItemFailures":[`)},
			wantText: fn,
		},
		{
			name:    "invoke fails",
			err:     errNet,
			wantErr: errNet,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeLambda{out: tt.out, err: tt.err}
			h := Handler(fake, fn)
			ev := testEvent()
			got, err := h(context.Background(), ev)
			if len(fake.in) != 1 {
				t.Fatalf("Invoke called %d times, want 1", len(fake.in))
			}
			in := fake.in[0]
			if got, want := aws.ToString(in.FunctionName), fn; got != want {
				t.Errorf("FunctionName = %q, want %q", got, want)
			}
			if got, want := in.InvocationType, types.InvocationTypeRequestResponse; got != want {
				t.Errorf("InvocationType = %q, want %q", got, want)
			}
			wantPayload, _ := Marshal(ev)
			if got, want := string(in.Payload), string(wantPayload); got != want {
				t.Errorf("Payload = %s, want %s", got, want)
			}
			switch {
			case tt.wantFE != nil:
				var fe *FunctionError
				if !errors.As(err, &fe) {
					t.Fatalf("error = %v, want a *FunctionError", err)
				}
				if *fe != *tt.wantFE {
					t.Errorf("FunctionError = %+v, want %+v", *fe, *tt.wantFE)
				}
				for _, part := range []string{fn, tt.wantFE.Kind, tt.wantFE.Type, tt.wantFE.Message} {
					if !strings.Contains(err.Error(), part) {
						t.Errorf("error %q does not contain %q", err, part)
					}
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error = %v, want %v", err, tt.wantErr)
				}
			case tt.wantText != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantText) {
					t.Errorf("error = %v, want one containing %q", err, tt.wantText)
				}
			default:
				if err != nil {
					t.Fatalf("error = %v, want nil", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("response = %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

// TestHandlerErrorPayloadWithoutHeader: the Lambda runtime interface
// emulator answers a function error with status 200, the error payload and
// no X-Amz-Function-Error header
// (https://github.com/aws/aws-lambda-runtime-interface-emulator/issues/20).
// That payload must fail the batch, not read as a KinesisEventResponse with
// no failures (which would checkpoint past records never handled).
func TestHandlerErrorPayloadWithoutHeader(t *testing.T) {
	const fn = "consumer"
	fake := &fakeLambda{out: &lambda.InvokeOutput{StatusCode: 200,
		Payload: []byte(`{"errorMessage":"bad record","errorType":"*errors.errorString","stackTrace":[]}`)}}
	_, err := Handler(fake, fn)(context.Background(), testEvent())
	var fe *FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v, want a *FunctionError", err)
	}
	if got, want := *fe, (FunctionError{Function: fn, Kind: "Unhandled", Type: "*errors.errorString", Message: "bad record", StatusCode: 200}); got != want {
		t.Errorf("FunctionError = %+v, want %+v", got, want)
	}
}
