package standin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Names of the stand-ins, as Server.Name gives them.
const (
	KinesisName  = "kinesis-mock"
	DynamoDBName = "dynamodb-local"
	MotoName     = "moto" // moto_server: SQS, SNS, S3, CloudWatch
)

// Defaults for the options of both stand-ins.
const (
	DefaultStartTimeout = 2 * time.Minute
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 5 * time.Second
)

// Server is a running stand-in process.
type Server struct {
	Name     string // KinesisName, DynamoDBName or MotoName
	Endpoint string // http://127.0.0.1:<Port>
	Port     int
	PID      int    // also its process group id
	LogFile  string // where a detached server writes its output
	// TLSEndpoint is kinesis-mock's HTTPS endpoint (self-signed
	// certificate; HTTP/2, as SubscribeToShard needs); "" for DynamoDB.
	TLSEndpoint string

	cmd      *exec.Cmd
	out      *tailBuffer // output of an attached server
	done     chan struct{}
	waitErr  error // valid once done is closed
	stopOnce sync.Once
	stopErr  error
}

// Stop ends the server: SIGTERM, SIGKILL after StopTimeout if it is still
// there, and waits until it has exited. It returns nil once the process is
// gone, however it ended. Safe to call more than once and from several
// goroutines.
//
// It signals the process by PID through os.Process, which cannot hit a
// reused PID; neither stand-in starts child processes, so its process group
// holds it alone.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	// The emulator runs the function as its child, in its process group:
	// whatever is left of the group goes with it. A group id is not reused
	// while the group has members, so this never hits another process.
	defer killGroupLeftovers(s.PID)
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(StopTimeout):
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
		return nil
	case <-time.After(StopTimeout):
		return fmt.Errorf("standin: %s (pid %d) still running after SIGKILL", s.Name, s.PID)
	}
}

// killGroupLeftovers sends SIGKILL to what is left of the process group
// pgid (our attached servers lead their own group).
func killGroupLeftovers(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Exited reports whether the process has exited, and how.
func (s *Server) Exited() (bool, error) {
	select {
	case <-s.done:
		return true, s.waitErr
	default:
		return false, nil
	}
}

// Output returns the last part (up to 64 KiB) of what the process wrote to
// stdout and stderr.
func (s *Server) Output() string {
	if s.out != nil {
		return s.out.String()
	}
	if s.LogFile != "" {
		return readTail(s.LogFile, 64<<10)
	}
	return ""
}

func (s *Server) String() string {
	return fmt.Sprintf("%s at %s (pid %d)", s.Name, s.Endpoint, s.PID)
}

// signalGroup signals the process group pgid (a detached stand-in leads
// its own session and group), or the process pgid if there is no such
// group.
func signalGroup(pgid int, sig syscall.Signal) {
	if pgid <= 0 {
		return
	}
	if err := syscall.Kill(-pgid, sig); errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pgid, sig)
	}
}

