package config

import (
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// readmeSection is the README's text from the heading line head up to
// the next heading of the same or a higher level.
func readmeSection(t *testing.T, head string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+head+"\n")
	if i < 0 {
		t.Fatalf("README has no heading %q", head)
	}
	s = s[i+1+len(head):]
	level := strings.Repeat("#", strings.Count(strings.Fields(head)[0], "#"))
	for j := 0; j < len(s); {
		k := strings.Index(s[j:], "\n#")
		if k < 0 {
			break
		}
		line := s[j+k+1:]
		if hashes := line[:strings.IndexFunc(line, func(r rune) bool { return r != '#' })]; len(hashes) <= len(level) {
			return s[:j+k]
		}
		j += k + 2
	}
	return s
}

// checkTable: the settings table in text lists every flag of fs with its
// variable, and no flag fs does not have.
func checkTable(t *testing.T, cmd, text string, fs *flag.FlagSet) {
	t.Helper()
	row := regexp.MustCompile("(?m)^\\| (`-[a-z-]+`(?:, `-[a-z-]+`)*) \\| ([^|]*) \\|")
	inTable := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		for _, f := range strings.Split(m[1], ", ") {
			name := strings.Trim(f, "`-")
			inTable[name] = true
			if fs.Lookup(name) == nil {
				t.Errorf("README lists -%s, which poller %s does not take", name, cmd)
				continue
			}
			if !strings.Contains(m[2], EnvName(name)) {
				t.Errorf("README row for -%s does not name its variable %s", name, EnvName(name))
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !inTable[f.Name] {
			t.Errorf("poller %s -%s is missing from the README's settings table", cmd, f.Name)
		}
	})
}

// TestReadmeSettingsTable: the README's settings table lists every flag of
// `poller run` and `poller replay` with its variable, and no flag that
// neither takes.
func TestReadmeSettingsTable(t *testing.T) {
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
	checkTable(t, "run or replay", readmeSection(t, "## Settings"), fs)
}

// TestReadmeRedriveTable: the README's table of `poller redrive`'s
// settings lists every flag it takes, with its variable.
func TestReadmeRedriveTable(t *testing.T) {
	var s Redrive
	fs := NewFlagSet("redrive", io.Discard)
	s.Register(fs)
	checkTable(t, "redrive", readmeSection(t, "### Settings of `redrive`"), fs)
}
