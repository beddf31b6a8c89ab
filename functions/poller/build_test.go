package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestBuildsForLambda: each function of template.yaml (its GoPackage) and
// the generic poller (./functions/poller, not in the template) build with
// -tags lambda.norpc as a static bootstrap for provided.al2023 on arm64 and
// amd64, as the Makefile's build targets do.
func TestBuildsForLambda(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-builds the functions")
	}
	pkgs := []string{"./functions/poller"}
	for _, fn := range readTemplate(t, filepath.Join(repoRoot, "template.yaml"), nil).Functions {
		if fn.GoPackage != "" && !slices.Contains(pkgs, fn.GoPackage) {
			pkgs = append(pkgs, fn.GoPackage)
		}
	}
	machines := map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64}
	for _, fn := range pkgs {
		for arch, machine := range machines {
			out := filepath.Join(t.TempDir(), "bootstrap")
			cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, fn)
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s/%s: %v\n%s", fn, arch, err, b)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != machine {
				t.Errorf("%s/%s: ELF machine %s, want %s", fn, arch, f.Machine, machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s/%s: dynamically linked", fn, arch)
				}
			}
			f.Close()
		}
	}
}
