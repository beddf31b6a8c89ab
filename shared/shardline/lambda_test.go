package shardline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/kpl"
)

// kinesisEvent is Lambda's trigger event with one record per data, the
// records' sequence numbers 1000, 1001, ...
func kinesisEvent(t *testing.T, datas ...[]byte) []byte {
	t.Helper()
	ev := events.KinesisEvent{}
	for i, d := range datas {
		seq := fmt.Sprint(1000 + i)
		ev.Records = append(ev.Records, events.KinesisEventRecord{
			EventSource: "aws:kinesis", EventID: "shardId-000000000000:" + seq, EventName: "aws:kinesis:record",
			EventSourceArn: "arn:aws:kinesis:us-east-1:123456789012:stream/s", AwsRegion: "us-east-1", EventVersion: "1.0",
			Kinesis: events.KinesisRecord{KinesisSchemaVersion: "1.0", PartitionKey: "pk", SequenceNumber: seq, Data: d},
		})
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func aggregate(t *testing.T, datas ...string) []byte {
	t.Helper()
	var recs []kpl.UserRecord
	for i, d := range datas {
		recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint("user-", i), Data: []byte(d)})
	}
	b, err := kpl.Aggregate(recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInvokeNativeTrigger: a Kinesis event from Lambda's trigger reaches the
// handler with KPL aggregates de-aggregated (each user record with its own
// partition key and eventID shardId:seq:sub); a user record the handler
// fails with ItemFailure is answered as its aggregate's sequence number,
// where Lambda resumes, and a plain record's as its own.
func TestInvokeNativeTrigger(t *testing.T) {
	var seen []events.KinesisEventRecord
	failData := "b"
	app := New(Handle(func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		seen = ev.Records
		var resp events.KinesisEventResponse
		for _, r := range ev.Records {
			if string(r.Kinesis.Data) == failData {
				resp.BatchItemFailures = append(resp.BatchItemFailures, ItemFailure(r))
				break
			}
		}
		return resp, nil
	}))
	payload := kinesisEvent(t, []byte("plain"), aggregate(t, "a", "b", "c"), []byte("last"))
	got, err := app.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var datas, keys, ids []string
	for _, r := range seen {
		datas, keys, ids = append(datas, string(r.Kinesis.Data)), append(keys, r.Kinesis.PartitionKey), append(ids, r.EventID)
	}
	if want := "plain a b c last"; strings.Join(datas, " ") != want {
		t.Errorf("handler saw %q, want %q", datas, want)
	}
	if want := "pk user-0 user-1 user-2 pk"; strings.Join(keys, " ") != want {
		t.Errorf("partition keys %q, want %q", keys, want)
	}
	if ids[2] != "shardId-000000000000:1001:1" {
		t.Errorf("eventID of the second user record %q, want shardId-000000000000:1001:1", ids[2])
	}
	resp, ok := got.(events.KinesisEventResponse)
	if !ok || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "1001" {
		t.Fatalf("answer %#v: want one failure naming the aggregate 1001", got)
	}
	failData = "plain"
	got, _ = app.Invoke(context.Background(), payload)
	if resp := got.(events.KinesisEventResponse); len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "1000" {
		t.Fatalf("answer %#v: want one failure naming the plain record 1000", got)
	}
}

// TestInvokeHandlerError: a handler's error is the invocation's error
// (Lambda retries the whole batch): never a success for records the
// handler did not finish.
func TestInvokeHandlerError(t *testing.T) {
	boom := errors.New("downstream refused")
	app := New(Handle(func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, boom
	}))
	if _, err := app.Invoke(context.Background(), kinesisEvent(t, aggregate(t, "a", "b"))); !errors.Is(err, boom) {
		t.Fatalf("Invoke error %v, want the handler's", err)
	}
}

