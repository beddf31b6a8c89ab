package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/shardline/shardline/shared/standin/samtemplate"
)

// machines are the ELF machines of the GOARCHes a function runs on here.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// buildFunction builds fn as sam build builds it, for this machine
// (linux/GOARCH: the emulator runs it here, not on Lambda), into
// dir/<LogicalId>/artifacts, and returns the bootstrap's path. log gets a
// line saying how.
//
//   - BuildMethod makefile: CodeUri is copied to a scratch directory
//     (without .git, .aws-sam and .cache) and `make --makefile
//     <CodeUri>/Makefile build-<LogicalId>` runs there with ARTIFACTS_DIR,
//     ARCH (this machine's GOARCH) and TEMPLATE (the template's path) in
//     its environment.
//   - BuildMethod go1.x, or none: `go build -tags lambda.norpc -trimpath
//     -o <artifacts>/bootstrap .` in CodeUri, which holds the module
//     (go.mod), as sam build's Go builder; Handler must be bootstrap.
func buildFunction(ctx context.Context, tpl *samtemplate.Template, fn *samtemplate.Function, dir string, log io.Writer) (string, error) {
	id := fn.LogicalID
	if !strings.HasPrefix(fn.Runtime, "provided") {
		return "", fmt.Errorf("%s: Runtime %q: standins runs provided.al2023 (or provided.al2) functions, with the Go binary as bootstrap", id, fn.Runtime)
	}
	if fn.CodeDir == "" {
		return "", fmt.Errorf("%s: CodeUri %q: standins builds a folder beside the template, not an S3 location", id, fn.CodeURI)
	}
	if st, err := os.Stat(fn.CodeDir); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s: CodeUri %s: no such folder beside the template (%s)", id, fn.CodeURI, fn.CodeDir)
	}
	goarch := runtime.GOARCH
	if _, ok := machines[goarch]; !ok || runtime.GOOS != "linux" {
		return "", fmt.Errorf("%s: this machine is %s/%s: the runtime interface emulator runs linux/amd64 and linux/arm64 functions", id, runtime.GOOS, goarch)
	}
	artifacts := filepath.Join(dir, id, "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return "", err
	}
	var cmd *exec.Cmd
	switch fn.BuildMethod {
	case "makefile":
		mk := filepath.Join(fn.CodeDir, "Makefile")
		if _, err := os.Stat(mk); err != nil {
			return "", fmt.Errorf("%s: BuildMethod makefile, but CodeUri %s has no Makefile (sam build runs make --makefile <CodeUri>/Makefile build-%s)", id, fn.CodeURI, id)
		}
		scratch := filepath.Join(dir, id, "scratch")
		if err := copyTree(fn.CodeDir, scratch); err != nil {
			return "", fmt.Errorf("%s: copy CodeUri %s: %w", id, fn.CodeURI, err)
		}
		fmt.Fprintf(log, "standins: building %s: make --makefile %s build-%s (BuildMethod makefile, ARCH=%s)\n", id, rel(mk), id, goarch)
		cmd = exec.CommandContext(ctx, "make", "--no-print-directory", "--makefile", mk, "build-"+id)
		cmd.Dir = scratch
		cmd.Env = append(os.Environ(), "ARTIFACTS_DIR="+artifacts, "ARCH="+goarch, "TEMPLATE="+tpl.Path)
	case "go1.x", "":
		if fn.Handler != "bootstrap" {
			return "", fmt.Errorf("%s: Handler %q: sam build's Go builder names the binary after Handler, and provided.al2023 runs bootstrap: set Handler: bootstrap", id, fn.Handler)
		}
		if _, err := os.Stat(filepath.Join(fn.CodeDir, "go.mod")); err != nil {
			return "", fmt.Errorf("%s: BuildMethod %q: CodeUri %s holds no go.mod (sam build's Go builder builds the module in CodeUri; BuildMethod makefile builds anything else)", id, fn.BuildMethod, fn.CodeURI)
		}
		out := filepath.Join(artifacts, "bootstrap")
		fmt.Fprintf(log, "standins: building %s: go build -tags lambda.norpc -o bootstrap in %s (BuildMethod go1.x, GOARCH=%s)\n", id, rel(fn.CodeDir), goarch)
		cmd = exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, ".")
		cmd.Dir = fn.CodeDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	default:
		return "", fmt.Errorf("%s: BuildMethod %q: standins builds makefile and go1.x functions (sam build's makefile and Go builders)", id, fn.BuildMethod)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %s: %v\n%s", id, strings.Join(cmd.Args, " "), err, b)
	}
	bin := filepath.Join(artifacts, "bootstrap")
	f, err := elf.Open(bin)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("build %s: %s left no bootstrap in ARTIFACTS_DIR (%s)", id, strings.Join(cmd.Args, " "), artifacts)
	}
	if err != nil {
		return "", fmt.Errorf("build %s: the bootstrap is not a Linux binary: %w", id, err)
	}
	defer f.Close()
	if f.Machine != machines[goarch] {
		return "", fmt.Errorf("build %s: the bootstrap is for %s, and this machine runs %s: build for GOARCH=$(ARCH) (standins sets ARCH=%s)", id, f.Machine, goarch, goarch)
	}
	return bin, nil
}

// rel is path relative to the working directory when that is shorter.
func rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && len(r) < len(path) && !strings.HasPrefix(r, "../../..") {
		return r
	}
	return path
}

// copyTree copies the files under from into to, as sam build copies
// CodeUri to its scratch directory, leaving out .git, .aws-sam and .cache.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, r)
		switch {
		case d.IsDir() && (d.Name() == ".git" || d.Name() == ".aws-sam" || d.Name() == ".cache") && path != from:
			return filepath.SkipDir
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case !d.Type().IsRegular():
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
