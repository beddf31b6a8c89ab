package standin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The pinned AWS Lambda Runtime Interface Emulator (what runs inside
// `sam local invoke`), installed from the Go module proxy by InstallRIE. It
// is not a dependency of this module: `go install module@version` builds it
// apart, so go.mod does not name it.
const (
	RIEModule  = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
	RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"
)

// RIEName is the Server.Name of an emulator that StartRIE started.
const RIEName = "aws-lambda-rie"

// RIEInvokePath is the one path the emulator serves: a function under it is
// always called "function", whatever AWS_LAMBDA_FUNCTION_NAME says.
const RIEInvokePath = "/2015-03-31/functions/function/invocations"

// rieBin is where InstallRIE puts the binary under the cache directory;
// the version in the directory name installs a new pin beside the old.
func rieBin(cache string) string {
	return filepath.Join(cache, "rie-"+RIEVersion, "aws-lambda-rie")
}

// InstallRIE makes sure the pinned emulator is installed under the default
// cache directory ($SHARDLINE_CACHE_DIR or <repo>/.cache/standins) and
// returns the binary's path. The first call runs `go install
// RIEModule@RIEVersion` with GOBIN set to a temporary directory and renames
// the binary into place, under the same lock file as Install; later calls
// only check that it is there. Needs the go command and the Go module proxy
// (or a module cache that holds the version).
func InstallRIE(ctx context.Context) (string, error) {
	dir, err := DefaultCacheDir()
	if err != nil {
		return "", err
	}
	bin := rieBin(dir)
	if isExecutable(bin) {
		return bin, nil
	}
	installMu.Lock()
	defer installMu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("standin: install rie: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "install.lock"))
	if err != nil {
		return "", fmt.Errorf("standin: install rie: lock %s: %w", dir, err)
	}
	defer unlock()
	if isExecutable(bin) {
		return bin, nil // another process installed it while we waited
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("standin: install rie: the go command is not on PATH")
	}
	tmp, err := os.MkdirTemp(dir, ".tmp-rie-")
	if err != nil {
		return "", fmt.Errorf("standin: install rie: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goCmd, "install", RIEModule+"@"+RIEVersion)
	cmd.Dir = tmp // outside this module: its go.mod plays no part
	cmd.Env = environ(map[string]string{"GOBIN": tmp, "CGO_ENABLED": "0", "GOFLAGS": "", "GOWORK": "off"}, nil, nil)
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("standin: `go install %s@%s` failed after %v: %w\n%s", RIEModule, RIEVersion, time.Since(start).Round(time.Millisecond), err, tailString(string(out), 4096))
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", fmt.Errorf("standin: install rie: %w", err)
	}
	if err := os.Rename(filepath.Join(tmp, "aws-lambda-rie"), bin); err != nil {
		return "", fmt.Errorf("standin: install rie: %w", err)
	}
	return bin, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// RIEConfig configures StartRIE.
type RIEConfig struct {
	// Bootstrap is the function's binary (provided.al2023, -tags
	// lambda.norpc). Required. It runs with its directory as working
	// directory.
	Bootstrap string
	// Env is the function's environment, KEY=VALUE, as a template's
	// Environment Variables give it. The emulator passes its own
	// environment on to the function, so this is all the function sees
	// besides PATH, TZ=:UTC, the emulator's AWS_LAMBDA_* variables and
	// these defaults, which Env overrides: AWS_REGION=us-east-1, dummy
	// credentials (Lambda always gives some) and
	// AWS_EC2_METADATA_DISABLED=true.
	Env []string
	// Timeout is the function timeout, in whole seconds
	// (AWS_LAMBDA_FUNCTION_TIMEOUT; 0: 3 s, Lambda's default). Shorter
	// than a second, or not whole, is an error.
	Timeout time.Duration
	// Name is AWS_LAMBDA_FUNCTION_NAME ("": "function"). The Invoke path
	// says "function" whatever it is.
	Name string
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE (0: 128).
	MemoryMB int
	// Log, if set, receives a copy of the emulator's output, which holds
	// the function's stdout and stderr and its START, END and REPORT
	// lines. The last 64 KiB are kept anyway (Server.Output).
	Log io.Writer
	// StartTimeout bounds start-up (0: 30 s).
	StartTimeout time.Duration
}

// StartRIE installs the emulator if needed and runs cfg.Bootstrap under it,
// in classic mode (one invocation at a time; a second concurrent one makes
// it fail), on two free ports of 127.0.0.1: one for the Invoke API
// (Server.Endpoint; POST Server.Endpoint + RIEInvokePath) and one for the
// function's Runtime API (--runtime-api-address, otherwise 127.0.0.1:9001
// for every emulator). The function itself starts on the first
// invocation. StartRIE returns once the emulator answers HTTP on its port;
// Server.Stop ends it and the function (its process group) by PID.
//
// Its answers are not all Lambda's: a returned error is 200 without
// X-Amz-Function-Error, a crashed function 502 with the error, a timeout
// 200 with the plain text "Task timed out after N.00 seconds".
func StartRIE(ctx context.Context, cfg RIEConfig) (*Server, error) {
	if cfg.Bootstrap == "" {
		return nil, errors.New("standin: StartRIE: no Bootstrap")
	}
	boot, err := filepath.Abs(cfg.Bootstrap)
	if err != nil {
		return nil, fmt.Errorf("standin: StartRIE: %w", err)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	if timeout < time.Second || timeout%time.Second != 0 {
		return nil, fmt.Errorf("standin: StartRIE: Timeout %v: the emulator takes whole seconds, at least 1s", cfg.Timeout)
	}
	name := cfg.Name
	if name == "" {
		name = "function"
	}
	mem := cfg.MemoryMB
	if mem == 0 {
		mem = 128
	}
	bin, err := InstallRIE(ctx)
	if err != nil {
		return nil, err
	}
	startTimeout := cfg.StartTimeout
	if startTimeout == 0 {
		startTimeout = 30 * time.Second
	}
	return startRetrying(ctx, false, func() (processSpec, error) {
		ports, err := freePorts(2)
		if err != nil {
			return processSpec{}, err
		}
		env := []string{
			"PATH=" + os.Getenv("PATH"), "TZ=:UTC", "LANG=en_US.UTF-8",
			"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_SESSION_TOKEN=local",
			"AWS_EC2_METADATA_DISABLED=true",
			"LAMBDA_TASK_ROOT=" + filepath.Dir(boot), "_HANDLER=bootstrap",
		}
		env = append(env, cfg.Env...)
		env = append(env,
			"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(timeout/time.Second)),
			"AWS_LAMBDA_FUNCTION_NAME="+name,
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(mem),
			"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+name,
		)
		return processSpec{
			name: RIEName,
			path: bin,
			args: []string{
				"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
				"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
				boot,
			},
			dir:     filepath.Dir(boot),
			env:     lastWins(env),
			port:    ports[0],
			log:     cfg.Log,
			timeout: startTimeout,
			healthy: rieHealthy,
		}, nil
	})
}

// rieHealthy asks for a path the emulator does not serve: any answer is
// its HTTP server (the Invoke path itself would start an invocation).
func rieHealthy(ctx context.Context, endpoint string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// lastWins drops earlier repeats of a key from KEY=VALUE pairs.
func lastWins(env []string) []string {
	last := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		last[k] = i
	}
	var out []string
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if last[k] == i {
			out = append(out, kv)
		}
	}
	return out
}