// TestInvokeWindow: a windowed trigger event goes to the App's windowed
// handler, de-aggregated, with its state; a window's last call with no
// records is read too.
func TestInvokeWindow(t *testing.T) {
	var seen events.KinesisTimeWindowEvent
	app := New(Handle(func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		t.Error("the plain handler got a windowed event")
		return events.KinesisEventResponse{}, nil
	}), HandleWindow(func(_ context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		seen = ev
		return events.KinesisTimeWindowEventResponse{TimeWindowEventResponseProperties: events.TimeWindowEventResponseProperties{State: map[string]string{"n": fmt.Sprint(len(ev.Records))}}}, nil
	}))
	var ev map[string]any
	_ = json.Unmarshal(kinesisEvent(t, aggregate(t, "a", "b")), &ev)
	ev["window"] = map[string]string{"start": "2026-12-06T10:00:00Z", "end": "2026-12-06T10:01:00Z"}
	ev["state"] = map[string]string{"n": "7"}
	ev["shardId"] = "shardId-000000000000"
	ev["isFinalInvokeForWindow"] = false
	b, _ := json.Marshal(ev)
	got, err := app.Invoke(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen.Records) != 2 || seen.State["n"] != "7" || seen.ShardID != "shardId-000000000000" {
		t.Errorf("window handler saw %d records, state %v, shard %q", len(seen.Records), seen.State, seen.ShardID)
	}
	if resp := got.(events.KinesisTimeWindowEventResponse); resp.State["n"] != "2" {
		t.Errorf("answer state %v, want n=2", resp.State)
	}
	ev["Records"] = []any{}
	ev["isFinalInvokeForWindow"] = true
	b, _ = json.Marshal(ev)
	if _, err := app.Invoke(context.Background(), b); err != nil || len(seen.Records) != 0 || !seen.IsFinalInvokeForWindow {
		t.Errorf("final call with no records: err %v, final %v", err, seen.IsFinalInvokeForWindow)
	}
}

// TestInvokeUnknownEvent: an event the program cannot read is answered
// with an *EventError (errorType EventError on Lambda) naming what came.
func TestInvokeUnknownEvent(t *testing.T) {
	app := New(Handle(func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		t.Error("the handler was called")
		return events.KinesisEventResponse{}, nil
	}))
	for _, tt := range []struct{ payload, want string }{
		{`{"Records":[{"eventSource":"aws:sqs","body":"x"}]}`, `records from ["aws:sqs"]`},
		{`{"key1":"value1","key2":"value2"}`, "an event with keys [key1 key2]"},
		{`{"source":"aws.s3","detail-type":"Object Created"}`, `from source "aws.s3" (detail-type "Object Created")`},
		{`{"shardline":"replay"}`, `"shardline": "replay": allowed "poll"`},
		{`{"shardline":"poll","runFor":"soon"}`, `"runFor": "soon": allowed a positive duration`},
		{`"hello"`, `not a JSON object ("\"hello\"")`},
		{`{}`, "an empty event"},
	} {
		_, err := app.Invoke(context.Background(), json.RawMessage(tt.payload))
		var ee *EventError
		if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Invoke(%s) = %v, want an EventError containing %q", tt.payload, err, tt.want)
		}
	}
}

// TestClassify: the schedule's events are told from the trigger's.
func TestClassify(t *testing.T) {
	schedule, err := os.ReadFile("../../events/schedule.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		payload string
		want    int
	}{
		{string(schedule), kindSchedule},
		{`{"shardline":"poll"}`, kindSchedule},
		{`{"shardline":"poll","runFor":"5s"}`, kindSchedule},
		{`{"source":"aws.scheduler"}`, kindSchedule},
		{`{"Records":[{"eventSource":"aws:kinesis"}]}`, kindKinesis},
		{`{"Records":[{"eventSource":"aws:kinesis"}],"window":{"start":"x"},"shardId":"s"}`, kindWindow},
		{`{"Records":[],"window":{"start":"x"},"shardId":"s"}`, kindWindow},
		{`{"source":"aws.events","detail-type":"EC2 Instance State-change Notification"}`, kindUnknown},
	} {
		if got, _, _ := classify([]byte(tt.payload)); got != tt.want {
			t.Errorf("classify(%s) = %d, want %d", tt.payload, got, tt.want)
		}
	}
}

