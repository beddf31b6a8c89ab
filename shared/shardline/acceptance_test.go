package shardline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/testwait"
)

// userCount is the acceptance test's count (the README's main.go calls
// count, the user's code): it prints each record it takes as a JSON line
// on stdout, and fails the record "poison" once per process.
const userCount = `package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
)

var (
	mu     sync.Mutex
	failed bool
)

func count(ctx context.Context, key string, data []byte) error {
	mu.Lock()
	defer mu.Unlock()
	if string(data) == "poison" && !failed {
		failed = true
		os.Stdout.WriteString("FAILED-ONCE\n")
		return errors.New("poison, once")
	}
	b, _ := json.Marshal(map[string]string{"key": key, "data": string(data)})
	os.Stdout.Write(append(b, '\n'))
	return nil
}
`

// readmeMain is the first Go block under README.md's "## Your own
// handler": the main.go a user copies.
func readmeMain(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n## Your own handler\n")
	if i < 0 {
		t.Fatal(`README.md has no "## Your own handler" section`)
	}
	m := regexp.MustCompile("(?s)\n```go\n(.*?)\n```\n").FindStringSubmatch(s[i:])
	if m == nil || !strings.Contains(m[1], "func main()") {
		t.Fatal(`README.md's "Your own handler" has no Go block with func main()`)
	}
	return m[1] + "\n"
}

// buildUserModule writes a module of the user's own in a temporary
// directory — the README's main.go verbatim, userCount, a go.mod with a
// replace to this checkout — and builds it once, as a Lambda bootstrap
// that also runs anywhere.
func buildUserModule(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The checkout's own requirements, so that the build needs no module
	// the checkout's go.sum does not already list.
	reqs := regexp.MustCompile(`(?s)require \(.*?\)\n`).FindAllString(string(gomod), -1)
	mod := "module example.com/keycount\n\ngo 1.26.8\n\nrequire github.com/shardline/shardline v0.0.0-00010101000000-000000000000\n\n" +
		strings.Join(reqs, "\n") + "\nreplace github.com/shardline/shardline => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": mod, "go.sum": string(sum), "main.go": readmeMain(t, root), "count.go": userCount} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the user's module: %v\n%s\nmain.go:\n%s", err, out, readmeMain(t, root))
	}
	return bin
}

// counted are the data of the records the user's handler printed.
func counted(out string) map[string]int {
	seen := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		var r struct{ Key, Data string }
		if json.Unmarshal([]byte(l), &r) == nil && r.Data != "" {
			seen[r.Data]++
		}
	}
	return seen
}

