package config

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Groups are the headings of the shared settings in a command's help, in
// order, with their flags. A command's own flags (produce -rate, reset
// -to, ...) come first, under the command's name.
var Groups = []struct {
	Heading string
	Flags   []string
}{
	{"stream and position", []string{"app-name", "stream-name", "initial-position", "initial-timestamp", "consumer-name", "consumer-arn"}},
	{"handler or function", []string{"handler", "target-function", "handler-timeout", "function-timeout"}},
	{"batching and failures", []string{"batch-size", "max-batching-window", "parallelization-factor", "bisect-on-error",
		"max-retry-attempts", "max-record-age", "on-failure", "tumbling-window", "filter", "report-batch-item-failures",
		"out-of-range", "retry-wait-time", "retry-max-attempts", "idle-time-between-reads"}},
	{"leases", []string{"worker-id", "failover-time", "graceful-handoff-timeout", "former-stream-lease-retention", "max-leases", "checkpoint-interval"}},
	{"AWS access", []string{"region", "kinesis-endpoint", "dynamodb-endpoint", "lambda-endpoint",
		"kinesis-role-arn", "dynamodb-role-arn", "cloudwatch-role-arn"}},
	{"logging and metrics", []string{"log-level", "log-format", "quiet", "metrics-level", "metrics-dimensions", "metrics-addr", "metrics-cloudwatch"}},
}

// NewFlagSet makes a flag set whose -h prints, on stdout, each flag with
// its variable, grouped under headings.
func NewFlagSet(name string, stdout io.Writer) *flag.FlagSet {
	return NewProgramFlagSet("poller", name, stdout)
}

// NewProgramFlagSet is NewFlagSet for the command name of the program
// prog (the binary's name in the usage line).
func NewProgramFlagSet(prog, name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: %s %s [flags]\n\n", prog, name)
		fmt.Fprintf(stdout, "Each flag can be given as the environment variable after it; a flag beats its variable.\n")
		PrintDefaults(stdout, fs)
	}
	return fs
}

// PrintDefaults writes a flag set's flags with their variables: the
// command's own first, then the shared settings under Groups' headings.
func PrintDefaults(w io.Writer, fs *flag.FlagSet) {
	grouped := map[string]bool{}
	for _, g := range Groups {
		for _, f := range g.Flags {
			grouped[f] = true
		}
	}
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if !grouped[f.Name] {
			own = append(own, f)
		}
	})
	section(w, fs.Name(), own)
	for _, g := range Groups {
		var fl []*flag.Flag
		for _, name := range g.Flags {
			if f := fs.Lookup(name); f != nil {
				fl = append(fl, f)
			}
		}
		section(w, g.Heading, fl)
	}
}

func section(w io.Writer, heading string, fl []*flag.Flag) {
	if len(fl) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", heading)
	for _, f := range fl {
		name, usage := typeName(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s  (%s)\n    \t%s", line, EnvName(f.Name), strings.ReplaceAll(usage, "\n", "\n    \t"))
		if !slices.Contains([]string{"", "0", "false"}, f.DefValue) {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}
