package main

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/shardline/shardline/shared/config"
)

// known is every variable the function reads.
func known() map[string]bool {
	var f function
	m := map[string]bool{}
	f.flags().VisitAll(func(fl *flag.Flag) { m[config.EnvName(fl.Name)] = true })
	return m
}

// TestSettingsFiles: the variables that template.yaml gives the functions
// and those of events/env.json (for sam local invoke) are all settings the
// function reads, with the SHARDLINE_ prefix, and env.json's pass the
// function's checks.
func TestSettingsFiles(t *testing.T) {
	vars := known()
	b, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The keys under each function's Environment: Variables:.
	block := regexp.MustCompile(`(?m)^        Variables:\n((?:          .*\n)+)`)
	key := regexp.MustCompile(`(?m)^          ([A-Za-z_][A-Za-z0-9_]*):`)
	blocks := block.FindAllStringSubmatch(string(b), -1)
	if len(blocks) != 2 {
		t.Fatalf("%d Environment Variables blocks in template.yaml, want 2 (the two functions)", len(blocks))
	}
	n := 0
	for _, bl := range blocks {
		for _, k := range key.FindAllStringSubmatch(bl[1], -1) {
			n++
			if !vars[k[1]] {
				t.Errorf("template.yaml sets %s, which the functions do not read", k[1])
			}
		}
	}
	if n < 10 {
		t.Errorf("only %d variables found in template.yaml", n)
	}

	b, err = os.ReadFile("../../events/env.json")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	for fn, m := range env {
		for k := range m {
			if !vars[k] {
				t.Errorf("events/env.json sets %s for %s, which the functions do not read", k, fn)
			}
		}
	}
	f := function{getenv: func(k string) string { return env["PollerFunction"][k] }, stdout: io.Discard, stderr: io.Discard}
	if err := f.parse(); err != nil {
		t.Errorf("events/env.json's settings: %v", err)
	}
}

// TestBareVariablesIgnored: the function reads SHARDLINE_ variables only:
// Lambda's and the shell's own names are not its settings.
func TestBareVariablesIgnored(t *testing.T) {
	env := map[string]string{
		"SHARDLINE_APP_NAME": "words-app", "SHARDLINE_STREAM_NAME": "words", "SHARDLINE_HANDLER": "print",
		"DEADLINE_MARGIN": "0s", "BATCH_SIZE": "0", "HANDLER": "nope", "STREAM_NAME": "other",
	}
	f := function{getenv: func(k string) string { return env[k] }}
	if err := f.parse(); err != nil {
		t.Fatalf("parse: %v", err)
	}
	if f.settings.StreamName != "words" || f.settings.BatchSize != 100 || f.margin.String() != "5s" {
		t.Errorf("bare variables were read: stream %q, batch size %d, margin %s", f.settings.StreamName, f.settings.BatchSize, f.margin)
	}
	env["SHARDLINE_DEADLINE_MARGIN"] = "0s"
	f = function{getenv: func(k string) string { return env[k] }}
	if err := f.parse(); err == nil || !strings.Contains(err.Error(), "SHARDLINE_DEADLINE_MARGIN=0s") {
		t.Errorf("parse with SHARDLINE_DEADLINE_MARGIN=0s = %v, want an error naming it", err)
	}
}
