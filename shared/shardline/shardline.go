package shardline

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/handlers"
	"github.com/shardline/shardline/shared/stream"
)

// Handler is the AWS Lambda Kinesis handler signature, as
// github.com/aws/aws-lambda-go/events defines the event and response.
// Shardline calls a handler serially within a shard (or, with
// -parallelization-factor, serially per partition key) and concurrently
// across shards. The context carries the call's deadline
// (-handler-timeout) and a lambdacontext.LambdaContext.
type Handler = stream.Handler

// WindowHandler is the Lambda signature of a Kinesis handler with a
// tumbling window (-tumbling-window, Lambda's TumblingWindowInSeconds): it
// gets the window, the state the previous call returned for it and the
// window's records, and returns the new state.
type WindowHandler = stream.WindowHandler

// App is a program built on Shardline: its handlers and options. Start
// runs it; Main and Run run its command line; Invoke answers one Lambda
// invocation. An App is safe for concurrent use once built.
type App struct {
	name        string
	handler     Handler       // Start's: the in-process handler when -handler is not given
	window      WindowHandler // StartWindow's
	named       map[string]Handler
	namedWindow map[string]WindowHandler
	defaults    map[string]string // flag name → default value
	logger      *slog.Logger
	commit      string // the VCS commit, for version, when the build stamps it
	fn          *function
	fnOnce      sync.Once
}

// Option configures an App (New, Start, StartWindow) or a Worker.
type Option func(*App)

