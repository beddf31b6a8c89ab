package main

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/terminal/ptytest"

	"github.com/shardline/shardline/shared/terminal"
	"github.com/shardline/shardline/shared/testwait"
)

// TestLiveView: `poller run` on a terminal logs text and keeps a status
// line redrawn in place below the records it prints; on SIGINT the line
// is erased and the drain message stands on a line of its own.
func TestLiveView(t *testing.T) {
	e := newEnv(t, 2)
	e.put(t, 20)
	tty, screen := ptytest.Open(t)
	cmd := exec.Command(os.Args[0], "run", "-handler", "print", "-initial-position", "TRIM_HORIZON")
	cmd.Env = append(os.Environ(), childEnv+"=1", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"SHARDLINE_KINESIS_ENDPOINT="+e.kinesisEP, "SHARDLINE_DYNAMODB_ENDPOINT="+e.dynamoEP,
		"SHARDLINE_APP_NAME="+e.app, "SHARDLINE_STREAM_NAME="+e.stream)
	cmd.Stdout, cmd.Stderr = tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() || testing.Verbose() {
			t.Logf("terminal:\n%q", tail(screen.String(), 4000))
		}
	})
	testwait.Until(t, time.Minute, "20 records and the status line with 2 shards", func() bool {
		s := screen.String()
		return strings.Count(s, `"shardId"`) >= 20 && strings.Contains(s, terminal.Erase+"2 shards | ")
	})
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("poller did not exit within a minute of SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	s := screen.String()
	if !strings.Contains(s, "level=INFO msg=\"worker started\"") {
		t.Error("the logs on a terminal are not text")
	}
	// Every printed record and log line starts on a line of its own: the
	// status line is erased before it.
	for _, l := range strings.Split(s, "\r\n") {
		if i := strings.Index(l, `{"shardId"`); i > 0 && !strings.HasSuffix(l[:i], terminal.Erase) {
			t.Errorf("a record printed after other text on its line: %q", l)
		}
		if i := strings.Index(l, "poller: interrupt"); i > 0 && !strings.HasSuffix(l[:i], terminal.Erase) {
			t.Errorf("the drain message after other text on its line: %q", l)
		}
	}
	if !strings.HasSuffix(s, terminal.Erase) && !strings.HasSuffix(s, "\r\n") {
		t.Errorf("the terminal ends with %q: want the status line erased", tail(s, 200))
	}
}
