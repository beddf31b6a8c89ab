package lambdaemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults and limits, as on Lambda.
const (
	DefaultTimeout        = 3 * time.Second
	DefaultMemoryMB       = 128
	DefaultMaxConcurrency = 10
	// AccountID is the account in every function ARN.
	AccountID = "123456789012"
	// DefaultRegion is the region of a function whose Env sets none.
	DefaultRegion = "us-east-1"

	// initTimeout is Lambda's limit on the init phase. A cold invocation
	// whose runtime has not asked for its event after initTimeout plus the
	// function timeout is answered as a timeout (Lambda retries a timed-out
	// init within the invoke phase, under the function timeout).
	initTimeout = 10 * time.Second
	// stopGrace is how long Close waits between SIGTERM and SIGKILL.
	stopGrace = 500 * time.Millisecond
	// reapTimeout bounds waits for a killed process to be reaped.
	reapTimeout = 5 * time.Second
)

// Function is a Lambda function served by a Server.
type Function struct {
	// Name is the function name: 1 to 64 letters, digits, hyphens or
	// underscores.
	Name string
	// Path is the bootstrap binary.
	Path string
	// Env is added to each process's environment (KEY=VALUE).
	Env []string
	// Timeout is the function timeout; 0 means DefaultTimeout.
	Timeout time.Duration
	// MemoryMB is given to the process as AWS_LAMBDA_FUNCTION_MEMORY_SIZE
	// (not enforced); 0 means DefaultMemoryMB.
	MemoryMB int
	// MaxConcurrency is the most processes (and so concurrent invocations)
	// of the function, like reserved concurrency; 0 means
	// DefaultMaxConcurrency.
	MaxConcurrency int
	// Stdout and Stderr receive the output of every process of the
	// function; nil discards it. Writes are serialised.
	Stdout, Stderr io.Writer
}

// Status is the outcome of an invocation.
type Status string

// Statuses of an invocation.
const (
	StatusRunning   Status = "running"   // not finished yet
	StatusSuccess   Status = "success"   // the runtime posted a response
	StatusError     Status = "error"     // the runtime posted an invocation or init error
	StatusTimeout   Status = "timeout"   // killed at its deadline (Sandbox.Timedout)
	StatusExited    Status = "exited"    // the process exited or could not start (Runtime.ExitError, Runtime.InvalidEntrypoint)
	StatusThrottled Status = "throttled" // refused with 429; never ran
)

// Invocation is the record of one invocation.
type Invocation struct {
	RequestID      string
	Function       string
	InvocationType string // RequestResponse or Event
	Received       time.Time
	// Start is when the runtime received the event; zero if it never did.
	Start time.Time
	// Deadline is Start plus the function timeout.
	Deadline time.Time
	// End is when the invocation was answered; zero while running.
	End    time.Time
	Status Status
	// ErrorType is the errorType of a function error; "" on success.
	ErrorType string
	// PID is the process that handled it; 0 if none did.
	PID int
	// ColdStart reports that a process was started for this invocation.
	ColdStart bool
	// InitDuration is, on a cold start, the time from the process start
	// to its first request for an event.
	InitDuration time.Duration
	// RequestBytes is the size of the event; ResponseBytes of the
	// payload the invoker got (the function's answer or the error).
	RequestBytes  int
	ResponseBytes int
}

// Process is the record of one runtime process (sandbox).
type Process struct {
	PID       int
	LogStream string
	Started   time.Time
	// Ready is when it first asked for an event; zero if it never did.
	Ready time.Time
	// Exited is when it was reaped; zero while it runs.
	Exited time.Time
	// ExitStatus is how it ended ("exit status 1", "signal: killed");
	// "exit status 0" for a clean exit, "" while it runs.
	ExitStatus  string
	Invocations int
}

