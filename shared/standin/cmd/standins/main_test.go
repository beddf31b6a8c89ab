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
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/standin"
)

// need skips the test under -short and fails it when the stand-ins
// cannot be installed.
func need(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: needs the local AWS stand-ins")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := standin.Install(ctx, ""); err != nil {
		t.Fatalf("stand-ins not installable: %v", err)
	}
}

var exportRE = regexp.MustCompile(`^export SHARDLINE_KINESIS_ENDPOINT=(http://127\.0\.0\.1:\d+) SHARDLINE_DYNAMODB_ENDPOINT=(http://127\.0\.0\.1:\d+) AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_ENDPOINT_URL_KINESIS=http://127\.0\.0\.1:\d+ AWS_ENDPOINT_URL_DYNAMODB=http://127\.0\.0\.1:\d+\n$`)

func readPID(t *testing.T, dir, key string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, key+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// stopLeftovers ends, by the PIDs in dir, whatever a failed test left.
func stopLeftovers(t *testing.T, dir string) {
	t.Cleanup(func() {
		for _, key := range []string{"kinesis", "dynamodb"} {
			if b, err := os.ReadFile(filepath.Join(dir, key+".pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					_ = standin.KillPID(pid, time.Second)
				}
			}
		}
	})
}

func TestUpEnvDown(t *testing.T) {
	need(t)
	ctx := context.Background()
	dir := t.TempDir()
	stopLeftovers(t, dir)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"up", "-run", dir, "-streams", "words:2"}, &out, &errOut); err != nil {
		t.Fatalf("up: %v\n%s", err, errOut.String())
	}
	t.Logf("up:\n%s%s", errOut.String(), out.String())
	m := exportRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("up printed %q, want the export line", out.String())
	}
	kinURL, ddbURL := m[1], m[2]
	kpid, dpid := readPID(t, dir, "kinesis"), readPID(t, dir, "dynamodb")
	for pid, name := range map[int]string{kpid: standin.KinesisName, dpid: standin.DynamoDBName} {
		if got, ok := standin.IsStandin(pid); !ok || got != name {
			t.Errorf("pid %d: IsStandin = %q, %v; want %s", pid, got, ok, name)
		}
	}
	if err := standin.CheckDynamoDB(ctx, ddbURL); err != nil {
		t.Error(err)
	}
	s, err := standin.KinesisClient(kinURL).DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("words")})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(s.StreamDescriptionSummary.OpenShardCount); n != 2 {
		t.Errorf("words has %d shards, want 2", n)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "env")); err != nil || string(b) != out.String() {
		t.Errorf("env file: %q, %v", b, err)
	}

	// Again: already up, same endpoints; a new stream is added.
	first := out.String()
	out.Reset()
	errOut.Reset()
	if err := run(ctx, []string{"up", "-run", dir, "-streams", "words:2,more:1"}, &out, &errOut); err != nil {
		t.Fatalf("second up: %v\n%s", err, errOut.String())
	}
	if out.String() != first || !strings.Contains(errOut.String(), "already up") {
		t.Errorf("second up printed %q / %q", out.String(), errOut.String())
	}
	if readPID(t, dir, "kinesis") != kpid || readPID(t, dir, "dynamodb") != dpid {
		t.Error("second up started new processes")
	}
	if err := standin.WaitStreamActive(ctx, standin.KinesisClient(kinURL), "more"); err != nil {
		t.Error(err)
	}

	out.Reset()
	if err := run(ctx, []string{"env", "-run", dir}, &out, &errOut); err != nil {
		t.Fatalf("env: %v", err)
	}
	if out.String() != first {
		t.Errorf("env printed %q, want %q", out.String(), first)
	}

	errOut.Reset()
	if err := run(ctx, []string{"down", "-run", dir}, &out, &errOut); err != nil {
		t.Fatalf("down: %v", err)
	}
	t.Logf("down:\n%s", errOut.String())
	for _, pid := range []int{kpid, dpid} {
		if _, ok := standin.IsStandin(pid); ok {
			t.Errorf("pid %d still running after down", pid)
		}
	}
	for _, f := range []string{"kinesis.pid", "dynamodb.pid", "kinesis.endpoint", "dynamodb.endpoint", "env"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after down: %v", f, err)
		}
	}
	if err := run(ctx, []string{"env", "-run", dir}, &out, &errOut); err == nil {
		t.Error("env after down succeeded")
	}
	errOut.Reset()
	if err := run(ctx, []string{"down", "-run", dir}, &out, &errOut); err != nil || !strings.Contains(errOut.String(), "no stand-ins") {
		t.Errorf("second down: %v, %q", err, errOut.String())
	}
}

// TestDetached runs the built command: the stand-ins outlive it.
func TestDetached(t *testing.T) {
	need(t)
	dir := t.TempDir()
	stopLeftovers(t, dir)
	bin := filepath.Join(t.TempDir(), "standins")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	up := exec.Command(bin, "up", "-run", dir)
	var stderr bytes.Buffer
	up.Stderr = &stderr
	out, err := up.Output()
	if err != nil {
		t.Fatalf("standins up: %v\n%s", err, stderr.String())
	}
	if !exportRE.Match(out) {
		t.Errorf("standins up printed %q", out)
	}
	// The command has exited; the stand-ins run on.
	kpid, dpid := readPID(t, dir, "kinesis"), readPID(t, dir, "dynamodb")
	for _, pid := range []int{kpid, dpid} {
		if _, ok := standin.IsStandin(pid); !ok {
			t.Errorf("pid %d gone after standins up exited", pid)
		}
	}
	env, err := exec.Command(bin, "env", "-run", dir).Output()
	if err != nil || string(env) != string(out) {
		t.Errorf("standins env: %q, %v", env, err)
	}
	if out, err := exec.Command(bin, "down", "-run", dir).CombinedOutput(); err != nil {
		t.Fatalf("standins down: %v\n%s", err, out)
	}
	for _, pid := range []int{kpid, dpid} {
		if _, ok := standin.IsStandin(pid); ok {
			t.Errorf("pid %d still running after standins down", pid)
		}
	}
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	var u usageError
	if err := run(ctx, nil, &out, &errOut); !errors.As(err, &u) {
		t.Errorf("no args: %v", err)
	}
	if err := run(ctx, []string{"sideways"}, &out, &errOut); !errors.As(err, &u) {
		t.Errorf("unknown command: %v", err)
	}
	if err := run(ctx, []string{"up", "-streams", "a:x", "-run", t.TempDir()}, &out, &errOut); !errors.As(err, &u) {
		t.Errorf("bad -streams: %v", err)
	}
	if err := run(ctx, []string{"down", "extra"}, &out, &errOut); !errors.As(err, &u) {
		t.Errorf("extra args: %v", err)
	}
	out.Reset()
	if err := run(ctx, []string{"help"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "usage: standins") {
		t.Errorf("help: %v %q", err, out.String())
	}
}
