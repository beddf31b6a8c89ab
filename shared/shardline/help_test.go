package shardline

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestTopHelp: poller -h and poller help list the commands, one line each.
func TestTopHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"help"}} {
		res := runMain(t, 10*time.Second, args, nil)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("poller %q: exit %d, stderr %q", args, res.code, res.stderr)
		}
		for _, cmd := range []string{"run", "produce", "status", "replay", "reset", "resume", "redrive", "version"} {
			if !strings.Contains(res.stdout, "\n  "+cmd+" ") {
				t.Errorf("poller %q does not list %s:\n%s", args, cmd, res.stdout)
			}
		}
		if strings.Contains(res.stdout, "-batch-size") {
			t.Errorf("poller %q prints run's flags instead of the commands:\n%s", args, res.stdout)
		}
	}
	if res := runMain(t, 10*time.Second, []string{"help", "produce"}, nil); !strings.Contains(res.stdout, "-rate int  (SHARDLINE_RATE)") {
		t.Errorf("poller help produce:\n%s", res.stdout)
	}
}

// TestCommandHelp: each command's -h shows only the flags it uses, each
// with its variable.
func TestCommandHelp(t *testing.T) {
	tests := []struct {
		cmd        string
		has, hasNo []string
	}{
		{"run", []string{"-handler-timeout", "-lambda-endpoint", "-log-level", "\nhandler or function:\n", "\nAWS access:\n", "\n  AWS_CBOR_DISABLE=true\n"}, nil},
		{"produce", []string{"-rate", "-count", "-stream-name", "-kinesis-endpoint", "-region"},
			[]string{"-app-name", "-lambda-endpoint", "-dynamodb-endpoint", "-dynamodb-role-arn", "-cloudwatch-role-arn", "-log-level", "-handler"}},
		{"status", []string{"-json", "-watch", "-app-name", "-dynamodb-endpoint"}, []string{"-lambda-endpoint", "-cloudwatch-role-arn", "-log-level"}},
		{"replay", []string{"-from", "-until", "-shard", "-rate", "-read-share", "-filter", "-handler", "-target-function", "-batch-size", "-max-batching-window",
			"-parallelization-factor", "-bisect-on-error", "-max-retry-attempts", "-max-record-age", "-on-failure", "-report-batch-item-failures",
			"-handler-timeout", "-log-format", "-metrics-addr", "-quiet", "-lambda-endpoint"},
			[]string{"-app-name", "-dynamodb-endpoint", "-initial-position", "-checkpoint-interval", "-worker-id", "-tumbling-window"}},
		{"reset", []string{"-to", "-timestamp", "-shard", "-force", "-dynamodb-endpoint"}, []string{"-lambda-endpoint", "-cloudwatch-role-arn", "-log-level"}},
		{"redrive", []string{"-from", "-dry-run", "-delete", "-visibility-timeout", "-max-gather-mb", "-on-failure", "-handler", "-target-function", "-lambda-endpoint",
			"-log-format", "-metrics-addr", "-quiet", "\nhandler or function:\n"}, []string{"-app-name", "-dynamodb-endpoint", "-initial-position", "-worker-id", "-max-record-age"}},
	}
	for _, tt := range tests {
		res := runMain(t, 10*time.Second, []string{tt.cmd, "-h"}, nil)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("%s -h: exit %d, stderr %q", tt.cmd, res.code, res.stderr)
		}
		for _, w := range tt.has {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("%s -h lacks %q:\n%s", tt.cmd, w, res.stdout)
			}
		}
		for _, w := range tt.hasNo {
			if strings.Contains(res.stdout, "  "+w+" ") {
				t.Errorf("%s -h shows %s, which it does not use:\n%s", tt.cmd, w, res.stdout)
			}
		}
		for _, line := range strings.Split(res.stdout, "\n") {
			if strings.HasPrefix(line, "  -") && !strings.Contains(line, "(SHARDLINE_") {
				t.Errorf("%s -h: flag line without its variable: %q", tt.cmd, line)
			}
		}
		if !strings.HasPrefix(res.stdout, "poller "+tt.cmd+": ") {
			t.Errorf("%s -h does not start with the command's line:\n%s", tt.cmd, res.stdout)
		}
	}
}

// TestVersion: poller version and poller -version print the version, the
// commit and the Go version.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		res := runMain(t, 10*time.Second, args, nil)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("poller %q: exit %d, stderr %q", args, res.code, res.stderr)
		}
		for _, want := range []string{"poller ", "\ncommit ", runtime.Version()} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("poller %q printed %q, want %q in it", args, res.stdout, want)
			}
		}
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/shardline/shardline", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-11-30T12:00:00Z"},
			{Key: "vcs.modified", Value: "true"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}}
	want := "poller v1.4.0\ncommit 0123456789abcdef (2026-11-30T12:00:00Z, modified)\ngo1.26.8 linux/arm64\n"
	if got := versionText("poller", "", bi); got != want {
		t.Errorf("versionText =\n%s\nwant\n%s", got, want)
	}
	if got := versionText("poller", "fedcba", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}); !strings.HasPrefix(got, "poller (devel)\ncommit fedcba\n") {
		t.Errorf("versionText with main.commit = %q", got)
	}
	// A user's module built on Shardline: its own version, then Shardline's
	// (with the replace a user has until a release is published).
	user := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/keycount", Version: "v0.3.0"},
		Deps: []*debug.Module{{Path: Module, Version: "v0.0.0-00010101000000-000000000000", Replace: &debug.Module{Path: "../shardline"}}}}
	if got, want := versionText("keycount", "", user), "keycount v0.3.0 (example.com/keycount)\nshardline v0.0.0-00010101000000-000000000000 => ../shardline\n"; !strings.HasPrefix(got, want) {
		t.Errorf("versionText of a user's module =\n%s\nwant it to start with\n%s", got, want)
	}
}
