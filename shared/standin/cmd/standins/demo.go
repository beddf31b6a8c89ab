package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shardline/shardline/shared/standin"
)

// demo runs the main job on fresh stand-ins: a 4-shard stream, the word
// producer and a poller running wordcount, until ctx ends (Ctrl-C). Then
// it stops the producer, drains the poller (final checkpoints, leases
// released) and stops the stand-ins, all by PID: nothing is left behind.
//
// The children run in process groups of their own, so the terminal's
// Ctrl-C reaches only this command, which stops them in that order.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("standins demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	poller := fs.String("poller", "bin/poller", "the poller `binary`")
	cacheDir := fs.String("cache", "", "install cache `dir` (default $"+standin.CacheDirEnv+" or <repo root>/.cache/standins)")
	rate := fs.Int("rate", 1000, "producer lines per second")
	numbers := fs.Int("numbers", 10, "random numbers per line")
	aggregate := fs.Int("aggregate", 100, "user records per KPL aggregate")
	shards := fs.Int("shards", 4, "shards of the stream")
	duration := fs.Duration("duration", 0, "stop by itself after this long (0: at Ctrl-C)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// A closed output (a pipe through tee or less that ended) must not
	// kill the demo halfway through stopping its processes.
	signal.Ignore(syscall.SIGPIPE)
	if _, err := os.Stat(*poller); err != nil {
		return fmt.Errorf("poller binary %s: %w (run make build)", *poller, err)
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	const streamName, app = "words", "wordcount-demo"
	fmt.Fprintln(stderr, "demo: starting kinesis-mock and DynamoDB Local (the first run installs them with npm)…")
	var kin, ddb *standin.Server
	var kerr, derr error
	var wg sync.WaitGroup
	wg.Go(func() {
		kin, kerr = standin.StartKinesis(ctx, standin.KinesisOptions{CacheDir: *cacheDir, InitializeStreams: fmt.Sprintf("%s:%d", streamName, *shards)})
	})
	wg.Go(func() { ddb, derr = standin.StartDynamoDB(ctx, standin.DynamoDBOptions{CacheDir: *cacheDir}) })
	wg.Wait()
	defer func() {
		for _, s := range []*standin.Server{kin, ddb} {
			if s != nil {
				_ = s.Stop()
			}
		}
		fmt.Fprintln(stderr, "demo: stand-ins stopped")
	}()
	if err := errors.Join(kerr, derr); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demo: kinesis-mock %s (pid %d), DynamoDB Local %s (pid %d), stream %s with %d shards\n",
		kin.Endpoint, kin.PID, ddb.Endpoint, ddb.PID, streamName, *shards)
	env := append(os.Environ(), standin.Env(kin.Endpoint, ddb.Endpoint)...)
	env = append(env, "SHARDLINE_STREAM_NAME="+streamName)

	prodOut := &strings.Builder{}
	producer, err := startChild(*poller, env, prodOut, prefixed(stderr, "producer: "),
		"produce", "-rate", fmt.Sprint(*rate), "-numbers", fmt.Sprint(*numbers), "-aggregate", fmt.Sprint(*aggregate))
	if err != nil {
		return err
	}
	defer producer.kill()
	poll, err := startChild(*poller, env, stdout, prefixed(stderr, "poller: "),
		"run", "-app-name", app, "-handler", "wordcount", "-initial-position", "TRIM_HORIZON", "-checkpoint-interval", "2s")
	if err != nil {
		return err
	}
	defer poll.kill()
	fmt.Fprintf(stderr, "demo: producer (pid %d) and poller (pid %d) running; word counts follow every 2s. Ctrl-C stops everything.\n", producer.pid(), poll.pid())

	var runErr error
	select {
	case <-ctx.Done():
	case <-producer.done:
		runErr = fmt.Errorf("the producer exited early: %v", producer.err)
	case <-poll.done:
		runErr = fmt.Errorf("the poller exited early: %v", poll.err)
	}
	fmt.Fprintln(stderr, "demo: stopping the producer, draining the poller…")
	producer.stop(10 * time.Second)
	poll.stop(30 * time.Second)
	fmt.Fprint(stdout, prodOut.String())
	return runErr
}

// child is a process of the demo, in its own process group.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startChild(bin string, env []string, stdout, stderr io.Writer, args ...string) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Own process group (the terminal's Ctrl-C reaches only the demo,
	// which stops the children in order), and killed if the demo dies.
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM (the poller drains on it) and SIGKILL after limit.
func (c *child) stop(limit time.Duration) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(limit):
		c.kill()
	}
}

func (c *child) kill() {
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.done
}

// prefixed writes each line of its output to w behind prefix.
func prefixed(w io.Writer, prefix string) io.Writer {
	r, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			fmt.Fprintln(w, prefix+sc.Text())
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return pw
}
