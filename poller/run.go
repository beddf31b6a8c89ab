package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/telemetry/prom"
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
	log := s.Logger(stderr)
	clients, err := s.Clients(ctx)
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
	return w.Run(ctx)
}
