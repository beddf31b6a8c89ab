package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// UsageError is a bad setting: one line naming it, the value and what is
// allowed. It maps to exit code 2.
type UsageError struct{ msg string }

// Error is the one line.
func (e *UsageError) Error() string { return e.msg }

// Usagef makes a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, args...)}
}

// EnvPrefix starts every setting's environment variable, so that names
// like FORCE, JSON or COUNT, which mean other things in a shell or a Lambda
// environment, are never read.
const EnvPrefix = "SHARDLINE_"

// EnvName is a flag's environment variable: EnvPrefix, then the name in
// upper case with dashes as underscores (-stream-name ↔ SHARDLINE_STREAM_NAME).
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs and then fills every flag not given on the
// command line from its environment variable. A flag beats its variable.
// A value that does not parse is a *UsageError naming the flag (or the
// variable), the value and the allowed form.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	fs.SetOutput(io.Discard)
	// The flag package calls Usage on every parse error: print it for -h only.
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := f.Value.(*checked); !ok {
			f.Value = &checked{Value: f.Value, def: f.DefValue}
		}
	})
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			if usage != nil {
				usage()
			}
			return err
		}
		var bad error
		fs.VisitAll(func(f *flag.Flag) {
			if c, ok := f.Value.(*checked); ok && c.failed != nil && bad == nil {
				bad = Usagef("-%s %q: %v", f.Name, c.failedValue, c.failed)
			}
		})
		if bad != nil {
			return bad
		}
		// An unknown flag or a flag without its value.
		return Usagef("%v (-h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q (flags start with -; -h lists them)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		v := getenv(EnvName(f.Name))
		if v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = Usagef("%s=%q: %v", EnvName(f.Name), v, e)
		}
	})
	return err
}

// checked wraps a flag's value so that a value that does not parse is
// reported with the allowed form (an integer such as 100, a duration such
// as 5s, true or false) instead of the flag package's strconv text.
type checked struct {
	flag.Value
	def         string // the flag's default, for the example
	failed      error
	failedValue string
}

func (c *checked) Set(s string) error {
	if err := c.Value.Set(s); err != nil {
		c.failed, c.failedValue = allowed(c.Value, c.def, s, err), s
		return c.failed
	}
	c.failed = nil
	return nil
}

func (c *checked) IsBoolFlag() bool {
	b, ok := c.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func (c *checked) Get() any {
	if g, ok := c.Value.(flag.Getter); ok {
		return g.Get()
	}
	return nil
}

// allowed names the form a value of v's type takes, with an example: the
// flag's default, or for a duration given as a bare number, that number
// in seconds. A value of another type keeps its own error.
func allowed(v flag.Value, def, given string, err error) error {
	g, ok := v.(flag.Getter)
	if !ok {
		return err
	}
	switch g.Get().(type) {
	case time.Duration:
		ex := "5s"
		if _, e := strconv.ParseFloat(given, 64); e == nil {
			ex = given + "s"
		} else if d, e := time.ParseDuration(def); e == nil && d > 0 {
			ex = def
		}
		return fmt.Errorf("allowed a duration such as %s (a number with a unit: ms, s, m, h)", ex)
	case bool:
		return errors.New("allowed true or false")
	case int, int64:
		return fmt.Errorf("allowed an integer such as %s", def)
	case uint, uint64:
		return fmt.Errorf("allowed a whole number such as %s", def)
	case float64:
		return fmt.Errorf("allowed a number such as %s", def)
	}
	return err
}

// typeName is the word shown after a flag in the help: from a back-quoted
// word in its usage, else from its type.
func typeName(f *flag.Flag) (name, usage string) {
	name, usage = flag.UnquoteUsage(f)
	if strings.Contains(f.Usage, "`") {
		return name, usage
	}
	var v any
	if g, ok := f.Value.(flag.Getter); ok {
		v = g.Get()
	}
	switch v.(type) {
	case bool:
		return "", usage
	case time.Duration:
		return "duration", usage
	case int, int64:
		return "int", usage
	case uint, uint64:
		return "uint", usage
	case float64:
		return "float", usage
	}
	return "string", usage
}
