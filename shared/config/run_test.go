package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/stream"
)

// testNow is "now" for Validate in the tests.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// consumerARN is a consumer of validArgs' stream.
const consumerARN = "arn:aws:kinesis:us-east-1:123456789012:stream/words/consumer/efo:1525898737"

// validArgs is a run command line that passes validation.
var validArgs = []string{"-app-name", "words-app", "-stream-name", "words", "-handler", "print"}

func TestValidateOK(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		wantTS time.Time
	}{
		{name: "minimal", args: validArgs},
		{name: "target function", args: []string{"-app-name", "words-app", "-stream-name", "words", "-target-function", "arn:aws:lambda:us-east-2:123456789012:function:fn"}},
		{name: "TRIM_HORIZON", args: append([]string{"-initial-position", "TRIM_HORIZON"}, validArgs...)},
		{
			name:   "AT_TIMESTAMP",
			args:   append([]string{"-initial-position", "AT_TIMESTAMP", "-initial-timestamp", "2026-01-02T15:04:05.5Z"}, validArgs...),
			wantTS: time.Date(2026, 1, 2, 15, 4, 5, 5e8, time.UTC),
		},
		{name: "batch size 1", args: append([]string{"-batch-size", "1"}, validArgs...)},
		{name: "batch size 10000", args: append([]string{"-batch-size", "10000"}, validArgs...)},
		{name: "file on-failure", args: append([]string{"-on-failure", "file:///tmp/failed.jsonl"}, validArgs...)},
		{name: "s3 on-failure", args: append([]string{"-on-failure", "s3://bucket/prefix"}, validArgs...)},
		{name: "sqs url on-failure", args: append([]string{"-on-failure", "https://sqs.us-east-1.amazonaws.com/123456789012/failed"}, validArgs...)},
		{name: "sqs arn on-failure", args: append([]string{"-on-failure", "arn:aws:sqs:us-east-1:123456789012:failed.fifo"}, validArgs...)},
		{name: "sns on-failure", args: append([]string{"-on-failure", "arn:aws:sns:us-east-1:123456789012:failed"}, validArgs...)},
		{
			name:   "AT_TIMESTAMP now",
			args:   append([]string{"-initial-position", "AT_TIMESTAMP", "-initial-timestamp", "2026-06-01T12:00:00Z"}, validArgs...),
			wantTS: testNow,
		},
		{name: "wordcount", args: []string{"-app-name", "words-app", "-stream-name", "words", "-handler", "wordcount"}},
		{name: "windowed wordcount", args: []string{"-app-name", "words-app", "-stream-name", "words", "-handler", "wordcount", "-tumbling-window", "60s"}},
		{name: "consumer name", args: append([]string{"-consumer-name", "words-app.efo_1"}, validArgs...)},
		{name: "consumer ARN", args: append([]string{"-consumer-arn", consumerARN}, validArgs...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseRun(t, tt.args, nil)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = s.validate(testNow)
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if ts := s.Timestamp; !ts.Equal(tt.wantTS) {
				t.Errorf("timestamp = %v, want %v", ts, tt.wantTS)
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		vars  map[string]string
		parts []string // the one-line error names the setting and the value
	}{
		{"missing app-name", []string{"-stream-name", "words", "-handler", "print"}, nil, []string{"-app-name", "SHARDLINE_APP_NAME"}},
		{"app-name too short", []string{"-app-name", "ab", "-stream-name", "words", "-handler", "print"}, nil, []string{"-app-name", `"ab"`}},
		{"app-name bad characters", []string{"-app-name", "my app", "-stream-name", "words", "-handler", "print"}, nil, []string{"-app-name", `"my app"`}},
		{"missing stream-name", []string{"-app-name", "words-app", "-handler", "print"}, nil, []string{"-stream-name", "SHARDLINE_STREAM_NAME"}},
		{"bad initial-position", append([]string{"-initial-position", "EARLIEST"}, validArgs...), nil, []string{"-initial-position", "EARLIEST", "TRIM_HORIZON"}},
		{"lower-case initial-position", append([]string{"-initial-position", "latest"}, validArgs...), nil, []string{"-initial-position", "latest"}},
		{"AT_TIMESTAMP without timestamp", append([]string{"-initial-position", "AT_TIMESTAMP"}, validArgs...), nil, []string{"-initial-timestamp", "AT_TIMESTAMP"}},
		{"bad timestamp", append([]string{"-initial-position", "AT_TIMESTAMP", "-initial-timestamp", "yesterday"}, validArgs...), nil, []string{"-initial-timestamp", "yesterday"}},
		{"timestamp without AT_TIMESTAMP", append([]string{"-initial-timestamp", "2026-01-02T15:04:05Z"}, validArgs...), nil, []string{"-initial-timestamp", "2026-01-02T15:04:05Z", "LATEST"}},
		{"batch-size 0", append([]string{"-batch-size", "0"}, validArgs...), nil, []string{"-batch-size", "0", "10000"}},
		{"batch-size 10001", append([]string{"-batch-size", "10001"}, validArgs...), nil, []string{"-batch-size", "10001"}},
		{"batch-size from env", validArgs, map[string]string{"SHARDLINE_BATCH_SIZE": "20000"}, []string{"-batch-size", "20000"}},
		{"neither handler nor target", []string{"-app-name", "words-app", "-stream-name", "words"}, nil, []string{"-handler", "-target-function"}},
		{"both handler and target-function", append([]string{"-target-function", "fn"}, validArgs...), nil, []string{"-handler", `"print"`, "-target-function", `"fn"`}},
		{"unknown handler", []string{"-app-name", "words-app", "-stream-name", "words", "-handler", "nope"}, nil, []string{"-handler", `"nope"`, "print"}},
		{"on-failure bad bucket", append([]string{"-on-failure", "s3://My_Bucket/prefix"}, validArgs...), nil, []string{"-on-failure", "s3://My_Bucket/prefix", "s3://bucket/prefix"}},
		{"on-failure bad scheme", append([]string{"-on-failure", "ftp://host/x"}, validArgs...), nil, []string{"-on-failure", "ftp://host/x", "file:///", "SQS queue URL", "SNS topic ARN", "s3://bucket/prefix"}},
		{"on-failure bad queue URL", append([]string{"-on-failure", "https://sqs.us-east-1.amazonaws.com/failed"}, validArgs...), nil, []string{"-on-failure", "https://sqs.us-east-1.amazonaws.com/failed", "SQS queue URL"}},
		{"on-failure topic ARN without a name", append([]string{"-on-failure", "arn:aws:sns:us-east-1:123456789012"}, validArgs...), nil, []string{"-on-failure", "arn:aws:sns:us-east-1:123456789012", "SNS topic ARN"}},
		{"on-failure lambda ARN", append([]string{"-on-failure", "arn:aws:lambda:us-east-1:123456789012:function:f"}, validArgs...), nil, []string{"-on-failure", "arn:aws:lambda:us-east-1:123456789012:function:f", "SQS queue URL"}},
		{"on-failure relative file", append([]string{"-on-failure", "file://failed.jsonl"}, validArgs...), nil, []string{"-on-failure", "file://failed.jsonl"}},
		{"checkpoint-interval 0", append([]string{"-checkpoint-interval", "0s"}, validArgs...), nil, []string{"-checkpoint-interval", "0s"}},
		{"failover-time too short", append([]string{"-failover-time", "100ms"}, validArgs...), nil, []string{"-failover-time", "100ms"}},
		{"max-leases negative", append([]string{"-max-leases", "-1"}, validArgs...), nil, []string{"-max-leases", "-1"}},
		{"stream-name twice in the list", append(validArgs, "-stream-name", "a,b,a"), nil, []string{"-stream-name", "a,b,a", "a is named twice"}},
		{"stream-name list with an empty name", append(validArgs, "-stream-name", "a,,b"), nil, []string{"-stream-name", "a,,b", "empty name"}},
		{"stream-name 51 streams", append(validArgs, "-stream-name", "s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,t0,t1,t2,t3,t4,t5,t6,t7,t8,t9,u0,u1,u2,u3,u4,u5,u6,u7,u8,u9,v0,v1,v2,v3,v4,v5,v6,v7,v8,v9,w0,w1,w2,w3,w4,w5,w6,w7,w8,w9,x0"), nil, []string{"-stream-name", "51 streams", "at most 50"}},
		{"consumer-arn with several streams", append(validArgs, "-stream-name", "a,b", "-consumer-arn", "arn:aws:kinesis:us-east-1:123456789012:stream/a/consumer/c:1"), nil, []string{"-consumer-arn", "several streams", "-consumer-name"}},
		{"graceful-handoff-timeout negative", append([]string{"-graceful-handoff-timeout", "-1s"}, validArgs...), nil, []string{"-graceful-handoff-timeout", "-1s"}},
		{"former-stream-lease-retention 0", append([]string{"-former-stream-lease-retention", "0s"}, validArgs...), nil, []string{"-former-stream-lease-retention", "0s"}},
		{"max-retry-attempts -2", append([]string{"-max-retry-attempts", "-2"}, validArgs...), nil, []string{"-max-retry-attempts", "-2"}},
		{"max-record-age 0", append([]string{"-max-record-age", "0s"}, validArgs...), nil, []string{"-max-record-age", "0s"}},
		{"parallelization-factor 11", append([]string{"-parallelization-factor", "11"}, validArgs...), nil, []string{"-parallelization-factor", "11", "1–10"}},
		{"parallelization-factor 0", append([]string{"-parallelization-factor", "0"}, validArgs...), nil, []string{"-parallelization-factor", "0"}},
		{"max-record-age 59s", append([]string{"-max-record-age", "59s"}, validArgs...), nil, []string{"-max-record-age", "59s", "60s"}},
		{"tumbling-window 901s", append([]string{"-tumbling-window", "901s"}, validArgs...), nil, []string{"-tumbling-window", "15m1s", "900s"}},
		{"tumbling-window fraction", append([]string{"-tumbling-window", "1500ms"}, validArgs...), nil, []string{"-tumbling-window", "1.5s", "whole seconds"}},
		{"window with print", append([]string{"-tumbling-window", "60s"}, validArgs...), nil, []string{"-handler", `"print"`, "-tumbling-window", "wordcount"}},
		{"window with parallelization", []string{"-app-name", "words-app", "-stream-name", "words", "-handler", "wordcount", "-tumbling-window", "60s", "-parallelization-factor", "2"}, nil, []string{"-tumbling-window", "-parallelization-factor"}},
		{"six filters", append([]string{"-filter", "{}", "-filter", "{}", "-filter", "{}", "-filter", "{}", "-filter", "{}", "-filter", "{}"}, validArgs...), nil, []string{"-filter", "6", "at most 5"}},
		{"retry-max-attempts 0", append([]string{"-retry-max-attempts", "0"}, validArgs...), nil, []string{"-retry-max-attempts", "0"}},
		{"idle-time-between-reads 100ms", append([]string{"-idle-time-between-reads", "100ms"}, validArgs...), nil, []string{"-idle-time-between-reads", "100ms", "200ms or more", "5 GetRecords per second"}},
		{"idle-time-between-reads from env", validArgs, map[string]string{"SHARDLINE_IDLE_TIME_BETWEEN_READS": "0s"}, []string{"-idle-time-between-reads", "0s"}},
		{"bad log-level", append([]string{"-log-level", "loud"}, validArgs...), nil, []string{"-log-level", "loud"}},
		{"bad endpoint", append([]string{"-kinesis-endpoint", "localhost:4567"}, validArgs...), nil, []string{"-kinesis-endpoint", "localhost:4567"}},
		{"two endpoints on two lines", append([]string{"-lambda-endpoint", "http://127.0.0.1:3001\nhttp://127.0.0.1:3002"}, validArgs...), nil, []string{"-lambda-endpoint", "whitespace", "one http:// or https:// URL"}},
		{"endpoint with a path", append([]string{"-dynamodb-endpoint", "http://127.0.0.1:8000/tables"}, validArgs...), nil, []string{"-dynamodb-endpoint", "path"}},
		{"endpoint without a host", append([]string{"-kinesis-endpoint", "http://:4567"}, validArgs...), nil, []string{"-kinesis-endpoint", "no host"}},
		{"endpoint with a bad port", append([]string{"-kinesis-endpoint", "http://127.0.0.1:99999"}, validArgs...), nil, []string{"-kinesis-endpoint", `port "99999"`}},
		{"endpoint with a bad scheme", append([]string{"-kinesis-endpoint", "ftp://127.0.0.1"}, validArgs...), nil, []string{"-kinesis-endpoint", `scheme "ftp"`}},
		{"endpoint from env with a query", validArgs, map[string]string{"SHARDLINE_LAMBDA_ENDPOINT": "http://127.0.0.1:3001?x=1"}, []string{"-lambda-endpoint", "query"}},
		{"out-of-range keep", append([]string{"-out-of-range", "keep"}, validArgs...), nil, []string{"-out-of-range", `"keep"`, "drop or deliver"}},
		{"consumer name and ARN", append([]string{"-consumer-name", "efo", "-consumer-arn", consumerARN}, validArgs...), nil,
			[]string{`-consumer-name "efo" and -consumer-arn "` + consumerARN + `": allowed one of them`}},
		{"consumer name and ARN from env", validArgs, map[string]string{"SHARDLINE_CONSUMER_NAME": "efo", "SHARDLINE_CONSUMER_ARN": consumerARN},
			[]string{`-consumer-name "efo" and -consumer-arn`}},
		{"consumer name with a space", append([]string{"-consumer-name", "my efo"}, validArgs...), nil, []string{`-consumer-name "my efo": allowed 1–128 characters of a-z, A-Z, 0-9, _ . -`}},
		{"consumer name too long", append([]string{"-consumer-name", strings.Repeat("e", 129)}, validArgs...), nil, []string{"-consumer-name", "1–128"}},
		{"consumer ARN of a stream", append([]string{"-consumer-arn", "arn:aws:kinesis:us-east-1:123456789012:stream/words"}, validArgs...), nil,
			[]string{`-consumer-arn "arn:aws:kinesis:us-east-1:123456789012:stream/words": allowed a consumer ARN such as arn:aws:kinesis:`}},
		{"consumer ARN of another stream", append([]string{"-consumer-arn", "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/efo:1"}, validArgs...), nil,
			[]string{`-consumer-arn "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/efo:1" is a consumer of stream orders: allowed a consumer of -stream-name words`}},
		{"bad role", append([]string{"-dynamodb-role-arn", "admin"}, validArgs...), nil, []string{"-dynamodb-role-arn", "admin"}},
		{"timestamp in the future", append([]string{"-initial-position", "AT_TIMESTAMP", "-initial-timestamp", "2026-06-01T12:00:01Z"}, validArgs...), nil,
			[]string{`-initial-timestamp "2026-06-01T12:00:01Z" is in the future (now 2026-06-01T12:00:00Z)`}},
		{"timestamp from env in the future", append([]string{"-initial-position", "AT_TIMESTAMP"}, validArgs...), map[string]string{"SHARDLINE_INITIAL_TIMESTAMP": "2100-01-01T00:00:00Z"},
			[]string{"-initial-timestamp", "2100-01-01T00:00:00Z", "future"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseRun(t, tt.args, tt.vars)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			err = s.validate(testNow)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("validate = %v, want a *UsageError", err)
			}
			for _, p := range tt.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not contain %q", err, p)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
		})
	}
}

// TestPatterns: -filter adds a pattern each time; the variable holds one
// pattern or a JSON array; anything else says what is allowed.
func TestPatterns(t *testing.T) {
	s, err := parseRun(t, append([]string{"-filter", `{"data":{"a":[1]}}`, "-filter", `{"partitionKey":["k"]}`}, validArgs...), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Filters) != 2 || s.Filters[1] != `{"partitionKey":["k"]}` {
		t.Errorf("filters = %q, want the two patterns", s.Filters)
	}
	s, err = parseRun(t, validArgs, map[string]string{"SHARDLINE_FILTER": `[{"data":{"a":[1]}}, {"partitionKey":["k"]}]`})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Filters) != 2 || s.Filters[0] != `{"data":{"a":[1]}}` {
		t.Errorf("filters from the variable = %q, want the two patterns", s.Filters)
	}
	if _, err := parseRun(t, append([]string{"-filter", "type=order"}, validArgs...), nil); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("a non-JSON filter: %v, want an error naming the allowed form", err)
	}
	s, err = parseRun(t, validArgs, nil)
	if err != nil || !s.ReportItemFailures {
		t.Errorf("report-batch-item-failures default = %v (%v), want true", s.ReportItemFailures, err)
	}
}

