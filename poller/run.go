package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry/cloudwatch"
	"github.com/shardline/shardline/shared/telemetry/prom"
	"github.com/shardline/shardline/shared/terminal"
)

func runPoller(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var s config.Run
	fs := newFlagSet("run", stdout)
	s.Register(fs)
	if err := config.Parse(fs, args, getenv); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	// On a terminal, a live status line stays below the logs and the
	// handler's output: both pass above it.
	format := s.Format(stderr)
	var live *terminal.Live
	if liveOn(s.Quiet, stdout, stderr, format) {
		live = terminal.NewLive(stderr, terminal.Width(stderr, 80))
		stdout, stderr = live.Writer(stdout), live.Writer(stderr)
	}
	log := s.LoggerAs(stderr, format)
	clients, err := s.Clients(ctx, log)
	if err != nil {
		return err
	}
	h, err := s.NewHandler(clients, stdout, log)
	if err != nil {
		return err
	}
	w, err := coordinator.New(s.WorkerConfig(clients, h, log))
	if err != nil {
		return config.Usagef("%v", err)
	}
	if s.MetricsAddr != "" { // Prometheus /metrics, /healthz, /readyz until Run returns
		srv, err := prom.Serve(s.MetricsAddr, w, s.Dimensions(), log)
		if err != nil {
			return fmt.Errorf("cannot start: %w", err)
		}
		defer srv.Close()
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = w.Check(checkCtx)
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
		cwc := awsconf.CloudWatchConfig(clients, awsconf.Options{CloudWatchRoleARN: s.CloudWatchRoleARN, SessionName: "shardline-metrics"})
		pub, err := cloudwatch.Start(ctx, cloudwatch.Config{Client: cloudwatch.NewClient(cwc), Snapshot: w.Snapshot, Dimensions: s.Dimensions(), Logger: log})
		if err != nil {
			return err
		}
		defer pub.Stop()
	}
	if live != nil {
		stop := startLive(live, w.Snapshot)
		defer stop()
	}
	return w.Run(ctx)
}
