// Command poller reads a Kinesis data stream with shard leases and
// checkpoints in DynamoDB and hands de-aggregated batches to a handler with
// the AWS Lambda Kinesis signature, in process or through Lambda Invoke.
//
//	poller [run] -app-name A -stream-name S -handler print|wordcount
//	poller produce -stream-name S -rate 1000 -numbers 10 -aggregate 100
//	poller status -app-name A -stream-name S
//	poller reset -app-name A -stream-name S -to TRIM_HORIZON
//
// Every flag has an environment variable (upper case, dashes become
// underscores); a flag beats its variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/shardline/shardline/shared/config"
	"io"
	"os"
	"os/signal"
	"syscall"
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
		fmt.Fprintf(stderr, "poller: %v: %s; signal again to exit at once\n", s, what)
		cancel()
		if _, ok := <-sigs; ok {
			fmt.Fprintln(stderr, "poller: second signal: exiting now")
			os.Exit(130)
		}
	}()
	err := run(ctx, args, getenv, stdout, stderr)
	var ue *config.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
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

// run dispatches to a sub-command; run is the default.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
	case "help":
		fmt.Fprintln(stdout, "usage: poller [run|produce|status|reset] [flags]; poller <command> -h lists a command's flags")
		return nil
	}
	return config.Usagef("unknown command %q: allowed run, produce, status, reset", cmd)
}
