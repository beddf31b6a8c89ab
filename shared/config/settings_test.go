package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// env returns a getenv that reads only vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestEnvName(t *testing.T) {
	tests := []struct{ flag, want string }{
		{"stream-name", "STREAM_NAME"},
		{"app-name", "APP_NAME"},
		{"batch-size", "BATCH_SIZE"},
		{"kinesis-role-arn", "KINESIS_ROLE_ARN"},
		{"region", "REGION"},
	}
	for _, tt := range tests {
		if got := EnvName(tt.flag); got != tt.want {
			t.Errorf("EnvName(%q) = %q, want %q", tt.flag, got, tt.want)
		}
	}
}

func parseRun(t *testing.T, args []string, vars map[string]string) (*Run, error) {
	t.Helper()
	var s Run
	fs := NewFlagSet("run", io.Discard)
	s.Register(fs)
	return &s, Parse(fs, args, env(vars))
}

func TestParsePrecedence(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		vars  map[string]string
		check func(*Run) (got, want any)
	}{
		{
			name:  "default",
			check: func(s *Run) (any, any) { return s.BatchSize, 100 },
		},
		{
			name:  "env var when the flag is absent",
			vars:  map[string]string{"BATCH_SIZE": "7"},
			check: func(s *Run) (any, any) { return s.BatchSize, 7 },
		},
		{
			name:  "flag beats its env var",
			args:  []string{"-batch-size", "5"},
			vars:  map[string]string{"BATCH_SIZE": "7"},
			check: func(s *Run) (any, any) { return s.BatchSize, 5 },
		},
		{
			name:  "flag set to its default still beats the env var",
			args:  []string{"-batch-size=100"},
			vars:  map[string]string{"BATCH_SIZE": "7"},
			check: func(s *Run) (any, any) { return s.BatchSize, 100 },
		},
		{
			name:  "string from env",
			vars:  map[string]string{"STREAM_NAME": "words"},
			check: func(s *Run) (any, any) { return s.StreamName, "words" },
		},
		{
			name:  "string flag beats env",
			args:  []string{"-stream-name", "flag"},
			vars:  map[string]string{"STREAM_NAME": "env"},
			check: func(s *Run) (any, any) { return s.StreamName, "flag" },
		},
		{
			name:  "duration from env",
			vars:  map[string]string{"CHECKPOINT_INTERVAL": "500ms"},
			check: func(s *Run) (any, any) { return s.CheckpointInterval, 500 * time.Millisecond },
		},
		{
			name:  "negative duration from env",
			vars:  map[string]string{"MAX_RECORD_AGE": "-1s"},
			check: func(s *Run) (any, any) { return s.MaxRecordAge, -time.Second },
		},
		{
			name:  "bool from env",
			vars:  map[string]string{"BISECT_ON_ERROR": "true"},
			check: func(s *Run) (any, any) { return s.BisectOnError, true },
		},
		{
			name:  "bool flag beats env",
			args:  []string{"-bisect-on-error=false"},
			vars:  map[string]string{"BISECT_ON_ERROR": "true"},
			check: func(s *Run) (any, any) { return s.BisectOnError, false },
		},
		{
			name:  "empty env var is unset",
			vars:  map[string]string{"INITIAL_POSITION": ""},
			check: func(s *Run) (any, any) { return s.InitialPosition, "LATEST" },
		},
		{
			name:  "negative int from env",
			vars:  map[string]string{"MAX_RETRY_ATTEMPTS": "-1"},
			check: func(s *Run) (any, any) { return s.MaxRetryAttempts, -1 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseRun(t, tt.args, tt.vars)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got, want := tt.check(s); got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		vars  map[string]string
		parts []string // the error names these
	}{
		{"bad int env", nil, map[string]string{"BATCH_SIZE": "lots"}, []string{"BATCH_SIZE", "lots"}},
		{"bad duration env", nil, map[string]string{"CHECKPOINT_INTERVAL": "5"}, []string{"CHECKPOINT_INTERVAL", `"5"`}},
		{"bad bool env", nil, map[string]string{"BISECT_ON_ERROR": "maybe"}, []string{"BISECT_ON_ERROR", "maybe"}},
		{"bad int flag", []string{"-batch-size", "lots"}, nil, []string{"batch-size", "lots"}},
		{"unknown flag", []string{"-no-such-flag"}, nil, []string{"no-such-flag"}},
		{"positional argument", []string{"-app-name", "a", "extra"}, nil, []string{"extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRun(t, tt.args, tt.vars)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("parse = %v, want a *UsageError", err)
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

func TestParseHelp(t *testing.T) {
	var out bytes.Buffer
	var s Run
	fs := NewFlagSet("run", &out)
	s.Register(fs)
	if err := Parse(fs, []string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parse -h = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-stream-name", "(STREAM_NAME)", "-batch-size", "(BATCH_SIZE)", "default 100"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage does not contain %q:\n%s", want, out.String())
		}
	}
}
