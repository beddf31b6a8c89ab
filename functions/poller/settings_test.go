package main

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/shardline/shardline/shared/shardline"
)

// known is every variable the function reads.
func known() map[string]bool {
	m := map[string]bool{}
	for _, v := range shardline.New().LambdaVariables() {
		m[v] = true
	}
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
	check := func() error {
		return shardline.New().CheckLambda(func(k string) string { return env["PollerFunction"][k] })
	}
	if err := check(); err != nil {
		t.Errorf("events/env.json's settings: %v", err)
	}
}
