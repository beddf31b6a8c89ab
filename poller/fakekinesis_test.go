package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/testwait"
)

// The benchmark module's fake Kinesis (shared/bench/peers/internal/
// fakekinesis) serves enhanced fan-out as AWS does, ChildShards at a
// shard's end included, which kinesis-mock never sends. It is a module of
// its own (its dependencies stay out of go.mod), so the tests build its
// command once per test binary, into a temporary directory that TestMain
// removes, and run it as a process.
var fakeBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// fakeKinesisBinary builds cmd/fakekinesis of the nested module (needs
// its two dependencies the root module lacks, fxamacker/cbor and
// x448/float16, in the module cache or from the proxy).
func fakeKinesisBinary(t *testing.T) string {
	t.Helper()
	fakeBuild.once.Do(func() {
		if fakeBuild.dir, fakeBuild.err = os.MkdirTemp("", "shardline-fakekinesis-"); fakeBuild.err != nil {
			return
		}
		bin := filepath.Join(fakeBuild.dir, "fakekinesis")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-C", filepath.Join("..", "shared", "bench", "peers"), "-o", bin, "./cmd/fakekinesis")
		if fakeBuild.out, fakeBuild.err = cmd.CombinedOutput(); fakeBuild.err == nil {
			fakeBuild.bin = bin
		}
	})
	if fakeBuild.err != nil {
		t.Fatalf("build the fake Kinesis (shared/bench/peers/cmd/fakekinesis): %v\n%s", fakeBuild.err, fakeBuild.out)
	}
	return fakeBuild.bin
}

// removeFakeKinesisBuild removes the built command, if any (TestMain).
func removeFakeKinesisBuild() {
	if fakeBuild.dir != "" {
		_ = os.RemoveAll(fakeBuild.dir)
	}
}

// fakeKinesis is a running fake Kinesis process.
type fakeKinesis struct {
	endpoint string // https://127.0.0.1:PORT (HTTP/2 by ALPN)
	caFile   string // its certificate, for AWS_CA_BUNDLE
	stderr   *testwait.Buffer
}

// startFakeKinesis runs the fake Kinesis over TLS with HTTP/2 on a
// loopback port, with the given flags (-stream NAME:SHARDS...), and stops
// it by its PID at cleanup. It fails the test if the fake was asked an
// operation it does not serve.
func startFakeKinesis(t *testing.T, args ...string) *fakeKinesis {
	t.Helper()
	bin := fakeKinesisBinary(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cmd := exec.Command(bin, append([]string{"-tls", "-addr", "127.0.0.1:0", "-ca-file", caFile}, args...)...)
	fk := &fakeKinesis{caFile: caFile, stderr: &testwait.Buffer{}}
	cmd.Stderr = fk.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	endpoint := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "KINESIS_ENDPOINT="); ok {
				endpoint <- v
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done: // exited and reaped: its pid is no longer ours
		default:
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}
		if s := fk.stderr.String(); strings.Contains(s, "UNKNOWN OPERATION") {
			t.Errorf("the fake Kinesis was asked an operation it does not serve:\n%s", tail(s, 4000))
		}
	})
	select {
	case fk.endpoint = <-endpoint:
	case <-done:
		t.Fatalf("the fake Kinesis exited at start: %s", fk.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the fake Kinesis printed no endpoint within 30s: %s", fk.stderr.String())
	}
	return fk
}

// newFakeEnv is newEnv with Kinesis the fake (over TLS, its certificate
// trusted through AWS_CA_BUNDLE by the test's clients and the pollers)
// holding one stream of shards, and DynamoDB Local as ever.
func newFakeEnv(t *testing.T, shards int) *testEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the stand-ins and the fake Kinesis (run without -short)")
	}
	d := standintest.DynamoDB(t)
	e := &testEnv{dynamoEP: d.Endpoint, app: standintest.UniqueName(t), stream: standintest.UniqueName(t)}
	fk := startFakeKinesis(t, "-stream", e.stream+":"+strconv.Itoa(shards), "-subscription-length", "10s")
	e.kinesisEP = fk.endpoint
	e.env = []string{"AWS_CA_BUNDLE=" + fk.caFile}
	t.Setenv("AWS_CA_BUNDLE", fk.caFile) // the test's own clients
	e.connect(t)
	return e
}
