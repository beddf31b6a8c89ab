package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/shardline/shardline/shared/standin"
)

// LastUpEnv names a file to use instead of <user cache dir>/shardline/
// standins-last-up (tests set it, to leave the user's alone).
const LastUpEnv = "SHARDLINE_STANDINS_LAST_UP"

// lastUpFile is the file that holds the run directory of the last up.
func lastUpFile() (string, error) {
	if f := os.Getenv(LastUpEnv); f != "" {
		return filepath.Abs(f)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory to record the last up in (set %s): %w", LastUpEnv, err)
	}
	return filepath.Join(dir, "shardline", "standins-last-up"), nil
}

// recordLastUp writes runDir as the last up's.
func recordLastUp(runDir string) error {
	f, err := lastUpFile()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(runDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		return fmt.Errorf("record the last up: %w", err)
	}
	if err := writeFileAtomic(f, abs+"\n"); err != nil {
		return fmt.Errorf("record the last up: %w", err)
	}
	return nil
}

// lastUp is the run directory the last up recorded, or "".
func lastUp() string {
	f, err := lastUpFile()
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// forgetLastUp removes the record when it names runDir.
func forgetLastUp(runDir string) {
	abs, err := filepath.Abs(runDir)
	if err != nil || lastUp() != abs {
		return
	}
	if f, err := lastUpFile(); err == nil {
		_ = os.Remove(f)
	}
}

// projectRunDir is the run directory of the project that holds dir: the
// nearest directory at or above it with a go.mod, then
// .cache/standins/run, as DefaultCacheDir makes it there.
func projectRunDir(dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for d := abs; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".cache", "standins", "run"), true
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

// looked is one place locate looked in, and what it found there.
type looked struct{ where, dir, found string }

// locate finds the stand-ins up started: in runDir if it is given, else
// in $SHARDLINE_CACHE_DIR/run, the run directory of the project of
// templateDir, of the working directory's project, and the last up's. It
// returns the first run directory whose stand-ins both answer, and every
// place it looked.
func locate(ctx context.Context, runDir, templateDir string) (*state, []looked) {
	var cands []looked
	add := func(where, dir string) {
		if dir == "" {
			return
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return
		}
		for _, c := range cands {
			if c.dir == abs {
				return
			}
		}
		cands = append(cands, looked{where: where, dir: abs})
	}
	if runDir != "" {
		add("-run", runDir)
	} else {
		if d := os.Getenv(standin.CacheDirEnv); d != "" {
			add("$"+standin.CacheDirEnv, filepath.Join(d, "run"))
		}
		if templateDir != "" {
			if d, ok := projectRunDir(templateDir); ok {
				add("the template's project", d)
			}
		}
		if wd, err := os.Getwd(); err == nil {
			if d, ok := projectRunDir(wd); ok {
				add("the working directory's project", d)
			}
		}
		add("the last `standins up`", lastUp())
	}
	for i := range cands {
		st := &state{dir: cands[i].dir}
		if _, why := st.up(ctx); why != "" {
			if _, err := os.Stat(cands[i].dir); errors.Is(err, os.ErrNotExist) {
				why = "no run directory"
			}
			cands[i].found = why
			continue
		}
		cands[i].found = "both up"
		return st, cands[:i+1]
	}
	if f, err := lastUpFile(); err == nil && runDir == "" && lastUp() == "" {
		cands = append(cands, looked{where: "the last `standins up`", dir: f, found: "none recorded"})
	}
	return nil, cands
}

// lookedList says where locate looked, one place a line.
func lookedList(l []looked) string {
	if len(l) == 0 {
		return "  nowhere: no project (go.mod) here, no $" + standin.CacheDirEnv + ", no record of the last up"
	}
	var b strings.Builder
	for i, c := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "  %s: %s (%s)", c.where, c.dir, c.found)
	}
	return b.String()
}

// notFound is the error of a command that needs the stand-ins.
func notFound(l []looked) error {
	return fmt.Errorf("no running stand-ins found; looked in:\n%s\nstart them with `standins up` (make up) in your project, or name their run directory with -run", lookedList(l))
}