// TestNoHandlerForKinesis: the generic poller function (no handler of its
// own) answers a Kinesis event with SHARDLINE_HANDLER's handler, or an
// error saying to set it.
func TestNoHandlerForKinesis(t *testing.T) {
	app := New()
	app.fn = &function{app: app, getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
	_, err := app.Invoke(context.Background(), kinesisEvent(t, []byte("x")))
	if err == nil || !strings.Contains(err.Error(), "set SHARDLINE_HANDLER (allowed print, wordcount)") {
		t.Fatalf("Invoke = %v, want an error naming SHARDLINE_HANDLER", err)
	}
	app = New()
	var out strings.Builder
	app.fn = &function{app: app, getenv: func(k string) string { return map[string]string{"SHARDLINE_HANDLER": "print"}[k] }, stdout: &out, stderr: io.Discard}
	if _, err := app.Invoke(context.Background(), kinesisEvent(t, aggregate(t, "hello", "world"))); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), `"data":"`) != 2 || !strings.Contains(out.String(), `"data":"world"`) {
		t.Errorf("print wrote %q, want the two user records", out.String())
	}
}

// TestPanicsAtStart: a nil handler or a name registered twice panics with
// the name, before anything runs.
func TestPanicsAtStart(t *testing.T) {
	h := func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}
	for _, tt := range []struct {
		name string
		f    func()
		want string
	}{
		{"Start(nil)", func() { Start(nil) }, "shardline.Start: nil handler"},
		{"StartWindow(nil)", func() { StartWindow(nil) }, "shardline.StartWindow: nil handler"},
		{"Handle(nil)", func() { Handle(nil) }, "shardline.Handle: nil handler"},
		{"WithHandler nil", func() { New(WithHandler("orders", nil)) }, `nil handler "orders"`},
		{"WithHandler twice", func() { New(WithHandler("orders", h), WithHandler("orders", h)) }, `handler "orders" registered twice`},
		{"WithHandler built-in", func() { New(WithHandler("print", h)) }, `handler "print" registered twice`},
		{"WithHandler empty", func() { New(WithHandler("", h)) }, "empty handler name"},
	} {
		func() {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Errorf("%s: panic %v, want one containing %q", tt.name, r, tt.want)
				}
			}()
			tt.f()
		}()
	}
}

// TestFunctionBareVariablesIgnored: the function reads SHARDLINE_ variables only;
// SHARDLINE_DEADLINE_MARGIN must be positive.
func TestFunctionBareVariablesIgnored(t *testing.T) {
	env := map[string]string{
		"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words", "SHARDLINE_HANDLER": "print",
		"DEADLINE_MARGIN": "0s", "BATCH_SIZE": "0", "HANDLER": "nope", "STREAM_NAME": "other",
	}
	f := &function{app: New(), getenv: func(k string) string { return env[k] }}
	if err := f.parse(); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if f.settings.StreamName != "words" || f.settings.BatchSize != 100 || f.margin.String() != "5s" {
		t.Errorf("bare variables were read: stream %q, batch size %d, margin %s", f.settings.StreamName, f.settings.BatchSize, f.margin)
	}
	env["SHARDLINE_DEADLINE_MARGIN"] = "0s"
	if err := New().CheckLambda(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "SHARDLINE_DEADLINE_MARGIN=0s") {
		t.Errorf("CheckLambda with SHARDLINE_DEADLINE_MARGIN=0s = %v, want an error naming it", err)
	}
}

