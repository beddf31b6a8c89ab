package shardline

import (
	"bytes"
	"strings"
	"testing"
)

// validArgs is a run command line that passes validation.
var validArgs = []string{"-app-name", "words-app", "-stream-name", "words", "-handler", "print"}

// env returns a getenv that reads only vars.
// env is getenv over vars; the log format is text unless vars says: the
// tests read run's messages (with JSON, its last line is a JSON object:
// TestJSONLinesOnly).
func env(vars map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := vars[k]; ok || k != "SHARDLINE_LOG_FORMAT" {
			return v
		}
		return "text"
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
		{"bad env value", validArgs, map[string]string{"SHARDLINE_BATCH_SIZE": "many"}, `SHARDLINE_BATCH_SIZE="many": allowed an integer such as 100`},
		{"settings from env only", nil, map[string]string{"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words", "SHARDLINE_HANDLER": "nope"}, `-handler "nope"`},
		{"missing app-name", []string{"run"}, nil, "-app-name"},
		{"unknown command", []string{"bogus"}, nil, `"bogus"`},
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