// TestUserModule: a binary built from a module of the user's own, whose
// main.go is the README's, runs (a) as `./app run` against the stand-ins
// (every record handled, the failed one retried; status, reset and
// version work), (b) under AWS's runtime interface emulator with the
// schedule's event (records handled, a summary returned, leases
// released), and (c) under the emulator with Lambda's Kinesis event
// holding a KPL aggregate with the failing record (the answer names the
// aggregate).
func TestUserModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and runs it against the stand-ins and the emulator")
	}
	bin := buildUserModule(t)
	k, d := standintest.Both(t)
	streamName := standintest.NewStream(t, k.Endpoint, 2)
	ctx := context.Background()
	prod, err := produce.New(ctx, standintest.KinesisClient(k.Endpoint), streamName, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	var recs []kpl.UserRecord
	for i := range 40 {
		data := fmt.Sprint("r", i)
		if i == 17 {
			data = "poison"
		}
		want[data] = true
		recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint("k", i%7), Data: []byte(data)})
	}
	if err := prod.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	env := []string{"AWS_EC2_METADATA_DISABLED=true", "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"SHARDLINE_KINESIS_ENDPOINT=" + k.Endpoint, "SHARDLINE_DYNAMODB_ENDPOINT=" + d.Endpoint, "SHARDLINE_STREAM_NAME=" + streamName,
		"SHARDLINE_INITIAL_POSITION=TRIM_HORIZON", "SHARDLINE_FAILOVER_TIME=3s", "SHARDLINE_CHECKPOINT_INTERVAL=200ms"}
	table := func(app string) []lease.Lease {
		ls, err := lease.NewTable(standintest.DynamoDBClient(d.Endpoint), app).List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}

	t.Run("VM", func(t *testing.T) {
		app := standintest.UniqueName(t)
		vars := append(env, "SHARDLINE_APP_NAME="+app)
		out, errOut := &testwait.Buffer{}, &testwait.Buffer{}
		cmd := exec.Command(bin, "run")
		cmd.Env, cmd.Stdout, cmd.Stderr = append(os.Environ(), vars...), out, errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			<-done
			if t.Failed() {
				t.Logf("stderr:\n%s", errOut.String())
			}
		})
		testwait.Until(t, time.Minute, "every record counted", func() bool { return len(counted(out.String())) == len(want) })
		if n := strings.Count(out.String(), "FAILED-ONCE"); n != 1 {
			t.Errorf("the poison record failed %d times, want once", n)
		}
		for data := range want {
			if counted(out.String())[data] == 0 {
				t.Errorf("record %q not counted", data)
			}
		}
		// Drain on SIGTERM: checkpoints written, leases released.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run after SIGTERM: %v\n%s", err, errOut.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("run did not exit within 30 s of SIGTERM")
		}
		done <- nil // for the cleanup
		for _, l := range table(app) {
			if l.Owner != "" || l.Checkpoint.Seq == "TRIM_HORIZON" {
				t.Errorf("lease %s after the drain: owner %q, checkpoint %v", l.Key, l.Owner, l.Checkpoint)
			}
		}
		runCmd := func(args ...string) string {
			c := exec.Command(bin, args...)
			c.Env = append(os.Environ(), vars...)
			b, err := c.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, b)
			}
			return string(b)
		}
		if s := runCmd("status"); !strings.Contains(s, "shardId-000000000000") || !strings.Contains(s, "shardId-000000000001") {
			t.Errorf("status shows no shards:\n%s", s)
		}
		runCmd("reset", "-to", "TRIM_HORIZON")
		for _, l := range table(app) {
			if l.Checkpoint.Seq != "TRIM_HORIZON" {
				t.Errorf("lease %s after reset: checkpoint %v, want TRIM_HORIZON", l.Key, l.Checkpoint)
			}
		}
		if v := runCmd("version"); !regexp.MustCompile(`(?m)^bootstrap \S+ \(example.com/keycount\)\nshardline \S+ => /`).MatchString(v) {
			t.Errorf("version prints %q: want the module's version, then Shardline's with the replace", v)
		}
	})

	invoke := func(t *testing.T, endpoint string, event []byte) []byte {
		t.Helper()
		resp, err := http.Post(endpoint+standin.RIEInvokePath, "application/json", bytes.NewReader(event))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
		}
		return b
	}

	t.Run("ScheduledUnderRIE", func(t *testing.T) {
		app := standintest.UniqueName(t)
		log := &testwait.Buffer{}
		rie, err := standin.StartRIE(ctx, standin.RIEConfig{Bootstrap: bin, Name: "keycount", Timeout: 20 * time.Second, Log: log,
			Env: append(env, "SHARDLINE_APP_NAME="+app, "SHARDLINE_DEADLINE_MARGIN=2s")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rie.Stop() })
		var records int
		for i := 0; len(counted(log.String())) < len(want); i++ {
			if i == 5 {
				t.Fatalf("%d of %d records counted after 5 runs:\n%s", len(counted(log.String())), len(want), log.String())
			}
			var sum struct {
				Records        int    `json:"records"`
				StoppedBecause string `json:"stoppedBecause"`
				ErrorType      string `json:"errorType"`
			}
			b := invoke(t, rie.Endpoint, []byte(`{"shardline":"poll","runFor":"4s"}`))
			if err := json.Unmarshal(b, &sum); err != nil || sum.ErrorType != "" || sum.StoppedBecause != "runFor 4s" {
				t.Fatalf("answer %s: want the run's summary, stopped by runFor", b)
			}
			records += sum.Records
		}
		if records < len(want) {
			t.Errorf("summaries count %d records, want at least %d", records, len(want))
		}
		for _, l := range table(app) {
			if l.Owner != "" {
				t.Errorf("lease %s still owned by %q after the run", l.Key, l.Owner)
			}
		}
	})

	t.Run("NativeTriggerUnderRIE", func(t *testing.T) {
		log := &testwait.Buffer{}
		rie, err := standin.StartRIE(ctx, standin.RIEConfig{Bootstrap: bin, Name: "keycount", Timeout: 5 * time.Second, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rie.Stop() })
		agg, err := kpl.Aggregate([]kpl.UserRecord{{PartitionKey: "a", Data: []byte("x")}, {PartitionKey: "b", Data: []byte("poison")}, {PartitionKey: "c", Data: []byte("y")}})
		if err != nil {
			t.Fatal(err)
		}
		ev := events.KinesisEvent{}
		for i, data := range [][]byte{[]byte("hello"), agg} {
			seq := fmt.Sprint(4959000 + i)
			ev.Records = append(ev.Records, events.KinesisEventRecord{EventSource: "aws:kinesis", EventID: "shardId-000000000000:" + seq,
				EventName: "aws:kinesis:record", EventVersion: "1.0", AwsRegion: "us-east-1", EventSourceArn: "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
				Kinesis: events.KinesisRecord{KinesisSchemaVersion: "1.0", PartitionKey: "p", SequenceNumber: seq, Data: data}})
		}
		payload, _ := json.Marshal(ev)
		b := invoke(t, rie.Endpoint, payload)
		if got, want := strings.TrimSpace(string(b)), `{"batchItemFailures":[{"itemIdentifier":"4959001"}]}`; got != want {
			t.Fatalf("answer %s, want %s (the aggregate holding the failed user record)", got, want)
		}
		testwait.Until(t, 10*time.Second, "the records before the failure counted", func() bool {
			c := counted(log.String())
			return c["hello"] == 1 && c["x"] == 1
		})
		if c := counted(log.String()); c["y"] != 0 || c["poison"] != 0 {
			t.Errorf("records after the failure were counted: %v", c)
		}
		// Lambda retries from the aggregate: now every user record passes.
		if got := strings.TrimSpace(string(invoke(t, rie.Endpoint, payload))); got != `{"batchItemFailures":null}` && got != `{"batchItemFailures":[]}` {
			t.Errorf("retry answered %s, want no failures", got)
		}
		// An event the program cannot read is an error naming it.
		if got := string(invoke(t, rie.Endpoint, []byte(`{"Records":[{"eventSource":"aws:sqs"}]}`))); !strings.Contains(got, `"errorType":"EventError"`) || !strings.Contains(got, "aws:sqs") {
			t.Errorf("an SQS event answered %s, want an EventError naming aws:sqs", got)
		}
	})
}
