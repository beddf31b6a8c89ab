package prom

import (
	"log/slog"

	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/telemetry/httpserve"
)

// Worker is what Serve reads: *coordinator.Worker.
type Worker interface {
	Snapshotter
	httpserve.Snapshotter
}

// Serve starts the poller's -metrics-addr endpoint on addr: w's metrics at
// /metrics (with the enabled dimensions dims), /healthz and /readyz.
// Close the server after w.Run has returned.
func Serve(addr string, w Worker, dims metrics.Dimensions, log *slog.Logger) (*httpserve.Server, error) {
	h, err := Handler(w, dims)
	if err != nil {
		return nil, err
	}
	return httpserve.Start(httpserve.Config{Addr: addr, Worker: w, Metrics: h, Logger: log})
}
