package lambdaemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// function is a Function being served. Its mutex guards the state of its
// sandboxes and invocations; Server.mu may be taken while holding it,
// never the other way round.
type function struct {
	srv            *Server
	cfg            Function // defaults filled
	region         string
	arn            string
	hasKey         bool // Env sets AWS_ACCESS_KEY_ID
	stdout, stderr io.Writer

	mu    sync.Mutex
	pool  []*sandbox    // live sandboxes, at most cfg.MaxConcurrency
	freed chan struct{} // closed and replaced whenever a sandbox frees up
	procs []*sandbox    // every process started, for Processes
	calls []*invocation // every invocation, for Invocations
}

// invocation is one call of a function.
type invocation struct {
	fn        *function
	id        string
	typ       string // RequestResponse or Event
	arn       string // the ARN as invoked, for Lambda-Runtime-Invoked-Function-Arn
	trace     string
	clientCtx string
	payload   []byte
	received  time.Time
	done      chan struct{} // closed once res is published

	// Guarded by fn.mu.
	sb         *sandbox
	pid        int
	cold       bool
	initDur    time.Duration
	start, end time.Time
	deadline   time.Time
	timer      *time.Timer // the deadline
	claimed    bool        // res is decided; published when done is closed
	res        result
}

// result is the answer to an invocation.
type result struct {
	status    Status
	body      []byte
	errorType string
	fnError   bool // X-Amz-Function-Error: Unhandled
}

// sandbox is one runtime process with its own Runtime API listener.
type sandbox struct {
	fn        *function
	logStream string
	wake      chan struct{} // buffered: an invocation was assigned
	dead      chan struct{} // closed once the process has been reaped

	// Set by start before the process runs.
	api  string // host:port of its Runtime API
	http *http.Server
	cmd  *exec.Cmd

	// Guarded by fn.mu.
	pid       int
	started   time.Time
	ready     time.Time   // first GET /next
	initTimer *time.Timer // the init phase limit
	pending   *invocation // assigned, not yet given to the runtime
	current   *invocation // given to the runtime, not answered yet
	waiting   bool        // a GET /next is waiting
	gone      bool        // out of the pool: exited, killed or failed
	exited    time.Time
	exitState string
	count     int
}

// Lambda's payload limits.
const (
	maxSyncPayload  = 6 * 1024 * 1024 // RequestResponse request
	maxAsyncPayload = 1024 * 1024     // Event request
	// maxResponse is the runtime's response limit: Lambda allows 100
	// bytes over 6 MiB.
	maxResponse = 6*1024*1024 + 100
)

func (f *function) newInvocation(typ, arn, trace, clientCtx string, payload []byte) *invocation {
	inv := &invocation{
		fn:        f,
		id:        newRequestID(),
		typ:       typ,
		arn:       arn,
		trace:     trace,
		clientCtx: clientCtx,
		payload:   payload,
		received:  time.Now(),
		done:      make(chan struct{}),
	}
	f.srv.addInflight()
	f.mu.Lock()
	f.calls = append(f.calls, inv)
	f.mu.Unlock()
	return inv
}

// dispatch gives inv to an idle sandbox, or to a new one while there are
// fewer than MaxConcurrency. When every sandbox is busy it returns false
// and a channel closed once one frees up.
func (f *function) dispatch(inv *invocation) (bool, <-chan struct{}, error) {
	f.mu.Lock()
	if f.srv.isClosed() {
		f.mu.Unlock()
		return false, nil, errClosed
	}
	sb, ok := f.assignLocked(inv)
	freed := f.freed
	if sb != nil {
		f.startLocked(sb)
	}
	f.mu.Unlock()
	return ok, freed, nil
}

// assignLocked assigns inv to an idle sandbox, preferring one whose
// runtime is initialised, or to a new sandbox that the caller must start
// with startLocked.
func (f *function) assignLocked(inv *invocation) (newSandbox *sandbox, ok bool) {
	var idle *sandbox
	for _, sb := range f.pool {
		if sb.pending == nil && sb.current == nil && (idle == nil || idle.ready.IsZero() && !sb.ready.IsZero()) {
			idle = sb
		}
	}
	if idle != nil {
		idle.pending = inv
		inv.sb, inv.cold = idle, false
		select {
		case idle.wake <- struct{}{}:
		default:
		}
		return nil, true
	}
	if len(f.pool) >= f.cfg.MaxConcurrency {
		return nil, false
	}
	sb := &sandbox{
		fn:        f,
		logStream: time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + randomHex(16),
		wake:      make(chan struct{}, 1),
		dead:      make(chan struct{}),
		pending:   inv,
	}
	inv.sb, inv.cold = sb, true
	f.pool = append(f.pool, sb)
	return sb, true
}