// TestWorkerConfigOnFailure: the destination -on-failure names is built
// with the AWS clients, its S3 keys carrying the app name; none without it.
// TestWorkerConfigConsumer: -consumer-name and -consumer-arn reach the
// worker's configuration.
func TestWorkerConfigConsumer(t *testing.T) {
	for _, args := range [][]string{{"-consumer-name", "efo"}, {"-consumer-arn", consumerARN}} {
		s, err := parseRun(t, append(args, validArgs...), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.validate(testNow); err != nil {
			t.Fatal(err)
		}
		cfg := s.WorkerConfig(&awsconf.Clients{}, nil, nil)
		if got := [2]string{cfg.ConsumerName, cfg.ConsumerARN}; got != [2]string{s.ConsumerName, s.ConsumerARN} || got == [2]string{} {
			t.Errorf("%v: ConsumerName %q, ConsumerARN %q", args, cfg.ConsumerName, cfg.ConsumerARN)
		}
	}
}

func TestWorkerConfigOnFailure(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	clients, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ value, want string }{
		{"", "<nil>"},
		{"file:///tmp/failed.jsonl", "file:///tmp/failed.jsonl"},
		{"https://sqs.us-east-1.amazonaws.com/123456789012/failed", "SQS queue https://sqs.us-east-1.amazonaws.com/123456789012/failed"},
		{"arn:aws:sqs:us-east-1:123456789012:failed", "SQS queue arn:aws:sqs:us-east-1:123456789012:failed"},
		{"arn:aws:sns:us-east-1:123456789012:failed", "SNS topic arn:aws:sns:us-east-1:123456789012:failed"},
		{"s3://bucket/prefix", "S3 location s3://bucket/prefix"},
	} {
		args := validArgs
		if tt.value != "" {
			args = append([]string{"-on-failure", tt.value}, validArgs...)
		}
		s, err := parseRun(t, args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.validate(testNow); err != nil {
			t.Fatal(err)
		}
		cfg := s.WorkerConfig(clients, nil, nil)
		if got := fmt.Sprint(cfg.OnFailure); got != tt.want {
			t.Errorf("-on-failure %q: destination %s, want %s", tt.value, got, tt.want)
		}
	}
	// Without the service clients the destination exists and refuses.
	s, _ := parseRun(t, append([]string{"-on-failure", "s3://bucket/prefix"}, validArgs...), nil)
	cfg := s.WorkerConfig(&awsconf.Clients{}, nil, nil)
	err = cfg.OnFailure.Send(context.Background(), dispatch.Failure{ShardID: "shardId-000000000000",
		Records: []stream.Record{{ShardID: "shardId-000000000000", SequenceNumber: "1"}}})
	if err == nil || !strings.Contains(err.Error(), "no S3 client") {
		t.Errorf("Send without an S3 client: %v", err)
	}
}
