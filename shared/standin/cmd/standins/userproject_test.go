package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/standin"
)

// A project of a user's own, outside this repository: a module whose
// main.go calls shardline.Start, with a template of two functions built the
// two ways sam build builds Go (neither CodeUri is functions/<name>):
//
//   - KeyCountFunction: BuildMethod go1.x, CodeUri . (the module); its
//     KEYCOUNT_REFUSE makes the handler return a *refusedError; one
//     variable (!Ref of a resource) does not resolve locally;
//   - MakeFunction: BuildMethod makefile, CodeUri build (a Makefile of the
//     user's that builds the module); it polls a stream on the stand-ins
//     (host.docker.internal endpoints, as for sam local); another variable
//     (!GetAtt) does not resolve locally.
const userMain = `package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/shardline"
)

// refusedError is the handler's error (Lambda's errorType: refusedError).
type refusedError struct{ n int }

func (e *refusedError) Error() string { return fmt.Sprintf("refused %d records", e.n) }

func handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	if os.Getenv("KEYCOUNT_REFUSE") != "" {
		return events.KinesisEventResponse{}, &refusedError{n: len(ev.Records)}
	}
	for _, r := range ev.Records {
		fmt.Printf("handled %s %s\n", r.Kinesis.PartitionKey, r.Kinesis.Data)
	}
	return events.KinesisEventResponse{}, nil
}

func main() { shardline.Start(handle) }
`

const userTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: A user's project with a Shardline handler

Parameters:
  StreamName:
    Type: String
    Default: words

Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Architectures: [x86_64]
    Timeout: 20

Resources:
  Alerts:
    Type: AWS::SNS::Topic

  KeyCountFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: go1.x
    Properties:
      CodeUri: .
      Environment:
        Variables:
          KEYCOUNT_REFUSE: "yes"
          SHARDLINE_ON_FAILURE: !Ref Alerts

  MakeFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
    Properties:
      CodeUri: build
      MemorySize: 512
      Environment:
        Variables:
          SHARDLINE_APP_NAME: keycount
          SHARDLINE_STREAM_NAME: !Ref StreamName
          SHARDLINE_INITIAL_POSITION: TRIM_HORIZON
          SHARDLINE_DEADLINE_MARGIN: 2s
          SHARDLINE_KINESIS_ENDPOINT: http://host.docker.internal:4567
          SHARDLINE_DYNAMODB_ENDPOINT: http://host.docker.internal:8000
          SHARDLINE_FILTER: !GetAtt Alerts.TopicName
`

// userMakefile is the user's own: it builds the module for $(ARCH).
const userMakefile = `ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
ARCH ?= arm64

build-MakeFunction:
	cd $(ROOT) && CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) go build -tags lambda.norpc -o $(ARTIFACTS_DIR)/bootstrap .