// KillPID ends a stand-in that another process started, given its PID (and
// process group id), e.g. from a PID file: SIGTERM to its process group,
// SIGKILL after grace, then it waits until the process is gone. It first
// checks with IsStandin that pid still is a stand-in, and does nothing (and
// returns nil) if it is not: the PID may have been reused.
func KillPID(pid int, grace time.Duration) error {
	if _, ok := IsStandin(pid); !ok {
		return nil
	}
	signalGroup(pid, syscall.SIGTERM)
	if waitGone(pid, grace) {
		return nil
	}
	signalGroup(pid, syscall.SIGKILL)
	if waitGone(pid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("standin: pid %d still running after SIGKILL", pid)
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if processGone(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// IsStandin reports whether pid is a live process running one of the
// stand-ins as this package starts them, and which (KinesisName,
// DynamoDBName or MotoName), judged by its command line.
func IsStandin(pid int) (name string, ok bool) {
	if pid <= 0 || processGone(pid) {
		return "", false
	}
	cl, err := processCommandLine(pid)
	if err != nil {
		return "", false
	}
	switch {
	case strings.Contains(cl, "kinesis-local") && strings.Contains(cl, "main.js"):
		return KinesisName, true
	case strings.Contains(cl, launcherClass):
		return DynamoDBName, true
	case strings.Contains(cl, "moto_server"):
		return MotoName, true
	case strings.Contains(cl, "aws-lambda-rie") && strings.Contains(cl, "--runtime-interface-emulator-address"):
		return RIEName, true
	}
	return "", false
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("standin: finding a free port: %w", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// processSpec is what start needs to run one stand-in.
type processSpec struct {
	name     string
	path     string
	args     []string
	dir      string
	env      []string
	port     int
	log      io.Writer // attached: a copy of the output
	logFile  string    // detached: the output
	detached bool
	timeout  time.Duration
	// healthy makes one real API call; ready is called once it succeeds
	// and may wait for more (initial streams).
	healthy func(ctx context.Context, endpoint string) error
	ready   func(ctx context.Context, endpoint string) error
}

// errAddrInUse marks a start that failed because a port was taken between
// choosing and binding it.
var errAddrInUse = errors.New("address in use")

// start runs the process and waits until it is healthy.
func start(ctx context.Context, sp processSpec) (*Server, error) {
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", sp.port)
	cmd := exec.Command(sp.path, sp.args...)
	cmd.Dir = sp.dir
	cmd.Env = sp.env
	cmd.SysProcAttr = sysProcAttr(sp.detached)
	s := &Server{Name: sp.name, Endpoint: endpoint, Port: sp.port, cmd: cmd, done: make(chan struct{})}
	var logf *os.File
	if sp.detached {
		if sp.logFile == "" {
			return nil, fmt.Errorf("standin: %s: a detached server needs a LogFile", sp.name)
		}
		f, err := os.OpenFile(sp.logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("standin: %s: %w", sp.name, err)
		}
		logf = f
		cmd.Stdout, cmd.Stderr = f, f
		s.LogFile = sp.logFile
	} else {
		s.out = newTailBuffer(64 << 10)
		var w io.Writer = s.out
		if sp.log != nil {
			w = io.MultiWriter(s.out, sp.log)
		}
		cmd.Stdout, cmd.Stderr = w, w
		cmd.WaitDelay = time.Second
	}
	began := time.Now()
	err := cmd.Start()
	if logf != nil {
		logf.Close() // the child has its own copy
	}
	if err != nil {
		return nil, fmt.Errorf("standin: starting %s (%s): %w", sp.name, sp.path, err)
	}
	s.PID = cmd.Process.Pid
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()

	fail := func(what string) error {
		_ = s.Stop()
		out := s.Output()
		err := fmt.Errorf("standin: %s (pid %d, %s) %s after %v", sp.name, s.PID, endpoint, what, time.Since(began).Round(time.Millisecond))
		if isAddrInUse(out) {
			err = fmt.Errorf("%w (%w)", err, errAddrInUse)
		}
		if strings.TrimSpace(out) == "" {
			return fmt.Errorf("%w; it wrote no output", err)
		}
		return fmt.Errorf("%w; its last output:\n%s", err, tailString(out, 4096))
	}

	deadline := time.Now().Add(sp.timeout)
	var last error
	for up := false; ; {
		if !up {
			callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
			last = sp.healthy(callCtx, endpoint)
			cancel()
			up = last == nil
			if up {
				// Answered, but by our process? Another one may have taken
				// the port between choosing and binding it.
				// An error (the process already gone) is not ours either.
				if ours, err := listensOn(s.PID, sp.port); err != nil || !ours {
					up = false
					last = fmt.Errorf("port %d answers, but pid %d does not listen on it", sp.port, s.PID)
				}
			}
		}
		if up {
			if sp.ready == nil {
				return s, nil
			}
			readyCtx, cancel := context.WithDeadline(ctx, deadline)
			last = sp.ready(readyCtx, endpoint)
			cancel()
			if last == nil {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fail(fmt.Sprintf("exited during start-up (%v)", s.waitErr))
		case <-ctx.Done():
			return nil, fail(fmt.Sprintf("start-up interrupted (%v)", context.Cause(ctx)))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fail(fmt.Sprintf("not ready within %v (last check: %v)", sp.timeout, last))
		}
	}
}

func isAddrInUse(out string) bool {
	return strings.Contains(out, "EADDRINUSE") ||
		strings.Contains(out, "Address already in use") ||
		strings.Contains(out, "BindException")
}

// startRetrying starts with fresh ports up to three times while a start
// fails because a chosen port was taken meanwhile.
func startRetrying(ctx context.Context, fixedPorts bool, mk func() (processSpec, error)) (*Server, error) {
	for attempt := 1; ; attempt++ {
		sp, err := mk()
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, sp)
		if err == nil || fixedPorts || attempt == 3 || !errors.Is(err, errAddrInUse) {
			return s, err
		}
	}
}

// environ returns os.Environ() with the keys in set replaced, and the keys
// in unset removed, followed by extra (KEY=VALUE, applied last).
func environ(set map[string]string, unset []string, extra []string) []string {
	drop := map[string]bool{}
	for k := range set {
		drop[k] = true
	}
	for _, k := range unset {
		drop[k] = true
	}
	for _, kv := range extra {
		if k, _, ok := strings.Cut(kv, "="); ok {
			drop[k] = true
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	seen := map[string]int{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		seen[k] = -1
	}
	for k, v := range set {
		if _, ok := seen[k]; !ok { // extra overrides set
			env = append(env, k+"="+v)
		}
	}
	// extra last; of repeated keys the last wins.
	clear(seen)
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := seen[k]; ok {
			env[i] = kv
			continue
		}
		seen[k] = len(env)
		env = append(env, kv)
	}
	return env
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > b.max {
		return string(b.buf[len(b.buf)-b.max:])
	}
	return string(b.buf)
}

// readTail returns the last n bytes of the file at path.
func readTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	nr, _ := f.ReadAt(b, off)
	return string(b[:nr])
}
