package shardline

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/handlers"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry/emf"
)

// PollEvent is the event template.yaml's schedule sends: {"shardline":
// "poll"}. RunFor, when set (a Go duration such as "10s"), ends the run
// that long after it starts instead of at the deadline minus the margin:
// for a local invoke that should poll once and return.
type PollEvent struct {
	Shardline string `json:"shardline"`
	RunFor    string `json:"runFor,omitempty"`
}

// EventError is the answer to an event the function cannot read: Lambda
// shows "EventError" as the errorType, and the message names what came.
type EventError struct{ Msg string }

func (e *EventError) Error() string { return e.Msg }

// RunError is what the scheduled poller reports when its run stopped with
// an error (Lambda shows the type name as errorType).
type RunError struct{ Msg string }

func (e *RunError) Error() string { return fmt.Sprintf("poller stopped: %s", e.Msg) }

// event kinds Invoke tells apart.
const (
	kindUnknown = iota
	kindKinesis
	kindWindow
	kindSchedule
)

// probe is what Invoke reads of an event to tell its kind.
type probe struct {
	Records []struct {
		EventSource string `json:"eventSource"`
	} `json:"Records"`
	Window     json.RawMessage `json:"window"`
	ShardID    string          `json:"shardId"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Shardline  *string         `json:"shardline"`
	RunFor     string          `json:"runFor"`
}

// classify tells the kind of an event, or says what it got.
func classify(payload []byte) (int, probe, error) {
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		return kindUnknown, p, &EventError{Msg: fmt.Sprintf("event not handled: not a JSON object (%s): want a Kinesis event, a scheduled event or {\"shardline\":\"poll\"}", preview(payload))}
	}
	switch {
	case p.Shardline != nil:
		if *p.Shardline != "poll" {
			return kindUnknown, p, &EventError{Msg: fmt.Sprintf("event not handled: \"shardline\": %q: allowed \"poll\"", *p.Shardline)}
		}
		return kindSchedule, p, nil
	case p.Source == "aws.events" && p.DetailType == "Scheduled Event", p.Source == "aws.scheduler":
		return kindSchedule, p, nil
	case len(p.Records) > 0:
		var sources []string
		for _, r := range p.Records {
			if r.EventSource != "aws:kinesis" && !slices.Contains(sources, r.EventSource) {
				sources = append(sources, r.EventSource)
			}
		}
		if len(sources) > 0 {
			return kindUnknown, p, &EventError{Msg: fmt.Sprintf("event not handled: records from %q: allowed aws:kinesis (Lambda's Kinesis trigger or a Shardline poller), a scheduled event or {\"shardline\":\"poll\"}", sources)}
		}
		if len(p.Window) > 0 {
			return kindWindow, p, nil
		}
		return kindKinesis, p, nil
	case len(p.Window) > 0 && p.ShardID != "":
		return kindWindow, p, nil // a window's last call may have no records
	}
	return kindUnknown, p, &EventError{Msg: fmt.Sprintf("event not handled: %s: want a Kinesis event (Records from aws:kinesis), a scheduled event (\"source\": \"aws.events\") or {\"shardline\":\"poll\"}", describe(payload, p))}
}

// describe names an event by its keys (and source, when it has one).
func describe(payload []byte, p probe) string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(payload, &m)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 10 {
		keys = append(keys[:10], "…")
	}
	d := "an event with keys [" + strings.Join(keys, " ") + "]"
	if len(keys) == 0 {
		d = "an empty event " + preview(payload)
	}
	if p.Source != "" {
		d += fmt.Sprintf(" from source %q (detail-type %q)", p.Source, p.DetailType)
	}
	return d
}

func preview(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// Invoke answers one Lambda invocation as Start does on Lambda: a Kinesis
// event goes to the handler (de-aggregated), a scheduled event runs the
// scheduled poller, anything else is an *EventError. lambda.Start(app.Invoke)
// is what Start does; call Invoke yourself to test a program's answers
// without the Lambda runtime.
func (a *App) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	kind, p, err := classify(payload)
	if err != nil {
		return nil, err
	}
	f := a.function()
	switch kind {
	case kindKinesis:
		h, err := f.kinesisHandler()
		if err != nil {
			return nil, err
		}
		var ev events.KinesisEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, &EventError{Msg: "Kinesis event: " + err.Error()}
		}
		return handlers.Deaggregating(h)(ctx, ev)
	case kindWindow:
		h, err := f.windowHandler()
		if err != nil {
			return nil, err
		}
		var ev events.KinesisTimeWindowEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, &EventError{Msg: "Kinesis window event: " + err.Error()}
		}
		return handlers.DeaggregatingWindow(h)(ctx, ev)
	}
	var runFor time.Duration
	if p.RunFor != "" {
		if runFor, err = time.ParseDuration(p.RunFor); err != nil || runFor <= 0 {
			return nil, &EventError{Msg: fmt.Sprintf("event not handled: \"runFor\": %q: allowed a positive duration such as \"10s\"", p.RunFor)}
		}
	}
	return f.poll(ctx, runFor)
}

// function is what one execution environment keeps between invocations:
// the settings, the AWS clients and the handlers.
type function struct {
	app            *App
	getenv         func(string) string
	stdout, stderr io.Writer

	once     sync.Once
	initErr  error
	settings Settings
	margin   time.Duration
	clients  *awsconf.Clients
	handler  Handler
	log      *slog.Logger
	given    map[string]bool // settings given (by variable)

	nativeOnce sync.Once
	native     Handler
	nativeWin  WindowHandler
	nativeErr  error
}

func (a *App) function() *function {
	a.fnOnce.Do(func() {
		if a.fn == nil {
			a.fn = &function{app: a, getenv: os.Getenv, stdout: os.Stdout, stderr: os.Stderr}
		}
	})
	return a.fn
}

// flags are the function's settings: those of `run`, and
// -deadline-margin (SHARDLINE_DEADLINE_MARGIN).
func (f *function) flags() *flag.FlagSet {
	fs := flag.NewFlagSet(f.app.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.settings.Handlers = f.app.handlerSet()
	f.settings.Register(fs)
	fs.DurationVar(&f.margin, "deadline-margin", 5*time.Second, "stop this long before the invocation's deadline")
	return fs
}

// parse reads the settings from the environment and checks them.
func (f *function) parse() error {
	fs := f.flags()
	if err := f.app.parse(fs, nil, f.getenv); err != nil {
		return err
	}
	f.given = given(fs)
	if err := f.settings.Validate(); err != nil {
		return err
	}
	if f.margin <= 0 {
		return config.Usagef("%s=%s: allowed a positive duration such as 5s", config.EnvName("deadline-margin"), f.margin)
	}
	return nil
}

// CheckLambda reads the settings from getenv as the scheduled poller does
// on Lambda (those of `run`, and SHARDLINE_DEADLINE_MARGIN) and checks
// them: the error the first scheduled invocation would answer, or nil.
func (a *App) CheckLambda(getenv func(string) string) error {
	f := &function{app: a, getenv: getenv, stdout: io.Discard, stderr: io.Discard}
	return f.parse()
}

// init reads and checks the settings once per execution environment.
func (f *function) init(ctx context.Context) error {
	if err := f.parse(); err != nil {
		return err
	}
	// JSON under -log-format auto (Lambda's own), text when asked.
	f.log = f.app.logTo(&f.settings.Common, f.stderr, config.ResolveFormat(f.settings.LogFormat, false, true))
	for _, w := range unused(f.given, &f.settings, true) {
		f.log.Warn(w)
	}
	var err error
	if f.clients, err = f.settings.Clients(ctx, f.log); err != nil {
		return err
	}
	f.handler, err = f.settings.NewHandler(f.clients, f.stdout, f.log)
	return err
}

// kinesisHandler is the handler of Kinesis events: the program's own, or
// the one SHARDLINE_HANDLER names.
func (f *function) kinesisHandler() (Handler, error) {
	f.buildNative()
	if f.native == nil {
		if f.nativeErr != nil {
			return nil, f.nativeErr
		}
		return nil, &EventError{Msg: "a Kinesis event without a window, but this function's handler is windowed: give the event source mapping TumblingWindowInSeconds"}
	}
	return f.native, nil
}

func (f *function) windowHandler() (WindowHandler, error) {
	f.buildNative()
	if f.nativeWin == nil {
		if f.nativeErr != nil {
			return nil, f.nativeErr
		}
		return nil, &EventError{Msg: "a Kinesis event with a window (TumblingWindowInSeconds), but this function's handler has no windowed variant (shardline.StartWindow gives one)"}
	}
	return f.nativeWin, nil
}

func (f *function) buildNative() {
	f.nativeOnce.Do(func() {
		a := f.app
		f.native, f.nativeWin = a.handler, a.window
		if f.native != nil || f.nativeWin != nil {
			return
		}
		name := f.getenv(config.EnvName("handler"))
		if name == "" {
			f.nativeErr = &EventError{Msg: fmt.Sprintf("a Kinesis event, but this function has no handler: set %s (allowed %s)", config.EnvName("handler"), strings.Join(a.handlerSet().Names(), ", "))}
			return
		}
		log := a.logTo(&config.Common{LogLevel: f.getenv(config.EnvName("log-level"))}, f.stderr, config.FormatJSON)
		o := handlers.Options{Out: f.stdout, Logger: log}
		if h := a.named[name]; h != nil {
			f.native = h
		} else if h, err := handlers.New(name, o); err == nil {
			f.native = h
		} else {
			f.nativeErr = config.Usagef("%s=%q: %v", config.EnvName("handler"), name, err)
			return
		}
		if h := a.namedWindow[name]; h != nil {
			f.nativeWin = h
		} else if h, err := handlers.NewWindow(name, o); err == nil {
			f.nativeWin = h
		}
	})
}

// poll is one scheduled invocation: the poller with the handler in
// process until the deadline minus the margin (or runFor).
func (f *function) poll(ctx context.Context, runFor time.Duration) (Summary, error) {
	f.once.Do(func() { f.initErr = f.init(ctx) })
	if f.initErr != nil {
		return Summary{}, f.initErr
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	stopAt := deadline.Add(-f.margin)
	if time.Until(stopAt) <= 0 {
		return Summary{}, config.Usagef("%s=%s leaves no time before the deadline: make the function timeout longer than the margin", config.EnvName("deadline-margin"), f.margin)
	}
	if runFor > 0 && time.Now().Add(runFor).Before(stopAt) {
		stopAt = time.Now().Add(runFor)
	}
	if bw := f.settings.MaxBatchingWindow; bw > 0 && time.Until(stopAt) <= bw {
		f.log.Warn(config.EnvName("max-batching-window")+" is not shorter than the run: the window never ends by itself; each run delivers what it gathered when it stops (before its drain). Make the function timeout longer than the window plus the deadline margin",
			"window", bw, "run", time.Until(stopAt).Round(time.Millisecond))
	}
	if win := f.settings.TumblingWindow; win > 0 && time.Until(stopAt) <= win+time.Second {
		f.log.Warn("the run is not longer than the tumbling window: a caught-up shard re-reads its open window each run and never finishes one; make the function timeout longer than the window plus the deadline margin",
			"window", win, "run", time.Until(stopAt).Round(time.Millisecond))
	}
	cfg := f.settings.WorkerConfig(f.clients, f.handler, f.log)
	// The drain (final checkpoints, releases) must end within the margin,
	// and no handler call (or Invoke) may run past half of it: a call cut
	// there leaves its batch without a checkpoint for the next run.
	cfg.DrainTimeout = max(f.margin*3/4, 500*time.Millisecond)
	cfg.Deadline = deadline.Add(-f.margin / 2)
	// Every invocation is a worker of its own: the previous one released
	// its leases (or they expire after the failover time if it crashed).
	base := f.settings.WorkerID
	if base == "" {
		base = lambdacontext.FunctionName
	}
	var requestID string
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		requestID = lc.AwsRequestID
		cfg.WorkerID = base + "-" + lc.AwsRequestID
		if cfg.FunctionARN == "" { // in-process handler: this function's ARN
			cfg.FunctionARN = lc.InvokedFunctionArn
		}
	}
	w, err := coordinator.New(cfg)
	if err != nil {
		return Summary{}, config.Usagef("%v", err)
	}
	runCtx, cancel := context.WithDeadline(ctx, stopAt)
	defer cancel()
	err = w.Run(runCtx)
	f.writeMetrics(w.Snapshot(), base, requestID)
	sum := w.Summary()
	sum.StoppedBecause = "deadline"
	if runFor > 0 && stopAt.Before(deadline.Add(-f.margin)) {
		sum.StoppedBecause = "runFor " + runFor.String()
	}
	var drain *coordinator.DrainError
	switch {
	case errors.As(err, &drain):
		// The shards were released at their last position done: the next
		// run delivers the unfinished batches again. Not a failed run.
		sum.StoppedBecause += "; " + err.Error()
		f.log.Error("poller stopped", "summary", sum)
	case err != nil:
		sum.StoppedBecause = "error: " + err.Error()
		f.log.Error("poller stopped", "summary", sum)
		return sum, &RunError{Msg: err.Error()}
	default:
		// Parked shards do not fail the invocation: the summary lists
		// them, and the next runs retry them after their back-off.
		f.log.Info("poller finished", "summary", sum)
	}
	return sum, nil
}

// writeMetrics writes what this invocation did as CloudWatch Embedded
// Metric Format lines on stdout, where Lambda's log capture hands them to
// CloudWatch Logs, which makes them metrics (no API call, no permission):
// the namespace is the app name, the values count from zero (each
// invocation is a worker of its own). Nothing at -metrics-level NONE.
//
// The WorkerIdentifier dimension is the function's worker name (-worker-id,
// or the function's name), not the invocation's worker id: a dimension
// value per invocation would make a new metric per invocation (each one
// billed, none continuous). The invocation's worker id and request id are
// members of each line, not dimensions, to find its other log lines.
func (f *function) writeMetrics(s Snapshot, base, requestID string) {
	if f.settings.Metrics() == metrics.None {
		return
	}
	fields := map[string]string{"workerId": s.WorkerID}
	if requestID != "" {
		fields["requestId"] = requestID
	}
	if base != "" {
		s.WorkerID = base
	}
	if err := emf.Write(f.stdout, coordinator.Snapshot{}, s, emf.Options{Dimensions: f.settings.Dimensions(), Fields: fields}); err != nil {
		f.log.Warn("metrics not written", "err", err)
	}
}

// LambdaVariables are the SHARDLINE_* variables the App reads on Lambda:
// those of `run` and SHARDLINE_DEADLINE_MARGIN, sorted.
func (a *App) LambdaVariables() []string {
	f := &function{app: a}
	var names []string
	f.flags().VisitAll(func(fl *flag.Flag) { names = append(names, config.EnvName(fl.Name)) })
	sort.Strings(names)
	return names
}

// given is the names of the settings a flag or variable gave fs.
func given(fs *flag.FlagSet) map[string]bool {
	g := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { g[f.Name] = true })
	return g
}

// unused says, one line each, which settings given have no effect where
// the binary runs (onLambda: the function) or beside the others: every
// other setting acts (TestRunHonoursEverySetting, TestFunctionSettingsAudit).
func unused(given map[string]bool, s *Settings, onLambda bool) []string {
	name := func(flag string) string {
		if onLambda {
			return config.EnvName(flag)
		}
		return "-" + flag
	}
	var out []string
	if onLambda {
		if given["metrics-cloudwatch"] {
			out = append(out, name("metrics-cloudwatch")+" has no effect on Lambda: the function writes its metrics as Embedded Metric Format log lines, which CloudWatch makes metrics of")
		}
		if given["metrics-addr"] {
			out = append(out, name("metrics-addr")+" has no effect on Lambda: nothing can scrape a function; its metrics are Embedded Metric Format log lines")
		}
		if given["quiet"] {
			out = append(out, name("quiet")+" has no effect on Lambda: there is no terminal, so no live status line to turn off")
		}
		if given["cloudwatch-role-arn"] {
			out = append(out, name("cloudwatch-role-arn")+" has no effect on Lambda: the function sends no CloudWatch call (its metrics are log lines)")
		}
	} else if given["cloudwatch-role-arn"] && !s.MetricsCloudWatch {
		out = append(out, name("cloudwatch-role-arn")+" has no effect without "+name("metrics-cloudwatch")+": no CloudWatch call is made")
	}
	if s.TargetFunction == "" {
		for _, f := range []string{"lambda-endpoint", "function-timeout"} {
			if given[f] {
				out = append(out, name(f)+" has no effect without "+name("target-function")+": no function is invoked")
			}
		}
	}
	if (s.ConsumerName != "" || s.ConsumerARN != "") && given["idle-time-between-reads"] {
		fanOut := name("consumer-name")
		if s.ConsumerARN != "" {
			fanOut = name("consumer-arn")
		}
		out = append(out, name("idle-time-between-reads")+" has no effect with "+fanOut+": Kinesis pushes the records (enhanced fan-out), nothing is polled")
	}
	if s.Metrics() == metrics.None {
		for _, f := range []string{"metrics-dimensions", "metrics-cloudwatch"} {
			if given[f] && !(onLambda && f == "metrics-cloudwatch") {
				out = append(out, name(f)+" has no effect at "+name("metrics-level")+" NONE: no metric is made")
			}
		}
	}
	return out
}
