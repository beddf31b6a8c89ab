package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/coordinator"
)

// Snapshotter is what the probes read: *coordinator.Worker.
type Snapshotter interface {
	Snapshot() coordinator.Snapshot
}

var _ Snapshotter = (*coordinator.Worker)(nil)

// Config sets a server up.
type Config struct {
	// Addr is host:port to listen on (required); port 0 picks a free port.
	Addr string
	// Worker is read by /healthz and /readyz (required).
	Worker Snapshotter
	// Metrics serves /metrics; nil: /metrics is not served.
	Metrics http.Handler
	// Logger says where the server listens; default: discard.
	Logger *slog.Logger
	// ShutdownTimeout is how long Close waits for requests in flight
	// (default 5s).
	ShutdownTimeout time.Duration
}

// Server is a running endpoint.
type Server struct {
	srv     *http.Server
	addr    net.Addr
	timeout time.Duration
	served  chan error

	closeOnce sync.Once
	closeErr  error
}

// Start listens on cfg.Addr and serves in the background. An address that
// cannot be bound is an error naming the setting.
func Start(cfg Config) (*Server, error) {
	if cfg.Worker == nil {
		return nil, errors.New("httpserve: a worker is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr %s: %w", cfg.Addr, err)
	}
	mux := http.NewServeMux()
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		code, msg := Health(cfg.Worker.Snapshot())
		reply(w, code, msg)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		code, msg := Readiness(cfg.Worker.Snapshot())
		reply(w, code, msg)
	})
	s := &Server{
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
		addr:    ln.Addr(),
		timeout: cfg.ShutdownTimeout,
		served:  make(chan error, 1),
	}
	go func() { s.served <- s.srv.Serve(ln) }()
	cfg.Logger.Info("serving /metrics, /healthz and /readyz", "addr", s.addr.String())
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops accepting requests, waits up to ShutdownTimeout for those in
// flight, then closes the rest. Calls after the first return its result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(err, s.srv.Close())
		}
		if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		s.closeErr = err
	})
	return s.closeErr
}

// Health is /healthz's answer: 200 while the worker runs, 503 once it has
// stopped.
func Health(s coordinator.Snapshot) (int, string) {
	if s.Stopped {
		return http.StatusServiceUnavailable, "stopped"
	}
	return http.StatusOK, "ok"
}

// Readiness is /readyz's answer: 200 from the end of the worker's first
// lease round until it stops, 503 before and after.
func Readiness(s coordinator.Snapshot) (int, string) {
	switch {
	case s.Stopped:
		return http.StatusServiceUnavailable, "stopped"
	case !s.Ready:
		return http.StatusServiceUnavailable, "not ready: the first lease round has not finished"
	}
	return http.StatusOK, fmt.Sprintf("ready: %d leases held", s.CurrentLeases)
}

func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
