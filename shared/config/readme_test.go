package config

import (
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeSettingsTable: the README's settings table lists every flag of
// `poller run` and `poller replay` with its variable, and no flag that
// neither takes.
func TestReadmeSettingsTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var s Run
	fs := NewFlagSet("run", io.Discard)
	s.Register(fs)
	var rp Replay
	rfs := NewFlagSet("replay", io.Discard)
	rp.Register(rfs)
	rfs.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	row := regexp.MustCompile("(?m)^\\| (`-[a-z-]+`(?:, `-[a-z-]+`)*) \\| ([^|]*) \\|")
	inTable := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		for _, f := range strings.Split(m[1], ", ") {
			name := strings.Trim(f, "`-")
			inTable[name] = true
			if fs.Lookup(name) == nil {
				t.Errorf("README lists -%s, which neither poller run nor replay takes", name)
				continue
			}
			if !strings.Contains(m[2], EnvName(name)) {
				t.Errorf("README row for -%s does not name its variable %s", name, EnvName(name))
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !inTable[f.Name] {
			t.Errorf("poller run/replay -%s is missing from the README's settings table", f.Name)
		}
	})
}
