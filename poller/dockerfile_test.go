package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile: no Docker engine runs here, so check what can be checked:
// two stages, a non-root user, and that its build command gives a static
// binary (no ELF interpreter) that runs.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)); n != 2 {
		t.Errorf("%d FROM lines, want a two-stage build", n)
	}
	if !regexp.MustCompile(`(?m)^USER nonroot`).MatchString(df) {
		t.Error("no USER nonroot line")
	}
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*) -o /out/poller \./poller$`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("no static go build line for ./poller")
	}
	if testing.Short() {
		return
	}
	out := filepath.Join(t.TempDir(), "poller")
	var args []string // shell words; single quotes group
	for _, w := range regexp.MustCompile(`(?:[^\s']+|'[^']*')+`).FindAllString(m[1], -1) {
		args = append(args, strings.ReplaceAll(w, "'", ""))
	}
	cmd := exec.Command("go", append(args[2:], "-o", out, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked (it has an ELF interpreter)")
		}
	}
	if b, err := exec.Command(out, "help").CombinedOutput(); err != nil || !strings.Contains(string(b), "usage") {
		t.Fatalf("the binary does not run: %v\n%s", err, b)
	}
}