// removeLocked takes sb out of the pool, freeing its slot.
func (f *function) removeLocked(sb *sandbox) {
	sb.gone = true
	if i := slices.Index(f.pool, sb); i >= 0 {
		f.pool = slices.Delete(f.pool, i, i+1)
	}
	f.notifyLocked()
}

// notifyLocked wakes whoever waits for a sandbox to free up.
func (f *function) notifyLocked() {
	close(f.freed)
	f.freed = make(chan struct{})
}

// startLocked starts the process of a new sandbox. Holding the server's
// mutex while starting it means Close either sees the process or has
// already refused it.
func (f *function) startLocked(sb *sandbox) {
	s := f.srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.startFailedLocked(sb, fmt.Errorf("listen for the runtime API: %w", err))
		return
	}
	sb.api = ln.Addr().String()
	sb.http = &http.Server{Handler: sb.routes(), ReadHeaderTimeout: 10 * time.Second}
	cmd := exec.Command(f.cfg.Path)
	cmd.Dir = filepath.Dir(f.cfg.Path)
	cmd.Env = f.environ(sb)
	if f.stdout != nil {
		cmd.Stdout = f.stdout
	}
	if f.stderr != nil {
		cmd.Stderr = f.stderr
	}
	cmd.SysProcAttr = sysProcAttr()
	// A child of the runtime that keeps its output open must not keep
	// the sandbox alive once the runtime has exited.
	cmd.WaitDelay = time.Second
	sb.cmd = cmd

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		f.startFailedLocked(sb, errClosed)
		return
	}
	sb.started = time.Now()
	err = cmd.Start()
	if err == nil {
		s.live[sb] = struct{}{}
		s.wg.Add(2) // reap and serve
	}
	s.mu.Unlock()
	if err != nil {
		_ = ln.Close()
		f.startFailedLocked(sb, err)
		return
	}
	sb.pid = cmd.Process.Pid
	if sb.pending != nil {
		sb.pending.pid = sb.pid
	}
	f.procs = append(f.procs, sb)
	sb.initTimer = s.afterFunc(initTimeout+f.cfg.Timeout, func() { f.initExpired(sb) })
	go func() {
		defer s.wg.Done()
		_ = sb.http.Serve(ln)
	}()
	go sb.reap()
}

// startFailedLocked fails the invocation of a sandbox whose process could
// not start, as Lambda does for a bootstrap it cannot execute.
func (f *function) startFailedLocked(sb *sandbox, err error) {
	f.removeLocked(sb)
	close(sb.dead)
	inv := sb.pending
	sb.pending = nil
	if inv == nil || inv.claimed {
		return
	}
	if errors.Is(err, errClosed) {
		f.finishLocked(inv, exitResult(inv.id, "", err))
		return
	}
	f.finishLocked(inv, result{
		status:    StatusExited,
		body:      errorBody("Runtime.InvalidEntrypoint", fmt.Sprintf("RequestId: %s Error: %v", inv.id, err)),
		errorType: "Runtime.InvalidEntrypoint",
		fnError:   true,
	})
}

