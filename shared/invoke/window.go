package invoke

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

// WindowHandler returns a stream.WindowHandler that invokes function
// synchronously with each windowed event, as Handler does with plain
// events: one Invoke request per call, the same errors (function errors,
// throttles, 413s, timeouts, a local host's error payload). The answer is
// read as Lambda reads a TimeWindowEventResponse:
// {"state": {...}, "batchItemFailures": [...]}. An empty or null answer,
// or one without "state" (or with "state": null), gives a response with a
// nil State, which the caller counts as a failed invocation, as Lambda
// does. State values must be JSON strings: Shardline carries state as
// map[string]string (aws-lambda-go's type, and Lambda's advice for Java),
// so a function that keeps numbers ({"1": 282}, as in Lambda's Python
// example) would get strings back on the next call; such an answer fails
// the call with an error that says so, rather than change its types.
func WindowHandler(client lambdaAPI, function string) stream.WindowHandler {
	return func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		payload, err := MarshalWindow(ev)
		if err != nil {
			return events.KinesisTimeWindowEventResponse{}, err
		}
		p, status, err := invokeOnce(ctx, client, function, payload)
		if err != nil {
			return events.KinesisTimeWindowEventResponse{}, err
		}
		if len(p) == 0 || string(p) == "null" {
			return events.KinesisTimeWindowEventResponse{}, nil // no state: the caller fails it
		}
		var answer struct {
			State             json.RawMessage                  `json:"state"`
			BatchItemFailures []events.KinesisBatchItemFailure `json:"batchItemFailures"`
			ErrorType         string                           `json:"errorType"`
			ErrorMessage      string                           `json:"errorMessage"`
		}
		if err := json.Unmarshal(p, &answer); err != nil {
			if fe := emulatorTimeout(function, p, status); fe != nil {
				return events.KinesisTimeWindowEventResponse{}, fe
			}
			return events.KinesisTimeWindowEventResponse{}, fmt.Errorf("function %s answered %q: not a KinesisTimeWindowEventResponse: %w", function, truncate(p), err)
		}
		if answer.ErrorType != "" || answer.ErrorMessage != "" {
			return events.KinesisTimeWindowEventResponse{}, &FunctionError{Function: function, Kind: "Unhandled",
				Type: answer.ErrorType, Message: answer.ErrorMessage, StatusCode: status}
		}
		state, err := parseState(answer.State)
		if err != nil {
			return events.KinesisTimeWindowEventResponse{}, fmt.Errorf("function %s answered a state Shardline cannot carry: %w", function, err)
		}
		resp := events.KinesisTimeWindowEventResponse{BatchItemFailures: answer.BatchItemFailures}
		resp.State = state
		return resp, nil
	}
}

// parseState reads a response's "state": nil when absent or null, else
// an object of strings.
func parseState(raw json.RawMessage) (map[string]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(raw, &values); err != nil {
		return nil, fmt.Errorf("state %q is not a JSON object", truncate(raw))
	}
	state := make(map[string]string, len(values))
	for k, v := range values {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("state[%q] is %s, not a string: window state values are strings (map[string]string); write %q", k, truncate(v), string(v))
		}
		state[k] = s
	}
	return state, nil
}

// MarshalWindow renders ev as Lambda's event source mapping does with a
// tumbling window, in the key order of Lambda's example: the records as
// Marshal writes them (approximateArrivalTimestamp in epoch seconds with
// at most millisecond digits), then "window" {start, end} in RFC 3339 UTC
// ("2020-12-09T07:04:00Z"), "state" as an object ({} for nil), "shardId",
// "eventSourceARN", "isFinalInvokeForWindow", "isWindowTerminatedEarly".
// Records is [] when there are none (a final invoke).
func MarshalWindow(ev events.KinesisTimeWindowEvent) ([]byte, error) {
	out := windowEvent{
		Records:                 make([]eventRecord, len(ev.Records)),
		Window:                  windowBounds{Start: rfc3339(ev.Window.Start.Time), End: rfc3339(ev.Window.End.Time)},
		State:                   ev.State,
		ShardID:                 ev.ShardID,
		EventSourceARN:          ev.EventSourceARN,
		IsFinalInvokeForWindow:  ev.IsFinalInvokeForWindow,
		IsWindowTerminatedEarly: ev.IsWindowTerminatedEarly,
	}
	for i := range ev.Records {
		out.Records[i] = newEventRecord(&ev.Records[i])
	}
	if out.State == nil {
		out.State = map[string]string{}
	}
	return json.Marshal(out)
}

type windowBounds struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type windowEvent struct {
	Records                 []eventRecord     `json:"Records"`
	Window                  windowBounds      `json:"window"`
	State                   map[string]string `json:"state"`
	ShardID                 string            `json:"shardId"`
	EventSourceARN          string            `json:"eventSourceARN"`
	IsFinalInvokeForWindow  bool              `json:"isFinalInvokeForWindow"`
	IsWindowTerminatedEarly bool              `json:"isWindowTerminatedEarly"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// windowFixed is what a windowed event adds to the plain one when every
// variable part is as short as it gets: empty window bounds, state {},
// shard id and ARN.
var windowFixed = func() int {
	b, _ := json.Marshal(windowEvent{Records: []eventRecord{}, State: map[string]string{}})
	return len(b) - len(`{"Records":[]}`) - len(`{}`)
}()

// rfc3339Len is the length of a window bound in years 0000–9999.
const rfc3339Len = len("2020-12-09T07:04:00Z")

// WindowOverhead is how many bytes MarshalWindow writes beyond the plain
// event's EventSize, for a call from shard shardID of the stream src names
// whose state's JSON is stateSize bytes (window.StateSize), with both
// flags false (each true is one byte shorter):
// len(MarshalWindow(ev)) == EventSize(n, sum) + WindowOverhead(...) for
// window bounds in years 0000–9999.
func WindowOverhead(src stream.Source, shardID string, stateSize int) int {
	return windowFixed + 2*rfc3339Len + stateSize + jsonStringLen(shardID) + jsonStringLen(src.StreamARN)
}
