package main

import (
	"context"
	"github.com/shardline/shardline/shared/testwait"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `standins demo` as `make demo` does, waits for word counts,
// interrupts it as Ctrl-C does (main maps SIGINT to cancelling ctx) and
// checks that it stops cleanly and leaves none of its processes behind.
//
// With -consumer (make demo CONSUMER=name) the poller reads with enhanced
// fan-out: kinesis-mock as it is, through Shardline's own reader.
func TestDemo(t *testing.T) {
	need(t)
	poller := filepath.Join(t.TempDir(), "poller")
	if out, err := exec.Command("go", "build", "-o", poller, "github.com/shardline/shardline/poller").CombinedOutput(); err != nil {
		t.Fatalf("build poller: %v\n%s", err, out)
	}
	t.Run("polling", func(t *testing.T) { testDemo(t, poller) })
	t.Run("fan-out", func(t *testing.T) { testDemo(t, poller, "-consumer", "words-demo") })
}

func testDemo(t *testing.T, poller string, extra ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &testwait.Buffer{}, &testwait.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"demo", "-poller", poller}, extra...), stdout, stderr) }()

	deadline := time.Now().Add(2 * time.Minute)
	for strings.Count(stdout.String(), "word counts:") < 2 {
		select {
		case err := <-done:
			t.Fatalf("demo ended early: %v\nstderr:\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no word counts within 2 minutes; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel() // Ctrl-C
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo returned %v after Ctrl-C\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("demo did not stop within a minute of Ctrl-C")
	}
	out := stdout.String()
	for _, want := range []string{"word counts:", "totals of the numbers sent:", "demo: the poller's last counts hold every number the producer sent"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out[max(0, len(out)-1500):])
		}
	}
	if len(extra) > 0 && !strings.Contains(stderr.String(), "subscribed to the shard (enhanced fan-out)") {
		t.Errorf("the poller did not read with enhanced fan-out; stderr:\n%s", stderr.String())
	}
	pids := regexp.MustCompile(`\(pid (\d+)\)`).FindAllStringSubmatch(stderr.String(), -1)
	if len(pids) != 4 {
		t.Fatalf("found %d PIDs in the demo's messages, want 4 (two stand-ins, producer, poller):\n%s", len(pids), stderr.String())
	}
	for _, m := range pids {
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d is still running after the demo stopped", pid)
		}
	}
}