// environ is the environment of a sandbox's process: Lambda's defaults
// (which Env may override), Env, then the variables Lambda reserves.
func (f *function) environ(sb *sandbox) []string {
	dir := filepath.Dir(f.cfg.Path)
	env := []string{
		"PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
	}
	if !f.hasKey {
		// Lambda always gives the execution role's credentials.
		env = append(env,
			"AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
			"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			"AWS_SESSION_TOKEN=lambdaemu")
	}
	env = append(env, f.cfg.Env...)
	return append(env,
		"AWS_REGION="+f.region,
		"AWS_DEFAULT_REGION="+f.region,
		"AWS_LAMBDA_RUNTIME_API="+sb.api,
		"AWS_LAMBDA_FUNCTION_NAME="+f.cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(f.cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+f.cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME="+sb.logStream,
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT="+dir,
		"LAMBDA_RUNTIME_DIR="+dir,
	)
}

// reservedEnv are the variables Lambda refuses in a function's
// configuration.
var reservedEnv = map[string]bool{
	"_HANDLER": true, "_X_AMZN_TRACE_ID": true, "AWS_EXECUTION_ENV": true,
	"AWS_LAMBDA_RUNTIME_API": true, "AWS_LAMBDA_FUNCTION_NAME": true,
	"AWS_LAMBDA_FUNCTION_VERSION": true, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_LOG_GROUP_NAME": true, "AWS_LAMBDA_LOG_STREAM_NAME": true,
	"AWS_LAMBDA_INITIALIZATION_TYPE": true, "LAMBDA_TASK_ROOT": true,
	"LAMBDA_RUNTIME_DIR": true,
	// Lambda sets it only on Managed Instances, where one process runs
	// several invocations at once: not emulated.
	"AWS_LAMBDA_MAX_CONCURRENCY": true,
}

// reap waits for the process to exit and settles what it left: the
// invocation it was running fails with Runtime.ExitError; one assigned to
// it but never given to its runtime goes to another sandbox.
func (sb *sandbox) reap() {
	f, s := sb.fn, sb.fn.srv
	_ = sb.cmd.Wait()
	state := ""
	if ps := sb.cmd.ProcessState; ps != nil {
		state = ps.String()
	}
	f.mu.Lock()
	sb.exited, sb.exitState = time.Now(), state
	s.stopTimer(sb.initTimer)
	if !sb.gone {
		f.removeLocked(sb)
	}
	if inv := sb.current; inv != nil {
		sb.current = nil
		s.stopTimer(inv.timer)
		f.finishLocked(inv, exitResult(inv.id, state, nil))
	}
	if inv := sb.pending; inv != nil {
		sb.pending = nil
		switch {
		case inv.claimed:
		case !sb.ready.IsZero() && !s.isClosed():
			// A warm sandbox that went away between invocations (a
			// panic reported as an error, then exit): the event never
			// reached it, so it goes elsewhere.
			if next, ok := f.assignLocked(inv); !ok {
				f.finishLocked(inv, exitResult(inv.id, state, nil))
			} else if next != nil {
				f.startLocked(next)
			}
		default:
			f.finishLocked(inv, exitResult(inv.id, state, nil))
		}
	}
	close(sb.dead)
	f.mu.Unlock()
	_ = sb.http.Close()
	s.mu.Lock()
	delete(s.live, sb)
	s.mu.Unlock()
	s.wg.Done()
}

// signal sends sig to the process and its process group, unless it has
// already been reaped. os.Process.Signal cannot hit a reused PID.
func (sb *sandbox) signal(sig syscall.Signal) {
	select {
	case <-sb.dead:
		return
	default:
	}
	_ = sb.cmd.Process.Signal(sig)
	signalGroup(sb.pid, sig)
}

// killAndWait kills the process and waits until it has been reaped.
func (sb *sandbox) killAndWait() {
	sb.signal(syscall.SIGKILL)
	t := time.NewTimer(reapTimeout)
	defer t.Stop()
	select {
	case <-sb.dead:
	case <-t.C:
	}
}

// expire is the deadline of inv: kill its process and answer as Lambda
// does on a timeout.
func (f *function) expire(inv *invocation) {
	f.mu.Lock()
	sb := inv.sb
	if inv.claimed || sb == nil || sb.current != inv {
		f.mu.Unlock()
		return
	}
	sb.current = nil
	f.claimLocked(inv, timeoutResult(inv.id, f.cfg.Timeout))
	f.logf("%s %s Task timed out after %s seconds\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), inv.id, seconds(f.cfg.Timeout))
	f.removeLocked(sb)
	f.mu.Unlock()
	sb.killAndWait()
	f.mu.Lock()
	f.publishLocked(inv)
	f.mu.Unlock()
}

// initExpired ends a sandbox whose runtime has not asked for its first
// event within the init limit.
func (f *function) initExpired(sb *sandbox) {
	f.mu.Lock()
	if !sb.ready.IsZero() || sb.gone {
		f.mu.Unlock()
		return
	}
	f.removeLocked(sb)
	inv := sb.pending
	sb.pending = nil
	claimed := inv != nil && !inv.claimed
	if claimed {
		f.claimLocked(inv, timeoutResult(inv.id, f.cfg.Timeout))
	}
	f.mu.Unlock()
	sb.killAndWait()
	if claimed {
		f.mu.Lock()
		f.publishLocked(inv)
		f.mu.Unlock()
	}
}

// finishLocked decides and publishes the outcome of inv, unless one was
// decided already.
func (f *function) finishLocked(inv *invocation, res result) {
	if inv.claimed {
		return
	}
	f.claimLocked(inv, res)
	f.publishLocked(inv)
}

func (f *function) claimLocked(inv *invocation, res result) {
	inv.claimed = true
	inv.res = res
	inv.end = time.Now()
	if inv.sb != nil && inv.sb.pending == inv {
		inv.sb.pending = nil
	}
}

// publishLocked logs END and REPORT and answers the invoker.
func (f *function) publishLocked(inv *invocation) {
	defer f.srv.doneInflight()
	defer close(inv.done)
	if inv.start.IsZero() {
		return
	}
	d := inv.end.Sub(inv.start)
	line := fmt.Sprintf("REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\tMemory Size: %d MB",
		inv.id, ms(d), int64(math.Ceil(ms(d+inv.initDur))), f.cfg.MemoryMB)
	if inv.cold {
		line += fmt.Sprintf("\tInit Duration: %.2f ms", ms(inv.initDur))
	}
	switch inv.res.status {
	case StatusTimeout:
		line += "\tStatus: timeout"
	case StatusExited:
		line += "\tStatus: error\tError Type: " + inv.res.errorType
	}
	f.logf("END RequestId: %s\n%s\n", inv.id, line)
}

// logf writes a platform line to Stdout, where Lambda's log stream would
// have it.
func (f *function) logf(format string, args ...any) {
	if f.stdout != nil {
		_, _ = fmt.Fprintf(f.stdout, format, args...)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// seconds formats a timeout as Lambda does: 3.00.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

func (inv *invocation) recordLocked() Invocation {
	r := Invocation{
		RequestID:      inv.id,
		Function:       inv.fn.cfg.Name,
		InvocationType: inv.typ,
		Received:       inv.received,
		Start:          inv.start,
		Deadline:       inv.deadline,
		Status:         StatusRunning,
		PID:            inv.pid,
		ColdStart:      inv.cold && inv.pid != 0,
		InitDuration:   inv.initDur,
		RequestBytes:   len(inv.payload),
	}
	select {
	case <-inv.done:
		r.End = inv.end
		r.Status = inv.res.status
		r.ErrorType = inv.res.errorType
		r.ResponseBytes = len(inv.res.body)
	default:
	}
	return r
}

func (sb *sandbox) recordLocked() Process {
	return Process{
		PID:         sb.pid,
		LogStream:   sb.logStream,
		Started:     sb.started,
		Ready:       sb.ready,
		Exited:      sb.exited,
		ExitStatus:  sb.exitState,
		Invocations: sb.count,
	}
}

// afterFunc is time.AfterFunc counted in s.wg until fn has run or
// stopTimer has stopped it.
func (s *Server) afterFunc(d time.Duration, fn func()) *time.Timer {
	s.wg.Add(1)
	return time.AfterFunc(d, func() {
		defer s.wg.Done()
		fn()
	})
}

func (s *Server) stopTimer(t *time.Timer) {
	if t != nil && t.Stop() {
		s.wg.Done()
	}
}

// Results Lambda gives for failures outside the function's code.

func exitResult(id, state string, err error) result {
	msg := "Runtime exited without providing a reason"
	switch {
	case err != nil:
		msg = "Runtime exited with error: " + err.Error()
	case state != "" && state != "exit status 0":
		msg = "Runtime exited with error: " + state
	}
	return result{
		status:    StatusExited,
		body:      errorBody("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: %s", id, msg)),
		errorType: "Runtime.ExitError",
		fnError:   true,
	}
}

func timeoutResult(id string, timeout time.Duration) result {
	return result{
		status:    StatusTimeout,
		body:      errorBody("Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Task timed out after %s seconds", id, seconds(timeout))),
		errorType: "Sandbox.Timedout",
		fnError:   true,
	}
}

// errorBody is a function error payload as Lambda writes it.
func errorBody(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{typ, msg})
	return b
}

// newRequestID returns a random (version 4) UUID, as Lambda's request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newTraceID returns an X-Ray trace header as Lambda gives the runtime.
func newTraceID() string {
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), randomHex(12), randomHex(8))
}
