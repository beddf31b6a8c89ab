package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// TestSettingsFiles: events/env.json (per-function variables for sam
// local invoke and standins invoke, by logical id; "Parameters" for every
// function, as sam local reads it) names only the template's functions and
// variables the functions read, each one a variable the template declares
// (sam local sets no other), and each function's variables with its
// overrides pass the function's checks.
func TestSettingsFiles(t *testing.T) {
	vars := known()
	tpl := readTemplate(t, filepath.Join(repoRoot, "template.yaml"), nil)
	b, err := os.ReadFile(filepath.Join(repoRoot, "events", "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	var overrides map[string]map[string]string
	if err := json.Unmarshal(b, &overrides); err != nil {
		t.Fatal(err)
	}
	for fn, m := range overrides {
		f := tpl.Function(fn)
		if f == nil && fn != "Parameters" {
			t.Errorf("events/env.json sets variables for %s: the template has no such function (%s)", fn, strings.Join(tpl.Names(), ", "))
			continue
		}
		for k := range m {
			if !vars[k] {
				t.Errorf("events/env.json sets %s for %s, which the functions do not read", k, fn)
			}
			for _, g := range tpl.Functions {
				if (f == nil || f == g) && !slices.Contains(g.Declared, k) {
					t.Errorf("events/env.json sets %s for %s, which the template does not declare: sam local would not set it", k, g.LogicalID)
				}
			}
		}
	}
	for _, f := range tpl.Functions {
		env := map[string]string{}
		for _, m := range []map[string]string{f.Env, overrides["Parameters"], overrides[f.LogicalID]} {
			for k, v := range m {
				env[k] = v
			}
		}
		if len(overrides[f.LogicalID]) == 0 {
			t.Errorf("events/env.json has no variables for %s", f.LogicalID)
		}
		checkSettings(t, "events/env.json", f, env)
	}
}
