package shardline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry/cloudwatch"
	"github.com/shardline/shardline/shared/telemetry/prom"
)

// Settings are the settings of `run`, one field per flag (AppName is
// -app-name, BatchSize -batch-size, ...). Start from DefaultSettings or
// SettingsFromEnv, then set fields; NewWorker checks them as the command
// line does.
type Settings = config.Run

// Snapshot is what a worker has done since it started: shards held,
// records, bytes, failures, lag per shard.
type Snapshot = coordinator.Snapshot

// Summary is a worker's account of its run, as the scheduled function
// returns it.
type Summary = coordinator.Summary

// DefaultSettings are the settings `run` has before any flag or variable:
// every default filled in, AppName and StreamName empty.
func DefaultSettings() Settings {
	var s Settings
	settingsFlags(&s)
	return s
}

// SettingsFromEnv are DefaultSettings with every SHARDLINE_* variable
// getenv has applied (SHARDLINE_STREAM_NAME, SHARDLINE_BATCH_SIZE, ...);
// a value that does not parse is an error naming the variable.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	var s Settings
	if err := config.Parse(settingsFlags(&s), nil, getenv); err != nil {
		return Settings{}, err
	}
	return s, nil
}

func settingsFlags(s *Settings) *flag.FlagSet {
	fs := flag.NewFlagSet("settings", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.Register(fs)
	return fs
}

// Worker is one Shardline worker inside a program that does other things
// too (a service that also serves HTTP): it takes its share of the
// stream's shards, hands their records to the handler and checkpoints, as
// `run` does, with the settings' metrics endpoint and CloudWatch metrics,
// and no command line, signal handler or live view.
type Worker struct {
	w       *coordinator.Worker
	s       Settings
	clients *awsconf.Clients
	log     *slog.Logger
	once    sync.Once
	live    func() (stop func()) // the live view, for run on a terminal
}

// NewWorker builds a worker that hands batches to h (unless s names
// another handler or a -target-function). It checks s as the command line
// does (an error names the setting, the value and what is allowed) and
// builds the AWS clients; it makes no call. Options: WithLogger (default:
// the settings' -log-level and -log-format on stderr), WithHandler.
func NewWorker(ctx context.Context, s Settings, h Handler, opts ...Option) (*Worker, error) {
	if h == nil {
		return nil, errors.New("shardline.NewWorker: nil handler")
	}
	return newWorker(ctx, s, Handle(h), opts)
}

// NewWindowWorker is NewWorker for a windowed handler: s.TumblingWindow
// must be set.
func NewWindowWorker(ctx context.Context, s Settings, h WindowHandler, opts ...Option) (*Worker, error) {
	if h == nil {
		return nil, errors.New("shardline.NewWindowWorker: nil handler")
	}
	return newWorker(ctx, s, HandleWindow(h), opts)
}

func newWorker(ctx context.Context, s Settings, own Option, opts []Option) (*Worker, error) {
	a := New(append([]Option{own}, opts...)...)
	s.Handlers = a.handlerSet()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	log := a.logTo(&s.Common, os.Stderr, s.Format(os.Stderr))
	return a.buildWorker(ctx, &s, os.Stdout, log)
}

// buildWorker builds the clients, the handler and the worker of validated
// settings; built-in handlers write to out.
func (a *App) buildWorker(ctx context.Context, s *Settings, out io.Writer, log *slog.Logger) (*Worker, error) {
	clients, err := s.Clients(ctx, log)
	if err != nil {
		return nil, err
	}
	h, err := s.NewHandler(clients, out, log)
	if err != nil {
		return nil, err
	}
	cfg := s.WorkerConfig(clients, h, log)
	if seen, ok := ctx.Value(builtKey{}).(func(coordinator.Config, *awsconf.Clients)); ok {
		seen(cfg, clients)
	}
	w, err := coordinator.New(cfg)
	if err != nil {
		return nil, config.Usagef("%v", err)
	}
	return &Worker{w: w, s: *s, clients: clients, log: log}, nil
}

// builtKey is the context key under which a test of this package puts a
// func(coordinator.Config, *awsconf.Clients): buildWorker hands it each
// worker's configuration and AWS clients as the settings made them, so
// that the test of every setting can check those whose effect it cannot
// observe locally (the Lambda client's timeout, the record age). No value
// of this unexported type can come from outside the package.
type builtKey struct{}

// Run runs the worker until ctx is done, then drains: batches in flight
// finish, checkpoints are written and leases released. It first checks
// that the stream and the lease table can be reached (an error names what
// failed), serves -metrics-addr and sends -metrics-cloudwatch while it
// runs. A worker runs once: a second Run returns an error.
func (w *Worker) Run(ctx context.Context) error {
	ran := true
	w.once.Do(func() { ran = false })
	if ran {
		return errors.New("shardline: Worker.Run called twice")
	}
	s := w.s
	if s.MetricsAddr != "" { // Prometheus /metrics, /healthz, /readyz until Run returns
		srv, err := prom.Serve(s.MetricsAddr, w.w, s.Dimensions(), w.log)
		if err != nil {
			return fmt.Errorf("cannot start: %w", err)
		}
		defer srv.Close()
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := w.w.Check(checkCtx)
	cancel()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("cannot start: %w", err)
	}
	if s.MetricsCloudWatch && s.Metrics() != metrics.None {
		// PutMetricData every 10 s in a goroutine of its own; the last
		// send, bounded, once the worker has stopped.
		cwc := awsconf.CloudWatchConfig(w.clients, awsconf.Options{CloudWatchRoleARN: s.CloudWatchRoleARN, SessionName: "shardline-metrics"})
		pub, err := cloudwatch.Start(ctx, cloudwatch.Config{Client: cloudwatch.NewClient(cwc), Snapshot: w.w.Snapshot, Dimensions: s.Dimensions(), Logger: w.log})
		if err != nil {
			return err
		}
		defer pub.Stop()
	}
	if w.live != nil {
		stop := w.live()
		defer stop()
	}
	return w.w.Run(ctx)
}

// Snapshot is what the worker has done so far; safe to call at any time,
// from any goroutine.
func (w *Worker) Snapshot() Snapshot { return w.w.Snapshot() }

// Summary is the worker's account of its run so far.
func (w *Worker) Summary() Summary { return w.w.Summary() }