`

// userProject writes the project into a new directory: go.mod requires
// Shardline with a replace to this checkout (as before a release), go.sum
// is the checkout's.
func userProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	lambdaGo := regexp.MustCompile(`(?m)^\s*github.com/aws/aws-lambda-go (v\S+)`).FindSubmatch(gomod)
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(gomod)
	if lambdaGo == nil || goVersion == nil {
		t.Fatal("go.mod: no go line or aws-lambda-go requirement")
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod": "module example.com/keycount\n\ngo " + string(goVersion[1]) + "\n\nrequire (\n\tgithub.com/aws/aws-lambda-go " + string(lambdaGo[1]) +
			"\n\tgithub.com/shardline/shardline v0.0.0\n)\n\nreplace github.com/shardline/shardline => " + root + "\n",
		"go.sum":              string(sum),
		"main.go":             userMain,
		"template.yaml":       userTemplate,
		"build/Makefile":      userMakefile,
		"events/kinesis.json": mustRead(t, filepath.Join(root, "events", "kinesis.json")),
	}
	for name, text := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The go command may complete go.mod's requirements from the module
	// cache (the checkout's own are all there).
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOWORK", "off")
	return dir
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// standinsBinary is this command, built once for the tests that check its
// exit status.
func standinsBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "standins-bin")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "standins")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build standins: %v", binErr)
	}
	return binPath
}

// runBinary runs the built command in dir and returns its exit status.
func runBinary(t *testing.T, dir string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(standinsBinary(t), args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		status = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return o.String(), e.String(), status
}

// TestInvokeUserProject: in a user's project, invoke builds each function
// from its CodeUri as sam build does (go1.x: go build in CodeUri; makefile:
// the user's Makefile, in a scratch directory), exits 1 when the function
// returns an error, saying its errorType and errorMessage after printing
// the answer, and warns about the invoked function's unresolved variables
// only.
func TestInvokeUserProject(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and runs the emulator")
	}
	dir := userProject(t)

	stdout, stderr, status := runBinary(t, dir, "invoke", "-fn", "KeyCountFunction", "-event", "events/kinesis.json")
	t.Logf("KeyCountFunction: exit status %d\nstdout: %s\nstderr (end):\n%s", status, stdout, tail(stderr))
	if status != 1 {
		t.Errorf("exit status %d, want 1 for a function that returned an error", status)
	}
	if want := `{"errorMessage":"refused 2 records","errorType":"refusedError"}`; strings.TrimSpace(stdout) != want {
		t.Errorf("stdout %q, want the answer %s", stdout, want)
	}
	for _, w := range []string{
		"standins: KeyCountFunction returned an error: errorType refusedError: refused 2 records",
		"building KeyCountFunction: go build -tags lambda.norpc -o bootstrap in ",
		"KeyCountFunction: left unset, not resolvable from the template",
		"SHARDLINE_ON_FAILURE (line ",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q", w)
		}
	}
	if strings.Contains(stderr, "MakeFunction") || strings.Contains(stderr, "SHARDLINE_FILTER") {
		t.Errorf("stderr warns about MakeFunction, which was not invoked:\n%s", stderr)
	}

	stdout, stderr, status = runBinary(t, dir, "invoke", "-fn", "MakeFunction", "-event", "events/kinesis.json")
	if status != 0 || strings.TrimSpace(stdout) != `{"batchItemFailures":null}` {
		t.Errorf("MakeFunction: exit status %d, stdout %q, want 0 and the answer\nstderr:\n%s", status, stdout, stderr)
	}
	for _, w := range []string{"building MakeFunction: make --makefile build/Makefile build-MakeFunction (BuildMethod makefile", "handled partitionKey-0 ", "Memory Size: 512 MB"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("MakeFunction: stderr lacks %q:\n%s", w, tail(stderr))
		}
	}
	if strings.Contains(stderr, "KeyCountFunction") || strings.Contains(stderr, "SHARDLINE_ON_FAILURE") {
		t.Errorf("MakeFunction's invoke warns about KeyCountFunction:\n%s", stderr)
	}

	_, stderr, status = runBinary(t, dir, "invoke", "-event", "events/kinesis.json")
	if status != 2 || !strings.Contains(stderr, "-fn is required") || !strings.Contains(stderr, "KeyCountFunction, MakeFunction") {
		t.Errorf("no -fn with two functions: exit status %d, stderr %q; want 2 naming both", status, stderr)
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// TestUserProjectStandins: `up` run in a user's project installs the
// stand-ins there (.cache/standins) and records where they run; invoke
// with a scheduled event, run from another directory (a subfolder, and
// another project), finds them, says where, and the function polls them;
// after `down` the same invoke fails, listing every place it looked.
func TestUserProjectStandins(t *testing.T) {
	need(t)
	ctx := context.Background()
	project := userProject(t)
	runDir := filepath.Join(project, ".cache", "standins", "run")
	t.Cleanup(func() {
		for _, key := range []string{"kinesis", "dynamodb"} {
			if b, err := os.ReadFile(filepath.Join(runDir, key+".pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					_ = standin.KillPID(pid, time.Second)
				}
			}
		}
	})
	// Installs into the project (npm ci from npm's cache: a few seconds).
	_, stderr, status := runBinary(t, project, "up", "-streams", "words:1")
	if status != 0 {
		t.Fatalf("up in the project: exit status %d\n%s", status, stderr)
	}
	if _, err := os.Stat(filepath.Join(project, ".cache", "standins", "run", "kinesis.pid")); err != nil {
		t.Fatalf("up did not run in the project: %v\n%s", err, stderr)
	}
	installs, _ := filepath.Glob(filepath.Join(project, ".cache", "standins", "standins-*"))
	if len(installs) != 1 {
		t.Errorf("up installed no stand-ins into the project: %v\n%s", installs, stderr)
	}
	if !strings.Contains(stderr, "run directory "+runDir) {
		t.Errorf("up does not say where it runs:\n%s", stderr)
	}
	env, _, status := runBinary(t, project, "env")
	m := regexp.MustCompile(`SHARDLINE_KINESIS_ENDPOINT=(\S+)`).FindStringSubmatch(env)
	if status != 0 || m == nil {
		t.Fatalf("env: exit status %d, %q", status, env)
	}
	kc := standin.KinesisClient(m[1])
	for _, data := range []string{"hello", "world"} {
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("words"), PartitionKey: aws.String("k"), Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	poll := filepath.Join(t.TempDir(), "poll.json")
	if err := os.WriteFile(poll, []byte(`{"shardline":"poll","runFor":"2s"}`), 0o644); err != nil {
		t.Fatal(err)
	}

	// From a subfolder of the project, with -template: its project's.
	sub := filepath.Join(project, "build")
	stdout, stderr, status := runBinary(t, sub, "invoke", "-template", "../template.yaml", "-fn", "MakeFunction", "-event", poll)
	if status != 0 {
		t.Fatalf("poll from a subfolder: exit status %d\n%s\n%s", status, stdout, tail(stderr))
	}
	for _, w := range []string{"stand-ins found in " + runDir + " (the template's project)", "handled k hello", "handled k world"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("poll from a subfolder: stderr lacks %q:\n%s", w, tail(stderr))
		}
	}
	if !strings.Contains(stdout, `"records":2`) || !strings.Contains(stdout, `"stoppedBecause":"runFor 2s"`) {
		t.Errorf("poll from a subfolder: summary %s, want 2 records and runFor", stdout)
	}

	// From another project, with a copy of the template there: the last up.
	other := userProject(t)
	stdout, stderr, status = runBinary(t, other, "invoke", "-fn", "MakeFunction", "-event", poll)
	if status != 0 {
		t.Fatalf("poll from another project: exit status %d\n%s\n%s", status, stdout, tail(stderr))
	}
	if want := "stand-ins found in " + runDir + " (the last `standins up`)"; !strings.Contains(stderr, want) {
		t.Errorf("poll from another project: stderr lacks %q:\n%s", want, tail(stderr))
	}

	if _, stderr, status := runBinary(t, project, "down"); status != 0 {
		t.Fatalf("down: %d\n%s", status, stderr)
	}
	stdout, stderr, status = runBinary(t, other, "invoke", "-fn", "MakeFunction", "-event", poll)
	if status != 1 {
		t.Errorf("poll with no stand-ins: exit status %d, want 1\n%s", status, stderr)
	}
	for _, w := range []string{"no running stand-ins found; looked in:", "the template's project: " + filepath.Join(other, ".cache", "standins", "run") + " (no run directory)", "the last `standins up`: ", "(none recorded)", "standins up"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("poll with no stand-ins: stderr lacks %q:\n%s", w, stderr)
		}
	}
	if stdout != "" {
		t.Errorf("poll with no stand-ins printed %q", stdout)
	}
}

// TestGoToolInUserProject: README's way for a project of one's own before
// a release: go.mod requires Shardline with a replace to a checkout, the
// command is a tool of the module (go mod edit -tool, go mod tidy: from
// the module cache, no network), and `go tool standins invoke` builds and
// invokes the project's function.
func TestGoToolInUserProject(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command in a module and runs the emulator")
	}
	dir := userProject(t)
	goCmd := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := goCmd(nil, "mod", "edit", "-tool=github.com/shardline/shardline/shared/standin/cmd/standins"); err != nil {
		t.Fatalf("go mod edit -tool: %v\n%s", err, out)
	}
	// Offline (GOPROXY=off), tidy cannot fetch a dependency's test-only
	// imports (gopkg.in/check.v1's source) that it would record with the
	// network: -e goes on without them, as they play no part in the build.
	if out, err := goCmd([]string{"GOPROXY=off", "GOFLAGS=-mod=mod"}, "mod", "tidy", "-e"); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	cmd := exec.Command("go", "tool", "standins", "invoke", "-fn", "MakeFunction", "-event", "events/kinesis.json")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go tool standins invoke: %v\n%s", err, tail(stderr.String()))
	}
	if got := strings.TrimSpace(stdout.String()); got != `{"batchItemFailures":null}` {
		t.Errorf("stdout %q, want the function's answer", got)
	}
	if !strings.Contains(stderr.String(), "handled partitionKey-0 ") {
		t.Errorf("stderr lacks the handler's lines:\n%s", tail(stderr.String()))
	}
}