// Server serves the Invoke API and runs the functions' processes.
type Server struct {
	// Endpoint is the Invoke API, http://127.0.0.1:port: the Lambda
	// client's BaseEndpoint.
	Endpoint string

	fns      map[string]*function
	http     *http.Server
	serveErr chan error
	done     chan struct{} // closed by Close
	stopCtx  func() bool

	mu       sync.Mutex
	closed   bool
	live     map[*sandbox]struct{} // started, not yet reaped
	inflight int
	idle     chan struct{} // closed while inflight == 0
	writers  map[io.Writer]*lockedWriter

	// wg counts background work that Close waits for: processes not yet
	// reaped, their Runtime API servers, deadline timers, async runners.
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var (
	errClosed = errors.New("lambdaemu: server closed")
	validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Start validates the functions and serves them on a new listener on
// 127.0.0.1. No process starts before its first invocation. When ctx is
// done the server closes as if by Close; Close it yourself to see errors.
func Start(ctx context.Context, fns ...Function) (*Server, error) {
	if len(fns) == 0 {
		return nil, errors.New("lambdaemu: no functions")
	}
	s := &Server{
		fns:      map[string]*function{},
		serveErr: make(chan error, 1),
		done:     make(chan struct{}),
		live:     map[*sandbox]struct{}{},
		idle:     closedChan(),
		writers:  map[io.Writer]*lockedWriter{},
	}
	for i, cfg := range fns {
		f, err := s.newFunction(cfg)
		if err != nil {
			return nil, fmt.Errorf("lambdaemu: function %d (%q): %w", i, cfg.Name, err)
		}
		if _, dup := s.fns[f.cfg.Name]; dup {
			return nil, fmt.Errorf("lambdaemu: function %d: Name %q is taken by another function", i, cfg.Name)
		}
		s.fns[f.cfg.Name] = f
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lambdaemu: listen: %w", err)
	}
	s.Endpoint = "http://" + ln.Addr().String()
	s.http = &http.Server{Handler: s.invokeRoutes(), ReadHeaderTimeout: 10 * time.Second}
	go func() { s.serveErr <- s.http.Serve(ln) }()
	s.stopCtx = context.AfterFunc(ctx, func() { _ = s.Close() })
	return s, nil
}

// newFunction checks cfg and fills its defaults.
func (s *Server) newFunction(cfg Function) (*function, error) {
	if !validName.MatchString(cfg.Name) {
		return nil, fmt.Errorf("invalid Name %q: want 1 to 64 letters, digits, '-' or '_'", cfg.Name)
	}
	if cfg.Path == "" {
		return nil, errors.New("invalid Path: empty, want the bootstrap binary")
	}
	path, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("invalid Path %q: %w", cfg.Path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("invalid Path %q: %w", cfg.Path, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("invalid Path %q: not an executable file (mode %v)", cfg.Path, fi.Mode())
	}
	cfg.Path = path
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	case cfg.Timeout < 0 || cfg.Timeout > 900*time.Second:
		return nil, fmt.Errorf("invalid Timeout %v: want 0 (default %v) or up to 900s", cfg.Timeout, DefaultTimeout)
	}
	switch {
	case cfg.MemoryMB == 0:
		cfg.MemoryMB = DefaultMemoryMB
	case cfg.MemoryMB < 128 || cfg.MemoryMB > 10240:
		return nil, fmt.Errorf("invalid MemoryMB %d: want 0 (default %d) or 128 to 10240", cfg.MemoryMB, DefaultMemoryMB)
	}
	switch {
	case cfg.MaxConcurrency == 0:
		cfg.MaxConcurrency = DefaultMaxConcurrency
	case cfg.MaxConcurrency < 0:
		return nil, fmt.Errorf("invalid MaxConcurrency %d: want 0 (default %d) or more", cfg.MaxConcurrency, DefaultMaxConcurrency)
	}
	cfg.Env = slices.Clone(cfg.Env)
	region := ""
	defaultRegion := ""
	hasKey := false
	for _, kv := range cfg.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid Env entry %q: want KEY=VALUE", kv)
		}
		if reservedEnv[k] {
			return nil, fmt.Errorf("invalid Env entry %q: %s is reserved by Lambda", kv, k)
		}
		switch k {
		case "AWS_REGION":
			region = v
		case "AWS_DEFAULT_REGION":
			defaultRegion = v
		case "AWS_ACCESS_KEY_ID":
			hasKey = true
		}
	}
	if region == "" {
		region = defaultRegion
	}
	if region == "" {
		region = DefaultRegion
	}
	f := &function{
		srv:    s,
		cfg:    cfg,
		region: region,
		arn:    fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, AccountID, cfg.Name),
		hasKey: hasKey,
		freed:  make(chan struct{}),
	}
	f.stdout = s.lockWriter(cfg.Stdout)
	f.stderr = s.lockWriter(cfg.Stderr)
	return f, nil
}

