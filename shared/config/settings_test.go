package config

import (
	"bytes"
	"context"
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
		{"stream-name", "SHARDLINE_STREAM_NAME"},
		{"app-name", "SHARDLINE_APP_NAME"},
		{"batch-size", "SHARDLINE_BATCH_SIZE"},
		{"kinesis-role-arn", "SHARDLINE_KINESIS_ROLE_ARN"},
		{"region", "SHARDLINE_REGION"},
		{"deadline-margin", "SHARDLINE_DEADLINE_MARGIN"},
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
			vars:  map[string]string{"SHARDLINE_BATCH_SIZE": "7"},
			check: func(s *Run) (any, any) { return s.BatchSize, 7 },
		},
		{
			name:  "flag beats its env var",
			args:  []string{"-batch-size", "5"},
			vars:  map[string]string{"SHARDLINE_BATCH_SIZE": "7"},
			check: func(s *Run) (any, any) { return s.BatchSize, 5 },
		},
		{
			name:  "flag set to its default still beats the env var",
			args:  []string{"-batch-size=100"},
			vars:  map[string]string{"SHARDLINE_BATCH_SIZE": "7"},
			check: func(s *Run) (any, any) { return s.BatchSize, 100 },
		},
		{
			name:  "string from env",
			vars:  map[string]string{"SHARDLINE_STREAM_NAME": "words"},
			check: func(s *Run) (any, any) { return s.StreamName, "words" },
		},
		{
			name:  "string flag beats env",
			args:  []string{"-stream-name", "flag"},
			vars:  map[string]string{"SHARDLINE_STREAM_NAME": "env"},
			check: func(s *Run) (any, any) { return s.StreamName, "flag" },
		},
		{
			name:  "duration from env",
			vars:  map[string]string{"SHARDLINE_CHECKPOINT_INTERVAL": "500ms"},
			check: func(s *Run) (any, any) { return s.CheckpointInterval, 500 * time.Millisecond },
		},
		{
			name:  "negative duration from env",
			vars:  map[string]string{"SHARDLINE_MAX_RECORD_AGE": "-1s"},
			check: func(s *Run) (any, any) { return s.MaxRecordAge, -time.Second },
		},
		{
			name:  "bool from env",
			vars:  map[string]string{"SHARDLINE_BISECT_ON_ERROR": "true"},
			check: func(s *Run) (any, any) { return s.BisectOnError, true },
		},
		{
			name:  "bool flag beats env",
			args:  []string{"-bisect-on-error=false"},
			vars:  map[string]string{"SHARDLINE_BISECT_ON_ERROR": "true"},
			check: func(s *Run) (any, any) { return s.BisectOnError, false },
		},
		{
			name:  "empty env var is unset",
			vars:  map[string]string{"SHARDLINE_INITIAL_POSITION": ""},
			check: func(s *Run) (any, any) { return s.InitialPosition, "LATEST" },
		},
		{
			name:  "negative int from env",
			vars:  map[string]string{"SHARDLINE_MAX_RETRY_ATTEMPTS": "-1"},
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

// TestParseErrors: a value that does not parse names the flag or the
// variable, the value and the allowed form, in one line.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string // the whole error line
	}{
		{"duration flag without a unit", []string{"-checkpoint-interval", "5"}, nil, `-checkpoint-interval "5": allowed a duration such as 5s (a number with a unit: ms, s, m, h)`},
		{"duration flag", []string{"-failover-time", "soon"}, nil, `-failover-time "soon": allowed a duration such as 10s (a number with a unit: ms, s, m, h)`},
		{"int flag", []string{"-batch-size", "lots"}, nil, `-batch-size "lots": allowed an integer such as 100`},
		{"bool flag", []string{"-bisect-on-error=maybe"}, nil, `-bisect-on-error "maybe": allowed true or false`},
		{"int variable", nil, map[string]string{"SHARDLINE_BATCH_SIZE": "x"}, `SHARDLINE_BATCH_SIZE="x": allowed an integer such as 100`},
		{"duration variable", nil, map[string]string{"SHARDLINE_CHECKPOINT_INTERVAL": "5"}, `SHARDLINE_CHECKPOINT_INTERVAL="5": allowed a duration such as 5s (a number with a unit: ms, s, m, h)`},
		{"bool variable", nil, map[string]string{"SHARDLINE_BISECT_ON_ERROR": "maybe"}, `SHARDLINE_BISECT_ON_ERROR="maybe": allowed true or false`},
		{"unknown flag", []string{"-no-such-flag"}, nil, "flag provided but not defined: -no-such-flag (-h lists the flags)"},
		{"positional argument", []string{"-app-name", "a", "extra"}, nil, `unexpected argument "extra" (flags start with -; -h lists them)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRun(t, tt.args, tt.vars)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("parse = %v, want a *UsageError", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestBareVariablesIgnored: only SHARDLINE_ variables are settings; bare
// names (which mean other things in a shell or on Lambda) are not read.
func TestBareVariablesIgnored(t *testing.T) {
	bare := map[string]string{"BATCH_SIZE": "7", "STREAM_NAME": "words", "HANDLER": "nope", "BISECT_ON_ERROR": "true", "CHECKPOINT_INTERVAL": "x"}
	s, err := parseRun(t, nil, bare)
	if err != nil {
		t.Fatalf("parse with bare variables: %v", err)
	}
	if s.BatchSize != 100 || s.StreamName != "" || s.Handler != "" || s.BisectOnError || s.CheckpointInterval != time.Second {
		t.Errorf("bare variables were read: %+v", s)
	}
}

// TestParseHelp: -h lists each flag with its variable, under its heading,
// headings in order; the timeouts are with the handler.
func TestParseHelp(t *testing.T) {
	var out bytes.Buffer
	var s Run
	fs := NewFlagSet("run", &out)
	s.Register(fs)
	if err := Parse(fs, []string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parse -h = %v, want flag.ErrHelp", err)
	}
	help := out.String()
	for _, want := range []string{"-stream-name string  (SHARDLINE_STREAM_NAME)", "-batch-size int  (SHARDLINE_BATCH_SIZE)", "default 100",
		"-checkpoint-interval duration  (SHARDLINE_CHECKPOINT_INTERVAL)", "-bisect-on-error  (SHARDLINE_BISECT_ON_ERROR)"} {
		if !strings.Contains(help, want) {
			t.Errorf("usage does not contain %q:\n%s", want, help)
		}
	}
	headings := []string{"\nstream and position:\n", "\nhandler or function:\n", "\nbatching and failures:\n", "\nleases:\n", "\nAWS access:\n", "\nlogging and metrics:\n"}
	last := -1
	for _, h := range headings {
		i := strings.Index(help, h)
		if i < 0 || i < last {
			t.Fatalf("heading %q missing or out of order:\n%s", h, help)
		}
		last = i
	}
	under := func(flagName string) string {
		i := strings.Index(help, "  -"+flagName+" ")
		if i < 0 {
			t.Fatalf("-%s not in the help", flagName)
		}
		h := ""
		for _, hd := range headings {
			if j := strings.Index(help, hd); j >= 0 && j < i {
				h = strings.Trim(hd, "\n:")
			}
		}
		return h
	}
	for flagName, want := range map[string]string{"handler-timeout": "handler or function", "function-timeout": "handler or function",
		"initial-position": "stream and position", "failover-time": "leases", "lambda-endpoint": "AWS access", "log-level": "logging and metrics"} {
		if got := under(flagName); got != want {
			t.Errorf("-%s is under %q, want %q", flagName, got, want)
		}
	}
	// Every run flag has a heading: none is left under the command's own.
	if strings.Contains(help, "\nrun:\n") {
		t.Errorf("some run flags have no heading in Groups:\n%s", help)
	}
	if n := strings.Count(help, "(SHARDLINE_"); n != countFlags(fs) {
		t.Errorf("%d variables in the help, want one per flag (%d)", n, countFlags(fs))
	}
}

func countFlags(fs *flag.FlagSet) int {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n
}

// TestCommonRegister: each command takes only the settings it uses.
func TestCommonRegister(t *testing.T) {
	has := func(fs *flag.FlagSet) map[string]bool {
		m := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) { m[f.Name] = true })
		return m
	}
	var c Common
	fs := NewFlagSet("status", io.Discard)
	c.Register(fs, true)
	got := has(fs)
	for _, name := range []string{"app-name", "stream-name", "region", "kinesis-endpoint", "dynamodb-endpoint", "kinesis-role-arn", "dynamodb-role-arn"} {
		if !got[name] {
			t.Errorf("status lacks -%s", name)
		}
	}
	for _, name := range []string{"lambda-endpoint", "cloudwatch-role-arn", "log-level"} {
		if got[name] {
			t.Errorf("status has -%s, which it does not use", name)
		}
	}
	fs = NewFlagSet("produce", io.Discard)
	c.RegisterKinesis(fs)
	got = has(fs)
	for _, name := range []string{"app-name", "dynamodb-endpoint", "dynamodb-role-arn", "lambda-endpoint", "cloudwatch-role-arn", "log-level"} {
		if got[name] {
			t.Errorf("produce has -%s, which it does not use", name)
		}
	}
}

// TestNoRegion: no region anywhere is a bad setting naming the ways to
// give one.
func TestNoRegion(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	c := Common{StreamName: "words"}
	for name, clients := range map[string]func(context.Context) error{
		"Clients":      func(ctx context.Context) error { _, err := c.Clients(ctx); return err },
		"QuickClients": func(ctx context.Context) error { _, err := c.QuickClients(ctx); return err },
	} {
		err := clients(context.Background())
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Fatalf("%s without a region = %v, want a *UsageError", name, err)
		}
		for _, want := range []string{"-region", "SHARDLINE_REGION", "AWS_REGION"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not name %s", name, err, want)
			}
		}
	}
}
