package shardline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/terminal"
)

// Main runs the command line with args (os.Args[1:]) and returns its exit
// code: 0, 1 for a failure, 2 for a bad setting. The first SIGINT or
// SIGTERM drains; a second exits at once (130). A replay the first signal
// stopped before its end exits with 128 + the signal's number: 130 for
// SIGINT, 143 for SIGTERM (ExitInterrupted).
func (a *App) Main(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// With JSON logs (-log-format json, or auto off a terminal), run's own
	// lines — the signal's and the error it ends with — are JSON too.
	var jsonLog *slog.Logger
	if (isRun(args) || isCommand(args, "redrive") || isCommand(args, "replay")) && config.ResolveFormat(logFormat(args, getenv), terminal.Is(stderr), false) == config.FormatJSON {
		jsonLog = config.NewLogger(stderr, config.FormatJSON, slog.LevelInfo)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer func() { signal.Stop(sigs); close(sigs) }()
	var got atomic.Value // the first signal
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		got.Store(s)
		what := "stopping"
		if isRun(args) {
			what = "draining (finishing batches in flight, checkpointing, releasing leases)"
		} else if isCommand(args, "redrive") {
			what = "stopping (finishing batches in flight, cleaning up what is done; the rest stays in the source)"
		} else if isCommand(args, "replay") {
			what = "stopping (no more reads; handler calls in flight finish, then where each shard resumes)"
		}
		if jsonLog != nil {
			jsonLog.Info(fmt.Sprintf("%s: %v: %s; signal again to exit at once", a.name, s, what), "signal", s.String())
		} else {
			erase := "" // run's live status line, if any, in the same write
			if terminal.Is(stderr) {
				erase = terminal.Erase
			}
			fmt.Fprintf(stderr, "%s%s: %v: %s; signal again to exit at once\n", erase, a.name, s, what)
		}
		cancel()
		if _, ok := <-sigs; ok {
			if jsonLog != nil {
				jsonLog.Warn(a.name + ": second signal: exiting now")
			} else {
				fmt.Fprintf(stderr, "%s: second signal: exiting now\n", a.name)
			}
			os.Exit(130)
		}
	}()
	err := a.Run(ctx, args, getenv, stdout, stderr)
	var ue *config.UsageError
	var dup *coordinator.DuplicateWorkerError
	var ri *ReplayInterruptedError
	code := 1
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue), errors.As(err, &dup):
		code = 2
	case errors.As(err, &ri):
		s, _ := got.Load().(os.Signal)
		code = ExitInterrupted(s)
	}
	if jsonLog != nil {
		attrs := []any{"exitCode", code}
		if ri != nil {
			attrs = append(attrs, ri.LogAttrs()...)
		}
		jsonLog.Error(a.name+": "+err.Error(), attrs...)
	} else {
		fmt.Fprintf(stderr, "%s: %v\n", a.name, err)
	}
	return code
}

// ExitInterrupted is the exit code of a command a signal stopped before
// its end (a replay with shards not finished): 128 + the signal's number,
// as shells report it: 130 for SIGINT (Ctrl-C), 143 for SIGTERM; 130 when
// no signal is known.
func ExitInterrupted(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok && n > 0 {
		return 128 + int(n)
	}
	return 130
}

// logFormat is -log-format as args or SHARDLINE_LOG_FORMAT give it, before
// the settings are parsed ("" when neither does).
func logFormat(args []string, getenv func(string) string) string {
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "log-format" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return getenv(config.EnvName("log-format"))
}

func isCommand(args []string, name string) bool {
	return len(args) > 0 && args[0] == name
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
	{"replay", "read a range of the stream (times or sequence numbers) into the handler again, with no lease table"},
	{"reset", "move an application's checkpoints to a position, with its pollers stopped"},
	{"resume", "clear a parked shard so it is retried at once"},
	{"redrive", "deliver records given up to an on-failure destination again (-from a queue, an S3 prefix or a file), then clean them up"},
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
func (a *App) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: %s [command] [flags]\n", a.name)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Read a Kinesis data stream with KCL-style leases and checkpoints in DynamoDB,")
	fmt.Fprintln(w, "and hand each batch to a Lambda-style handler.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.line)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "'%s <command> -h' lists a command's flags, each with its environment\n", a.name)
	fmt.Fprintf(w, "variable (%s<FLAG>, e.g. -stream-name and %s); a flag beats its variable.\n", config.EnvPrefix, config.EnvName("stream-name"))
}

// newFlagSet is a command's flag set: its -h prints the command's line,
// then its flags with their variables.
func (a *App) newFlagSet(cmd string, stdout io.Writer) *flag.FlagSet {
	fs := config.NewProgramFlagSet(a.name, cmd, stdout)
	flags := fs.Usage
	fs.Usage = func() {
		fmt.Fprintf(stdout, "%s %s: %s\n\n", a.name, cmd, commandLine(cmd))
		flags()
		if cmd == "run" {
			printAWSVariables(stdout)
		}
	}
	return fs
}

// printAWSVariables lists the variables of the AWS SDKs that `run` reads
// besides its settings.
func printAWSVariables(w io.Writer) {
	fmt.Fprint(w, `
AWS variables (read as the AWS SDKs read them):
  AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>, AWS_PROFILE, credentials
    	as the AWS SDK for Go defines them (-region and the -*-endpoint flags beat them)
  AWS_CBOR_DISABLE=true
    	read GetRecords in JSON from the start (the AWS SDK for Java's variable). Without it,
    	GetRecords is read in Kinesis's CBOR protocol, and in JSON from the first read an
    	endpoint refuses in CBOR and answers in JSON (moto_server does); one INFO line says so
`)
}

// Run runs the command line with args until it ends or ctx is done (for
// `run`: cancelling ctx drains, as the first signal does in Main). The
// error of a bad setting is a *config.UsageError (exit code 2 in Main).
// Run installs no signal handler.
func (a *App) Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			if len(args) > 1 && args[0] == "help" && commandLine(args[1]) != "" && args[1] != "version" {
				return a.Run(ctx, []string{args[1], "-h"}, getenv, stdout, stderr)
			}
			a.printHelp(stdout)
			return nil
		case "-version", "--version", "version":
			if len(args) > 1 {
				return config.Usagef("version: unexpected argument %q", args[1])
			}
			return a.printVersion(stdout)
		}
	}
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return a.runPoller(ctx, args, getenv, stdout, stderr)
	case "produce":
		return a.runProduce(ctx, args, getenv, stdout, stderr)
	case "status":
		return a.runStatus(ctx, args, getenv, stdout, stderr)
	case "replay":
		return a.runReplay(ctx, args, getenv, stdout, stderr)
	case "reset":
		return a.runReset(ctx, args, getenv, stdout, stderr)
	case "resume":
		return a.runResume(ctx, args, getenv, stdout, stderr)
	case "redrive":
		return a.runRedrive(ctx, args, getenv, stdout, stderr)
	}
	return config.Usagef("unknown command %q: allowed %s (%s -h describes them)", cmd, commandNames(), a.name)
}