// TestOwnHandlerSettings: with a handler of its own, -handler is not
// required; the window setting must match the kind of handler; WithDefault
// sets a default a variable still beats, and a default that does not parse
// names itself.
func TestOwnHandlerSettings(t *testing.T) {
	h := func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}
	base := map[string]string{"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words"}
	get := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		}
	}
	if err := New(Handle(h)).CheckLambda(get(nil)); err != nil {
		t.Errorf("own handler, no -handler: %v", err)
	}
	if err := New().CheckLambda(get(nil)); err == nil || !strings.Contains(err.Error(), "-handler (SHARDLINE_HANDLER) or -target-function") {
		t.Errorf("no handler at all: %v, want -handler required", err)
	}
	if err := New(Handle(h)).CheckLambda(get(map[string]string{"SHARDLINE_TUMBLING_WINDOW": "60s"})); err == nil || !strings.Contains(err.Error(), "no windowed variant") {
		t.Errorf("plain handler with a window: %v", err)
	}
	wh := func(context.Context, events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		return events.KinesisTimeWindowEventResponse{}, nil
	}
	if err := New(HandleWindow(wh)).CheckLambda(get(nil)); err == nil || !strings.Contains(err.Error(), "-tumbling-window (SHARDLINE_TUMBLING_WINDOW) is required") {
		t.Errorf("windowed handler without a window: %v", err)
	}
	if err := New(Handle(h), WithHandler("orders", h)).CheckLambda(get(map[string]string{"SHARDLINE_HANDLER": "orders"})); err != nil {
		t.Errorf("-handler naming WithHandler's: %v", err)
	}
	if err := New(Handle(h)).CheckLambda(get(map[string]string{"SHARDLINE_HANDLER": "orders"})); err == nil || !strings.Contains(err.Error(), `-handler "orders": allowed print, wordcount`) {
		t.Errorf("unknown -handler: %v", err)
	}
	// WithDefault: a default, beaten by the variable.
	f := &function{app: New(Handle(h), WithDefault("batch-size", "7"), WithStreamName("fallback")), getenv: get(nil)}
	if err := f.parse(); err != nil || f.settings.BatchSize != 7 || f.settings.StreamName != "words" {
		t.Errorf("WithDefault: err %v, batch size %d (want 7), stream %q (want the variable's)", err, f.settings.BatchSize, f.settings.StreamName)
	}
	if err := New(Handle(h), WithDefault("batch-size", "many")).CheckLambda(get(nil)); err == nil || !strings.Contains(err.Error(), `default -batch-size "many"`) {
		t.Errorf("a default that does not parse: %v", err)
	}
}

// TestItemFailure: a user record is named seq:sub, a plain record seq.
func TestItemFailure(t *testing.T) {
	plain := events.KinesisEventRecord{EventID: "shardId-000000000001:49590", Kinesis: events.KinesisRecord{SequenceNumber: "49590"}}
	user := events.KinesisEventRecord{EventID: "shardId-000000000001:49591:3", Kinesis: events.KinesisRecord{SequenceNumber: "49591"}}
	if got := ItemFailure(plain).ItemIdentifier; got != "49590" {
		t.Errorf("plain: %q", got)
	}
	if got := ItemFailure(user).ItemIdentifier; got != "49591:3" {
		t.Errorf("user record: %q, want 49591:3", got)
	}
}

