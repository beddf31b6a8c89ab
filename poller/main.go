// Command poller reads a Kinesis data stream with shard leases and
// checkpoints in DynamoDB and hands de-aggregated batches to a handler with
// the AWS Lambda Kinesis signature, in process or through Lambda Invoke.
//
//	poller [run] -app-name A -stream-name S -handler print|wordcount
//	poller produce -stream-name S -rate 1000 -numbers 10 -aggregate 100
//	poller status -app-name A -stream-name S
//	poller reset -app-name A -stream-name S -to TRIM_HORIZON
//	poller resume -app-name A -stream-name S -shard shardId-000000000001
//	poller version
//
// Every flag has an environment variable (SHARDLINE_, then the name in
// upper case with dashes as underscores); a flag beats its variable.
// `poller -h` lists the commands, `poller <command> -h` a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/terminal"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// Main runs the poller and returns its exit code: 0, 1 for a failure, 2 for
// a bad setting. The first SIGINT or SIGTERM drains; a second exits at once.
func Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer func() { signal.Stop(sigs); close(sigs) }()
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		what := "stopping"
		if isRun(args) {
			what = "draining (finishing batches in flight, checkpointing, releasing leases)"
		}
		erase := "" // run's live status line, if any, in the same write
		if terminal.Is(stderr) {
			erase = terminal.Erase
		}
		fmt.Fprintf(stderr, "%spoller: %v: %s; signal again to exit at once\n", erase, s, what)
		cancel()
		if _, ok := <-sigs; ok {
			fmt.Fprintln(stderr, "poller: second signal: exiting now")
			os.Exit(130)
		}
	}()
	err := run(ctx, args, getenv, stdout, stderr)
	var ue *config.UsageError
	var dup *coordinator.DuplicateWorkerError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue), errors.As(err, &dup):
		fmt.Fprintf(stderr, "poller: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "poller: %v\n", err)
		return 1
	}
}

func isRun(args []string) bool {
	return len(args) == 0 || args[0] == "run" || len(args[0]) > 0 && args[0][0] == '-'
}

// commands are the sub-commands, in the order of the help, each with its
// line.
var commands = []struct{ name, line string }{
	{"run", "read the stream, call the handler, checkpoint (the default command)"},
	{"produce", "put lines of random numbers on a stream (the word producer); prints the totals Kinesis accepted"},
	{"status", "one row per shard: state, parents, owner, checkpoint, lag, last renewal; -watch follows it with records/s"},
	{"reset", "move an application's checkpoints to a position, with its pollers stopped"},
	{"resume", "clear a parked shard so it is retried at once"},
	{"version", "print the version, the VCS commit and the Go version"},
}

func commandLine(name string) string {
	for _, c := range commands {
		if c.name == name {
			return c.line
		}
	}
	return ""
}

func commandNames() string {
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// printHelp lists the commands.
func printHelp(w io.Writer) {
	fmt.Fprintln(w, "usage: poller [command] [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Read a Kinesis data stream with KCL-style leases and checkpoints in DynamoDB,")
	fmt.Fprintln(w, "and hand each batch to a Lambda-style handler.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.line)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "'poller <command> -h' lists a command's flags, each with its environment")
	fmt.Fprintf(w, "variable (%s<FLAG>, e.g. -stream-name and %s); a flag beats its variable.\n", config.EnvPrefix, config.EnvName("stream-name"))
}

// newFlagSet is a command's flag set: its -h prints the command's line,
// then its flags with their variables.
func newFlagSet(cmd string, stdout io.Writer) *flag.FlagSet {
	fs := config.NewFlagSet(cmd, stdout)
	flags := fs.Usage
	fs.Usage = func() {
		fmt.Fprintf(stdout, "poller %s: %s\n\n", cmd, commandLine(cmd))
		flags()
	}
	return fs
}

// run dispatches to a sub-command; run is the default.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			if len(args) > 1 && args[0] == "help" && commandLine(args[1]) != "" && args[1] != "version" {
				return run(ctx, []string{args[1], "-h"}, getenv, stdout, stderr)
			}
			printHelp(stdout)
			return nil
		case "-version", "--version", "version":
			if len(args) > 1 {
				return config.Usagef("version: unexpected argument %q", args[1])
			}
			return printVersion(stdout)
		}
	}
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runPoller(ctx, args, getenv, stdout, stderr)
	case "produce":
		return runProduce(ctx, args, getenv, stdout, stderr)
	case "status":
		return runStatus(ctx, args, getenv, stdout, stderr)
	case "reset":
		return runReset(ctx, args, getenv, stdout, stderr)
	case "resume":
		return runResume(ctx, args, getenv, stdout, stderr)
	}
	return config.Usagef("unknown command %q: allowed %s (poller -h describes them)", cmd, commandNames())
}
