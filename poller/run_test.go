package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

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
		{name: "wordcount", args: []string{"-app-name", "words-app", "-stream-name", "words", "-handler", "wordcount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseRun(t, tt.args, nil)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			ts, err := s.validate()
			if err != nil {
				t.Fatalf("validate: %v", err)
			}
			if !ts.Equal(tt.wantTS) {
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
		{"missing app-name", []string{"-stream-name", "words", "-handler", "print"}, nil, []string{"-app-name", "APP_NAME"}},
		{"app-name too short", []string{"-app-name", "ab", "-stream-name", "words", "-handler", "print"}, nil, []string{"-app-name", `"ab"`}},
		{"app-name bad characters", []string{"-app-name", "my app", "-stream-name", "words", "-handler", "print"}, nil, []string{"-app-name", `"my app"`}},
		{"missing stream-name", []string{"-app-name", "words-app", "-handler", "print"}, nil, []string{"-stream-name", "STREAM_NAME"}},
		{"bad initial-position", append([]string{"-initial-position", "EARLIEST"}, validArgs...), nil, []string{"-initial-position", "EARLIEST", "TRIM_HORIZON"}},
		{"lower-case initial-position", append([]string{"-initial-position", "latest"}, validArgs...), nil, []string{"-initial-position", "latest"}},
		{"AT_TIMESTAMP without timestamp", append([]string{"-initial-position", "AT_TIMESTAMP"}, validArgs...), nil, []string{"-initial-timestamp", "AT_TIMESTAMP"}},
		{"bad timestamp", append([]string{"-initial-position", "AT_TIMESTAMP", "-initial-timestamp", "yesterday"}, validArgs...), nil, []string{"-initial-timestamp", "yesterday"}},
		{"timestamp without AT_TIMESTAMP", append([]string{"-initial-timestamp", "2026-01-02T15:04:05Z"}, validArgs...), nil, []string{"-initial-timestamp", "2026-01-02T15:04:05Z", "LATEST"}},
		{"batch-size 0", append([]string{"-batch-size", "0"}, validArgs...), nil, []string{"-batch-size", "0", "10000"}},
		{"batch-size 10001", append([]string{"-batch-size", "10001"}, validArgs...), nil, []string{"-batch-size", "10001"}},
		{"batch-size from env", validArgs, map[string]string{"BATCH_SIZE": "20000"}, []string{"-batch-size", "20000"}},
		{"neither handler nor target", []string{"-app-name", "words-app", "-stream-name", "words"}, nil, []string{"-handler", "-target-function"}},
		{"both handler and target-function", append([]string{"-target-function", "fn"}, validArgs...), nil, []string{"-handler", `"print"`, "-target-function", `"fn"`}},
		{"unknown handler", []string{"-app-name", "words-app", "-stream-name", "words", "-handler", "nope"}, nil, []string{"-handler", `"nope"`, "print"}},
		{"on-failure s3", append([]string{"-on-failure", "s3://bucket/prefix"}, validArgs...), nil, []string{"-on-failure", "s3://bucket/prefix"}},
		{"on-failure bad scheme", append([]string{"-on-failure", "ftp://host/x"}, validArgs...), nil, []string{"-on-failure", "ftp://host/x", "file:///"}},
		{"on-failure relative file", append([]string{"-on-failure", "file://failed.jsonl"}, validArgs...), nil, []string{"-on-failure", "file://failed.jsonl"}},
		{"checkpoint-interval 0", append([]string{"-checkpoint-interval", "0s"}, validArgs...), nil, []string{"-checkpoint-interval", "0s"}},
		{"failover-time too short", append([]string{"-failover-time", "100ms"}, validArgs...), nil, []string{"-failover-time", "100ms"}},
		{"max-leases negative", append([]string{"-max-leases", "-1"}, validArgs...), nil, []string{"-max-leases", "-1"}},
		{"max-retry-attempts -2", append([]string{"-max-retry-attempts", "-2"}, validArgs...), nil, []string{"-max-retry-attempts", "-2"}},
		{"max-record-age 0", append([]string{"-max-record-age", "0s"}, validArgs...), nil, []string{"-max-record-age", "0s"}},
		{"parallelization-factor 2", append([]string{"-parallelization-factor", "2"}, validArgs...), nil, []string{"-parallelization-factor", "2"}},
		{"retry-max-attempts 0", append([]string{"-retry-max-attempts", "0"}, validArgs...), nil, []string{"-retry-max-attempts", "0"}},
		{"bad log-level", append([]string{"-log-level", "loud"}, validArgs...), nil, []string{"-log-level", "loud"}},
		{"bad endpoint", append([]string{"-kinesis-endpoint", "localhost:4567"}, validArgs...), nil, []string{"-kinesis-endpoint", "localhost:4567"}},
		{"bad role", append([]string{"-dynamodb-role-arn", "admin"}, validArgs...), nil, []string{"-dynamodb-role-arn", "admin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseRun(t, tt.args, tt.vars)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			_, err = s.validate()
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("validate = %v, want a *usageError", err)
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

func TestMainBadSetting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string // stderr contains
	}{
		{"batch-size flag", append([]string{"run", "-batch-size", "0"}, validArgs...), nil, "-batch-size 0"},
		{"run is the default", append([]string{"-batch-size", "10001"}, validArgs...), nil, "-batch-size 10001"},
		{"bad env value", validArgs, map[string]string{"BATCH_SIZE": "many"}, `BATCH_SIZE="many"`},
		{"settings from env only", nil, map[string]string{"APP_NAME": "words-app", "STREAM_NAME": "words", "HANDLER": "nope"}, `-handler "nope"`},
		{"missing app-name", []string{"run"}, nil, "-app-name"},
		{"unknown command", []string{"replay"}, nil, `"replay"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(tt.args, env(tt.vars), &stdout, &stderr)
			if code != 2 {
				t.Errorf("Main = %d, want 2 (stderr %q)", code, stderr.String())
			}
			out := stderr.String()
			if got := strings.Count(out, "\n"); got != 1 || !strings.HasSuffix(out, "\n") {
				t.Errorf("stderr = %q, want exactly one line", out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", out, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

// TestMainBadFlag: a bad flag on the command line is a bad setting like
// any other: exit 2, one line on stderr, and nothing on stdout (stdout is
// the print handler's data stream; the usage belongs to -h only).
func TestMainBadFlag(t *testing.T) {
	for _, args := range [][]string{
		append([]string{"run", "-bogus"}, validArgs...),
		append([]string{"run", "-batch-size", "lots"}, validArgs...),
		append([]string{"status", "-bogus"}, validArgs[:4]...),
	} {
		var stdout, stderr bytes.Buffer
		code := Main(args, env(nil), &stdout, &stderr)
		if code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
		if got := strings.Count(stderr.String(), "\n"); got != 1 {
			t.Errorf("Main(%q) stderr = %q, want exactly one line", args, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("Main(%q) stdout has %d bytes (%.60q…), want nothing", args, stdout.Len(), stdout.String())
		}
	}
}

func TestMainHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"run", "-h"}, {"help"}} {
		var stdout, stderr bytes.Buffer
		if code := Main(args, env(nil), &stdout, &stderr); code != 0 {
			t.Errorf("Main(%q) = %d, want 0", args, code)
		}
		if stdout.Len() == 0 {
			t.Errorf("Main(%q) wrote no usage to stdout", args)
		}
		if stderr.Len() != 0 {
			t.Errorf("Main(%q) stderr = %q, want nothing", args, stderr.String())
		}
	}
}