// TestFunctionSettingsAudit (issue 17): every variable the function reads
// either acts on Lambda (the same worker configuration `run` builds, which
// TestRunHonoursEverySetting checks flag by flag) or is warned about at
// start, naming it — never accepted and silently ignored. The table lists
// every variable: a new setting must say which it is.
func TestFunctionSettingsAudit(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	acts := "acts"
	audit := map[string]string{ // variable → "acts", or the value that is warned about
		"SHARDLINE_METRICS_ADDR": "127.0.0.1:9102", "SHARDLINE_METRICS_CLOUDWATCH": "true", "SHARDLINE_QUIET": "true",
		"SHARDLINE_CLOUDWATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/cw",
		"SHARDLINE_LAMBDA_ENDPOINT":     "http://127.0.0.1:3001", "SHARDLINE_FUNCTION_TIMEOUT": "30s",
	}
	for _, v := range []string{"SHARDLINE_APP_NAME", "SHARDLINE_STREAM_NAME", "SHARDLINE_REGION", "SHARDLINE_KINESIS_ENDPOINT",
		"SHARDLINE_DYNAMODB_ENDPOINT", "SHARDLINE_KINESIS_ROLE_ARN", "SHARDLINE_DYNAMODB_ROLE_ARN", "SHARDLINE_LOG_LEVEL",
		"SHARDLINE_LOG_FORMAT", "SHARDLINE_INITIAL_POSITION", "SHARDLINE_INITIAL_TIMESTAMP", "SHARDLINE_CHECKPOINT_INTERVAL",
		"SHARDLINE_HANDLER", "SHARDLINE_TARGET_FUNCTION", "SHARDLINE_WORKER_ID", "SHARDLINE_FAILOVER_TIME", "SHARDLINE_MAX_LEASES",
		"SHARDLINE_BATCH_SIZE", "SHARDLINE_MAX_BATCHING_WINDOW", "SHARDLINE_PARALLELIZATION_FACTOR", "SHARDLINE_BISECT_ON_ERROR",
		"SHARDLINE_REPORT_BATCH_ITEM_FAILURES", "SHARDLINE_TUMBLING_WINDOW", "SHARDLINE_FILTER", "SHARDLINE_MAX_RETRY_ATTEMPTS",
		"SHARDLINE_MAX_RECORD_AGE", "SHARDLINE_ON_FAILURE", "SHARDLINE_OUT_OF_RANGE", "SHARDLINE_HANDLER_TIMEOUT",
		"SHARDLINE_RETRY_WAIT_TIME", "SHARDLINE_IDLE_TIME_BETWEEN_READS", "SHARDLINE_RETRY_MAX_ATTEMPTS", "SHARDLINE_METRICS_LEVEL",
		"SHARDLINE_METRICS_DIMENSIONS", "SHARDLINE_DEADLINE_MARGIN", "SHARDLINE_CONSUMER_NAME", "SHARDLINE_CONSUMER_ARN",
		"SHARDLINE_GRACEFUL_HANDOFF_TIMEOUT", "SHARDLINE_FORMER_STREAM_LEASE_RETENTION"} {
		audit[v] = acts
	}
	h := func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	}
	for _, v := range New(Handle(h)).LambdaVariables() {
		value, ok := audit[v]
		switch {
		case !ok:
			t.Errorf("%s is not in the audit: say whether it acts on Lambda or is warned about", v)
			continue
		case value == acts:
			continue
		}
		var logs strings.Builder
		env := map[string]string{"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words", "SHARDLINE_REGION": "us-east-1", v: value}
		app := New(Handle(h), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		f := &function{app: app, getenv: func(k string) string { return env[k] }, stdout: io.Discard, stderr: io.Discard}
		if err := f.init(context.Background()); err != nil {
			t.Errorf("%s=%s: %v", v, value, err)
			continue
		}
		if n := strings.Count(logs.String(), "level=WARN msg=\""+v+" has no effect"); n != 1 {
			t.Errorf("%s=%s: %d WARN lines naming it, want 1:\n%s", v, value, n, logs.String())
		}
	}
	for v := range audit {
		if !slices.Contains(New(Handle(h)).LambdaVariables(), v) {
			t.Errorf("the audit lists %s, which the function does not read", v)
		}
	}
}

// TestUnusedSettings: `run` warns about settings that have no effect
// beside the others; none when they act.
func TestUnusedSettings(t *testing.T) {
	for _, tt := range []struct {
		given map[string]bool
		s     Settings
		want  []string
	}{
		{map[string]bool{"lambda-endpoint": true, "function-timeout": true}, Settings{MetricsLevel: "DETAILED"},
			[]string{"-lambda-endpoint has no effect without -target-function", "-function-timeout has no effect without -target-function"}},
		{map[string]bool{"lambda-endpoint": true}, Settings{TargetFunction: "f", MetricsLevel: "DETAILED"}, nil},
		{map[string]bool{"cloudwatch-role-arn": true}, Settings{MetricsLevel: "DETAILED"}, []string{"-cloudwatch-role-arn has no effect without -metrics-cloudwatch"}},
		{map[string]bool{"cloudwatch-role-arn": true}, Settings{MetricsCloudWatch: true, MetricsLevel: "DETAILED"}, nil},
		{map[string]bool{"metrics-cloudwatch": true, "metrics-dimensions": true}, Settings{MetricsCloudWatch: true, MetricsLevel: "NONE"},
			[]string{"-metrics-dimensions has no effect at -metrics-level NONE", "-metrics-cloudwatch has no effect at -metrics-level NONE"}},
		{map[string]bool{"idle-time-between-reads": true}, Settings{ConsumerName: "c", MetricsLevel: "DETAILED"},
			[]string{"-idle-time-between-reads has no effect with -consumer-name: Kinesis pushes the records"}},
		{map[string]bool{"idle-time-between-reads": true}, Settings{MetricsLevel: "DETAILED"}, nil},
	} {
		got := unused(tt.given, &tt.s, false)
		if len(got) != len(tt.want) {
			t.Errorf("unused(%v) = %q, want %d lines: %q", tt.given, got, len(tt.want), tt.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tt.want[i]) {
				t.Errorf("unused(%v)[%d] = %q, want it to start with %q", tt.given, i, got[i], tt.want[i])
			}
		}
	}
}
