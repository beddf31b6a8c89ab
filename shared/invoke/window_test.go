package invoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// windowGolden is the JSON MarshalWindow writes for testWindowEvent.
var windowGolden = filepath.Join("testdata", "window-event.json")

// testWindowEvent is Lambda's documented KinesisTimeWindowEvent, with the
// records of testEvent.
func testWindowEvent() events.KinesisTimeWindowEvent {
	start := time.Date(2020, 12, 9, 7, 4, 0, 0, time.UTC)
	return events.KinesisTimeWindowEvent{
		KinesisEvent: testEvent(),
		TimeWindowProperties: events.TimeWindowProperties{
			Window: events.Window{
				Start: events.RFC3339EpochTime{Time: start},
				// A window bound in another zone is written in UTC.
				End: events.RFC3339EpochTime{Time: start.Add(2 * time.Minute).In(time.FixedZone("CET", 3600))},
			},
			State:          map[string]string{"1": "282", "2": "715"},
			ShardID:        "shardId-000000000006",
			EventSourceARN: "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",
		},
	}
}

// readGolden reads a golden file, after writing got to it under -update
// (nil got only reads).
func readGolden(t *testing.T, path string, got []byte) []byte {
	t.Helper()
	if *update && got != nil {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	return bytes.TrimSuffix(want, []byte("\n"))
}

// TestMarshalWindowGolden: the windowed event is written as Lambda's
// example shows it, key by key, and reads back into the same event.
func TestMarshalWindowGolden(t *testing.T) {
	ev := testWindowEvent()
	got, err := MarshalWindow(ev)
	if err != nil {
		t.Fatal(err)
	}
	if want := readGolden(t, windowGolden, got); !bytes.Equal(got, want) {
		t.Errorf("MarshalWindow:\n got %s\nwant %s", got, want)
	}
	// The records are exactly what Marshal writes for the plain event.
	plain, err := Marshal(ev.KinesisEvent)
	if err != nil {
		t.Fatal(err)
	}
	if prefix := bytes.TrimSuffix(plain, []byte("}")); !bytes.HasPrefix(got, prefix) {
		t.Errorf("windowed event does not start with the plain event's records:\n got %s\nwant %s…", got, prefix)
	}
	for _, want := range []string{`"window":{"start":"2020-12-09T07:04:00Z","end":"2020-12-09T07:06:00Z"}`,
		`"state":{"1":"282","2":"715"}`, `"isFinalInvokeForWindow":false`, `"isWindowTerminatedEarly":false`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("MarshalWindow does not contain %s", want)
		}
	}
	var back events.KinesisTimeWindowEvent
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !back.Window.Start.Equal(ev.Window.Start.Time) || !back.Window.End.Equal(ev.Window.End.Time) {
		t.Errorf("window reads back as %v–%v, want %v–%v", back.Window.Start, back.Window.End, ev.Window.Start, ev.Window.End)
	}
	if !reflect.DeepEqual(back.TimeWindowProperties.State, ev.State) || back.ShardID != ev.ShardID || back.EventSourceARN != ev.EventSourceARN {
		t.Errorf("window properties read back as %+v, want %+v", back.TimeWindowProperties, ev.TimeWindowProperties)
	}
	if len(back.Records) != len(ev.Records) || back.Records[1].EventID != ev.Records[1].EventID {
		t.Errorf("records read back as %+v", back.Records)
	}
}

// TestMarshalWindowFinal: a final invoke has an empty Records list, a nil
// state is {}, and the flags are written.
func TestMarshalWindowFinal(t *testing.T) {
	ev := testWindowEvent()
	ev.Records = nil
	ev.State = nil
	ev.IsFinalInvokeForWindow, ev.IsWindowTerminatedEarly = true, true
	got, err := MarshalWindow(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Records":[],"window":{"start":"2020-12-09T07:04:00Z","end":"2020-12-09T07:06:00Z"},"state":{},` +
		`"shardId":"shardId-000000000006","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream",` +
		`"isFinalInvokeForWindow":true,"isWindowTerminatedEarly":true}`
	if string(got) != want {
		t.Errorf("MarshalWindow:\n got %s\nwant %s", got, want)
	}
}

// TestWindowOverhead: the plain event's size plus WindowOverhead is
// exactly what MarshalWindow writes.
func TestWindowOverhead(t *testing.T) {
	base := testWindowEvent()
	recs := []stream.Record{
		{ShardID: "shardId-000000000006", SequenceNumber: "1", PartitionKey: "<k>", Data: []byte("data"), ApproximateArrivalTimestamp: time.UnixMilli(1607497475123)},
		{ShardID: "shardId-000000000006", SequenceNumber: "2", Aggregated: true, SubSequenceNumber: 3, ApproximateArrivalTimestamp: time.UnixMilli(1607497476000)},
	}
	states := []map[string]string{nil, {}, {"1": "282"}, {"<&>": "\"\n\u2028é"}, {"k": strings.Repeat("x", 1000)}}
	shards := []string{"shardId-000000000006", "", "shard\"odd<>"}
	for _, src := range sizerSources {
		for _, n := range []int{0, 1, 2} {
			for _, state := range states {
				for _, shard := range shards {
					ev := events.KinesisTimeWindowEvent{KinesisEvent: stream.Event(src, recs[:n]), TimeWindowProperties: base.TimeWindowProperties}
					ev.State, ev.ShardID, ev.EventSourceARN = state, shard, src.StreamARN
					b, err := MarshalWindow(ev)
					if err != nil {
						t.Fatal(err)
					}
					s := NewSizer(src)
					sum := 0
					for i := range recs[:n] {
						sum += s.Record(&recs[i])
					}
					stateSize := len("{}")
					if state != nil {
						sb, _ := json.Marshal(state)
						stateSize = len(sb)
					}
					if got, want := EventSize(n, sum)+WindowOverhead(src, shard, stateSize), len(b); got != want {
						t.Errorf("EventSize + WindowOverhead = %d, MarshalWindow wrote %d bytes: %s", got, want, b)
					}
				}
			}
		}
	}
}

// invokeCapture is a fake Invoke API on 127.0.0.1 that keeps the request
// bodies and answers with a.
func invokeCapture(t *testing.T, a answer) (*httptest.Server, func() [][]byte) {
	t.Helper()
	var (
		mu     sync.Mutex
		bodies [][]byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return srv, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), bodies...)
	}
}