// New builds an App from opts. It panics, naming the handler, when a
// handler is nil or a name is registered twice: both are mistakes in a
// program's main that no run could recover from.
func New(opts ...Option) *App {
	a := &App{name: filepath.Base(os.Args[0]), named: map[string]Handler{}, namedWindow: map[string]WindowHandler{}, defaults: map[string]string{}}
	if a.name == "" || a.name == "." {
		a.name = "shardline"
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Start runs h wherever the binary runs, and does not return:
//
//   - On AWS Lambda (the Runtime API is set) it answers invocations: an
//     event whose records come from aws:kinesis is Lambda's own Kinesis
//     trigger (or a Shardline poller's -target-function call), handed to h
//     with KPL aggregates de-aggregated and batchItemFailures mapped back
//     to identifiers Lambda accepts; a scheduled event (EventBridge's
//     "source": "aws.events", or {"shardline": "poll"} as template.yaml's
//     schedule sends it) runs the scheduled poller with h in process until
//     the deadline minus SHARDLINE_DEADLINE_MARGIN; any other event is
//     answered with an error naming what it got.
//   - Anywhere else it is the whole poller command line (run, status,
//     reset, resume, produce, version; -h lists them) with h as the
//     in-process handler: `./app run` needs no -handler.
//
// Settings come from flags and SHARDLINE_* variables, as for `poller`.
// Start panics if h is nil.
func Start(h Handler, opts ...Option) {
	if h == nil {
		panic("shardline.Start: nil handler")
	}
	New(append([]Option{Handle(h)}, opts...)...).Start()
}

// StartWindow is Start for a handler with a tumbling window: on Lambda it
// answers Lambda's windowed Kinesis events; off Lambda, `run` needs
// -tumbling-window (SHARDLINE_TUMBLING_WINDOW). It panics if h is nil.
func StartWindow(h WindowHandler, opts ...Option) {
	if h == nil {
		panic("shardline.StartWindow: nil handler")
	}
	New(append([]Option{HandleWindow(h)}, opts...)...).Start()
}

// Start runs the App as the package's Start does and does not return: on
// Lambda it serves invocations with lambda.Start; elsewhere it runs the
// command line with os.Args and exits with its code.
func (a *App) Start() {
	if OnLambda() {
		lambda.Start(a.Invoke)
		return
	}
	os.Exit(a.Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// OnLambda reports whether the process runs in an AWS Lambda execution
// environment (the runtime sets AWS_LAMBDA_RUNTIME_API), which is where
// Start serves invocations instead of the command line.
func OnLambda() bool { return os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" }

// Handle makes h the App's own handler: the in-process handler of `run`
// and of the scheduled poller when -handler and -target-function are not
// given, and the handler of Kinesis events on Lambda. Start(h) is
// New(Handle(h)).Start(). It panics if h is nil.
func Handle(h Handler) Option {
	if h == nil {
		panic("shardline.Handle: nil handler")
	}
	return func(a *App) { a.handler = h }
}

// HandleWindow makes h the App's own windowed handler (-tumbling-window,
// and Lambda's windowed Kinesis events). An App may have both Handle's
// and HandleWindow's: the window setting picks. It panics if h is nil.
func HandleWindow(h WindowHandler) Option {
	if h == nil {
		panic("shardline.HandleWindow: nil handler")
	}
	return func(a *App) { a.window = h }
}

// WithName sets the program's name in its help and messages (default: the
// binary's file name).
func WithName(name string) Option {
	return func(a *App) {
		if name != "" {
			a.name = name
		}
	}
}

// WithHandler adds an in-process handler under name, chosen with
// `-handler name` (SHARDLINE_HANDLER), beside the built-ins print and
// wordcount. It panics if h is nil, the name is empty or taken.
func WithHandler(name string, h Handler) Option {
	return func(a *App) {
		checkName("WithHandler", name, h == nil)
		if _, dup := a.named[name]; dup || builtin(name) {
			panic(fmt.Sprintf("shardline.WithHandler: handler %q registered twice", name))
		}
		a.named[name] = h
	}
}

// WithWindowHandler adds a windowed handler under name, for `-handler
// name -tumbling-window 60s`. It panics if h is nil, the name is empty or
// taken.
func WithWindowHandler(name string, h WindowHandler) Option {
	return func(a *App) {
		checkName("WithWindowHandler", name, h == nil)
		if _, dup := a.namedWindow[name]; dup || builtinWindow(name) {
			panic(fmt.Sprintf("shardline.WithWindowHandler: handler %q registered twice", name))
		}
		a.namedWindow[name] = h
	}
}

func checkName(fn, name string, isNil bool) {
	if name == "" {
		panic("shardline." + fn + ": empty handler name")
	}
	if isNil {
		panic(fmt.Sprintf("shardline.%s: nil handler %q", fn, name))
	}
}

func builtin(name string) bool { return slices.Contains(handlers.Names(), name) }

func builtinWindow(name string) bool { return slices.Contains(handlers.WindowNames(), name) }

// WithAppName sets the default of -app-name (SHARDLINE_APP_NAME), the
// application's name and lease table; a flag or the variable still wins.
func WithAppName(name string) Option { return WithDefault("app-name", name) }

// WithStreamName sets the default of -stream-name (SHARDLINE_STREAM_NAME);
// a flag or the variable still wins.
func WithStreamName(name string) Option { return WithDefault("stream-name", name) }

// WithDefault sets the default of any setting by its flag name (without
// the dash: "batch-size", "initial-position"); a flag or its SHARDLINE_
// variable still wins. A value the setting does not take is reported when
// a command parses its settings, naming it.
func WithDefault(flag, value string) Option {
	return func(a *App) { a.defaults[strings.TrimPrefix(flag, "-")] = value }
}

// WithLogger sends Shardline's log lines to l instead of the logger that
// -log-level and -log-format describe.
func WithLogger(l *slog.Logger) Option { return func(a *App) { a.logger = l } }

// WithCommit sets the VCS commit `version` prints, for builds that stamp
// it with -ldflags (the go command stamps its own, except in git
// worktrees).
func WithCommit(commit string) Option { return func(a *App) { a.commit = commit } }

// handlerSet are the App's handlers in the form the settings take them.
func (a *App) handlerSet() config.Handlers {
	return config.Handlers{Default: a.handler, DefaultWindow: a.window, Named: a.named, NamedWindow: a.namedWindow}
}

// parse applies the App's defaults to the flags fs has, then parses args
// and the variables into fs (config.Parse). A default that does not parse
// is a usage error naming the setting.
func (a *App) parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	for name, v := range a.defaults {
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return config.Usagef("default -%s %q (shardline.WithDefault): %v", name, v, err)
		}
		f.DefValue = v
	}
	return config.Parse(fs, args, getenv)
}

// logTo is the App's logger, or one built from the settings.
func (a *App) logTo(c *config.Common, w io.Writer, format string) *slog.Logger {
	if a.logger != nil {
		return a.logger
	}
	return c.LoggerAs(w, format)
}

// ItemFailure is the batchItemFailures entry that names r: its sequence
// number, with ":sub" for a user record Shardline took out of a KPL
// aggregate (its eventID is shardId:seq:sub), so that a retry starts at
// that user record and not at the first of its aggregate. Behind Lambda's
// own trigger the answer is mapped back to the aggregate's sequence number,
// which Lambda resumes from.
func ItemFailure(r events.KinesisEventRecord) events.KinesisBatchItemFailure {
	id := r.Kinesis.SequenceNumber
	if _, pos, aggregated, err := stream.ParseEventID(r.EventID); err == nil && aggregated && pos.Seq == id {
		id = pos.Seq + ":" + strconv.FormatInt(pos.SubSeq, 10)
	}
	return events.KinesisBatchItemFailure{ItemIdentifier: id}
}