// lockWriter serialises writes to w across every process and function
// that shares it. An *os.File is passed through: the kernel orders its
// writes and a process then writes to it directly.
func (s *Server) lockWriter(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	if f, ok := w.(*os.File); ok {
		return f
	}
	if !reflect.TypeOf(w).Comparable() {
		return &lockedWriter{w: w}
	}
	if lw, ok := s.writers[w]; ok {
		return lw
	}
	lw := &lockedWriter{w: w}
	s.writers[w] = lw
	return lw
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ARN returns the ARN of the named function, or "" if the server has no
// such function.
func (s *Server) ARN(name string) string {
	if f, ok := s.fns[name]; ok {
		return f.arn
	}
	return ""
}

// Invocations returns the records of every invocation of the named
// function so far, oldest first, including those still running.
func (s *Server) Invocations(name string) []Invocation {
	f, ok := s.fns[name]
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Invocation, 0, len(f.calls))
	for _, inv := range f.calls {
		out = append(out, inv.recordLocked())
	}
	return out
}

// Processes returns the records of every process the named function has
// started, oldest first.
func (s *Server) Processes(name string) []Process {
	f, ok := s.fns[name]
	if !ok {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Process, 0, len(f.procs))
	for _, sb := range f.procs {
		out = append(out, sb.recordLocked())
	}
	return out
}

// WaitIdle waits until no invocation is running or queued, or ctx is done.
func (s *Server) WaitIdle(ctx context.Context) error {
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// addInflight counts an accepted invocation.
func (s *Server) addInflight() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight == 0 {
		s.idle = make(chan struct{})
	}
	s.inflight++
}

// doneInflight uncounts a finished invocation.
func (s *Server) doneInflight() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 {
		close(s.idle)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops every runtime process by PID (SIGTERM to its process group,
// SIGKILL 500 ms later), answers the invocations they were running as
// Lambda answers for a process that exits, waits until every process has
// been reaped and closes the listeners. It reports processes that would not
// die and listener errors. Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	s.stopCtx()
	s.mu.Lock()
	s.closed = true
	live := make([]*sandbox, 0, len(s.live))
	for sb := range s.live {
		live = append(live, sb)
	}
	s.mu.Unlock()
	close(s.done)

	var errs []error
	for _, sb := range live {
		sb.signal(syscall.SIGTERM)
	}
	grace, cancelGrace := context.WithTimeout(context.Background(), stopGrace)
	for _, sb := range live {
		select {
		case <-sb.dead:
		case <-grace.Done():
		}
	}
	cancelGrace()
	for _, sb := range live {
		select {
		case <-sb.dead:
			continue
		default:
		}
		sb.signal(syscall.SIGKILL)
		select {
		case <-sb.dead:
		case <-time.After(reapTimeout):
			errs = append(errs, fmt.Errorf("lambdaemu: %s: process %d still running after SIGKILL", sb.fn.cfg.Name, sb.pid))
		}
	}
	if len(errs) == 0 {
		s.wg.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), reapTimeout)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("lambdaemu: shut down the Invoke API: %w", err))
		_ = s.http.Close()
	}
	if err := <-s.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("lambdaemu: serve the Invoke API: %w", err))
	}
	return errors.Join(errs...)
}