// TestWindowHandlerHTTP: the function receives the golden JSON in one
// Invoke request, and its answer is read as Lambda reads it.
func TestWindowHandlerHTTP(t *testing.T) {
	const fn = "windowed"
	tests := []struct {
		name     string
		answer   answer
		want     events.KinesisTimeWindowEventResponse
		wantIs   error
		wantFE   *FunctionError
		wantText string
	}{
		{
			name:   "state and batchItemFailures",
			answer: answer{200, nil, `{"state":{"1":"283","2":"715"},"batchItemFailures":[{"itemIdentifier":"49590338271490256608559692540925702759324208523137515618:2"}]}`},
			want: events.KinesisTimeWindowEventResponse{
				TimeWindowEventResponseProperties: events.TimeWindowEventResponseProperties{State: map[string]string{"1": "283", "2": "715"}},
				BatchItemFailures:                 []events.KinesisBatchItemFailure{{ItemIdentifier: "49590338271490256608559692540925702759324208523137515618:2"}},
			},
		},
		{
			name:   "empty state",
			answer: answer{200, nil, `{"state":{}}`},
			want:   events.KinesisTimeWindowEventResponse{TimeWindowEventResponseProperties: events.TimeWindowEventResponseProperties{State: map[string]string{}}},
		},
		{name: "no state: nil, for the caller to fail", answer: answer{200, nil, `{"batchItemFailures":[]}`}, want: events.KinesisTimeWindowEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}},
		{name: "null state", answer: answer{200, nil, `{"state":null}`}},
		{name: "null answer", answer: answer{200, nil, `null`}},
		{name: "empty answer", answer: answer{200, nil, ``}},
		{name: "number in the state", answer: answer{200, nil, `{"state":{"1":282}}`}, wantText: `state["1"] is 282, not a string`},
		{name: "state not an object", answer: answer{200, nil, `{"state":[1]}`}, wantText: "not a JSON object"},
		{name: "not JSON", answer: answer{200, nil, `ok`}, wantText: "not a KinesisTimeWindowEventResponse"},
		{
			name:   "function error on Lambda",
			answer: answer{200, map[string]string{"X-Amz-Function-Error": "Unhandled"}, `{"errorType":"errorString","errorMessage":"boom"}`},
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Type: "errorString", Message: "boom", StatusCode: 200},
		},
		{
			name:   "function error on the emulator, no header",
			answer: answer{200, nil, `{"errorType":"errorString","errorMessage":"boom"}`},
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Type: "errorString", Message: "boom", StatusCode: 200},
		},
		{
			name:   "timeout on the emulator",
			answer: answer{200, nil, "Task timed out after 3.00 seconds"},
			wantIs: stream.ErrHandlerTimeout,
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Type: "Sandbox.Timedout", Message: "Task timed out after 3.00 seconds", StatusCode: 200},
		},
		{
			name:   "crash on a local host",
			answer: answer{502, nil, `{"errorMessage":"Runtime exited with error: exit status 2","errorType":"Runtime.ExitError"}`},
			wantFE: &FunctionError{Function: fn, Kind: "Unhandled", Type: "Runtime.ExitError", Message: "Runtime exited with error: exit status 2", StatusCode: 502},
		},
		{
			name:   "throttled",
			answer: answer{429, map[string]string{"X-Amzn-ErrorType": "TooManyRequestsException"}, `{"Message":"Rate Exceeded."}`},
			wantIs: stream.ErrThrottled,
		},
		{
			name:   "too large",
			answer: answer{413, map[string]string{"X-Amzn-ErrorType": "RequestTooLargeException"}, `{"Message":"too large"}`},
			wantIs: stream.ErrTooLarge,
		},
	}
	golden := readGolden(t, windowGolden, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, bodies := invokeCapture(t, tt.answer)
			got, err := WindowHandler(sdkClient(t, srv.URL, 0), fn)(context.Background(), testWindowEvent())
			if b := bodies(); len(b) != 1 {
				t.Errorf("%d Invoke requests, want 1", len(b))
			} else if !bytes.Equal(b[0], golden) {
				t.Errorf("request body:\n got %s\nwant %s", b[0], golden)
			}
			wantErr := tt.wantIs != nil || tt.wantFE != nil || tt.wantText != ""
			if !wantErr {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("response = %#v, want %#v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; response %#v", got)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %q", err, tt.wantIs)
			}
			var fe *FunctionError
			switch {
			case tt.wantFE != nil && !errors.As(err, &fe):
				t.Errorf("error %q (%T) is not a *FunctionError", err, err)
			case tt.wantFE != nil && *fe != *tt.wantFE:
				t.Errorf("FunctionError = %+v, want %+v", *fe, *tt.wantFE)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}
