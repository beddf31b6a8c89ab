package config

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestResolveFormat(t *testing.T) {
	tests := []struct {
		flag           string
		terminal, onFn bool
		want           string
	}{
		{"auto", true, false, "text"},  // a terminal
		{"auto", false, false, "json"}, // a pipe, a file, a container's log
		{"auto", true, true, "json"},   // Lambda
		{"auto", false, true, "json"},
		{"", true, false, "text"}, // unset is auto
		{"", false, false, "json"},
		{"text", false, true, "text"}, // asked for: kept, even on Lambda
		{"json", true, false, "json"},
	}
	for _, tt := range tests {
		if got := ResolveFormat(tt.flag, tt.terminal, tt.onFn); got != tt.want {
			t.Errorf("ResolveFormat(%q, terminal %v, Lambda %v) = %q, want %q", tt.flag, tt.terminal, tt.onFn, got, tt.want)
		}
	}
}

// TestLogger: -log-format auto writes JSON to a stderr that is not a
// terminal, text when asked; the level applies; durations read as Go
// writes them in both formats.
func TestLogger(t *testing.T) {
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "")
	var buf bytes.Buffer
	c := Common{LogLevel: "info", LogFormat: "auto"}
	if got := c.Format(&buf); got != FormatJSON {
		t.Fatalf("Format(a buffer) = %q, want json", got)
	}
	log := c.Logger(&buf)
	log.Debug("hidden")
	log.Info("shard started", "shard", "shardId-000000000001", "wait", 1500*time.Millisecond)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if line["msg"] != "shard started" || line["wait"] != "1.5s" || line["level"] != "INFO" {
		t.Errorf("JSON line %v: want msg \"shard started\", wait \"1.5s\", level INFO", line)
	}
	buf.Reset()
	c = Common{LogLevel: "debug", LogFormat: "text"}
	c.Logger(&buf).Debug("GetRecords", "duration", 12*time.Millisecond)
	if got := buf.String(); !strings.Contains(got, "level=DEBUG msg=GetRecords duration=12ms") {
		t.Errorf("text line %q", got)
	}
	if !c.Debug() || (&Common{LogLevel: "info"}).Debug() {
		t.Error("Debug() does not follow -log-level")
	}
	// On Lambda, auto is JSON even on a terminal.
	t.Setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
	if !OnLambda() || ResolveFormat("auto", true, OnLambda()) != FormatJSON {
		t.Error("AWS_LAMBDA_FUNCTION_NAME set: want OnLambda and json")
	}
}
