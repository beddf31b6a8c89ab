package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
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
	consumer := fs.String("consumer", "", "read with enhanced fan-out (SubscribeToShard) through the stream consumer of this `name`, registered if missing (make demo CONSUMER=name); empty: polling")
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
	counts := &countWatch{w: stdout}
	runArgs := []string{"run", "-app-name", app, "-handler", "wordcount", "-initial-position", "TRIM_HORIZON", "-checkpoint-interval", "2s"}
	if *consumer != "" {
		runArgs = append(runArgs, "-consumer-name", *consumer)
	}
	poll, err := startChild(*poller, env, counts, prefixed(stderr, "poller: "), runArgs...)
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
	// The poller prints its counts every 2 s: give it the time to read
	// and print what the producer sent last, so that its last counts and
	// the producer's totals below can be compared.
	sent := sentNumbers(prodOut.String())
	if runErr == nil && sent > 0 {
		deadline := time.Now().Add(15 * time.Second)
		for counts.words() < sent && time.Now().Before(deadline) && poll.running() {
			time.Sleep(100 * time.Millisecond)
		}
	}
	poll.stop(30 * time.Second)
	fmt.Fprint(stdout, prodOut.String())
	switch got := counts.words(); {
	case sent == 0:
	case got == sent:
		fmt.Fprintf(stdout, "demo: the poller's last counts hold every number the producer sent (%d)\n", sent)
	default:
		fmt.Fprintf(stdout, "demo: the poller's last counts hold %d of the %d numbers sent: it was stopped before it printed the rest; they are in the stream, after its checkpoints, for its next run\n", got, sent)
	}
	return runErr
}

// sentNumbers reads "(N numbers)" from produce's closing line.
func sentNumbers(out string) int64 {
	m := regexp.MustCompile(`\((\d+) numbers\)`).FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// countWatch passes the poller's output on and remembers the words of its
// last "word counts: N words" line.
type countWatch struct {
	w    io.Writer
	mu   sync.Mutex
	last int64
	part []byte
}

var countsLine = regexp.MustCompile(`word counts: (\d+) words`)

func (c *countWatch) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.part = append(c.part, p...)
	for {
		i := bytes.IndexByte(c.part, '\n')
		if i < 0 {
			break
		}
		if m := countsLine.FindSubmatch(c.part[:i]); m != nil {
			c.last, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
		c.part = c.part[i+1:]
	}
	c.mu.Unlock()
	return c.w.Write(p)
}

func (c *countWatch) words() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
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

// running reports whether the process has not exited yet.
func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

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
