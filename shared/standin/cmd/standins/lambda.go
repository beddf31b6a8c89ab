package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/samtemplate"
)

// lambdaFlags are the flags invoke and start-lambda share.
type lambdaFlags struct {
	template, envVars, params, runDir string
}

func (f *lambdaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.template, "template", "template.yaml", "SAM template `file` to read the functions from")
	fs.StringVar(&f.envVars, "env-vars", "", "JSON `file` of variable overrides by logical id (and \"Parameters\" for all), as sam local's --env-vars (default: events/env.json beside the template, if there is one)")
	fs.StringVar(&f.params, "parameter-overrides", "", "template parameter values, as sam's `'Key=Value Key2=Value2'`")
	fs.StringVar(&f.runDir, "run", "", "run `dir` of the stand-ins up started (default: look for them; see the doc)")
}

// paramRE is one Key=Value of -parameter-overrides (the value quoted or not).
var paramRE = regexp.MustCompile(`^\s*([A-Za-z0-9]+)=(?:"([^"]*)"|'([^']*)'|(\S*))`)

func parseParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for rest := strings.TrimSpace(s); rest != ""; rest = strings.TrimSpace(rest) {
		m := paramRE.FindStringSubmatch(rest)
		if m == nil {
			return nil, usageError{fmt.Sprintf("-parameter-overrides %q: at %q: want Key=Value pairs separated by spaces (Key=\"a value\" for spaces)", s, rest)}
		}
		out[m[1]] = m[2] + m[3] + m[4]
		rest = rest[len(m[0]):]
	}
	return out, nil
}

// load reads the template and the overrides file.
func (f *lambdaFlags) load() (*samtemplate.Template, map[string]map[string]string, string, error) {
	params, err := parseParams(f.params)
	if err != nil {
		return nil, nil, "", err
	}
	tpl, err := samtemplate.Read(f.template, samtemplate.Options{Params: params})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, "", usageError{fmt.Sprintf("-template %s: no such file (run in the folder of your template.yaml, or name it with -template)", f.template)}
	}
	if err != nil {
		return nil, nil, "", err
	}
	if len(tpl.Functions) == 0 {
		return nil, nil, "", fmt.Errorf("%s: no AWS::Serverless::Function", f.template)
	}
	path := f.envVars
	if path == "" {
		path = filepath.Join(tpl.Dir, "events", "env.json")
		if _, err := os.Stat(path); err != nil {
			return tpl, nil, "", nil
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, "", err
	}
	overrides := map[string]map[string]string{}
	if err := json.Unmarshal(b, &overrides); err != nil {
		return nil, nil, "", fmt.Errorf("%s: %w (want {\"<LogicalId>\": {\"VAR\": \"value\"}, \"Parameters\": {...}})", path, err)
	}
	return tpl, overrides, rel(path), nil
}

// environment is a function's variables as sam local gives them: the
// template's resolved values, then the overrides file's "Parameters", then
// its own entry; only variables the template declares. Each problem is
// written to warn (for the invoked function only).
func environment(fn *samtemplate.Function, overrides map[string]map[string]string, envFile string, warn io.Writer) map[string]string {
	env := map[string]string{}
	for k, v := range fn.Env {
		env[k] = v
	}
	set := map[string]bool{}
	for _, scope := range []string{"Parameters", fn.LogicalID} {
		for k, v := range overrides[scope] {
			if !slices.Contains(fn.Declared, k) {
				if scope == fn.LogicalID {
					fmt.Fprintf(warn, "standins: %s: %s sets %s, which the template does not declare: left unset, as sam local leaves it\n", fn.LogicalID, envFile, k)
				}
				continue
			}
			env[k] = v
			set[k] = true
		}
	}
	var unset []string
	for _, k := range fn.UnresolvedNames() {
		if !set[k] {
			unset = append(unset, fmt.Sprintf("%s (%s)", k, fn.Unresolved[k]))
		}
	}
	if len(unset) > 0 {
		fmt.Fprintf(warn, "standins: %s: left unset, not resolvable from the template (give them in %s or -parameter-overrides): %s\n", fn.LogicalID, orDefault(envFile, "an -env-vars file"), strings.Join(unset, "; "))
	}
	return env
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// dockerVars are the variables whose value names host.docker.internal:
// written for sam local's containers, meant for the stand-ins.
func dockerVars(env map[string]string) []string {
	var out []string
	for k, v := range env {
		if strings.Contains(v, "host.docker.internal") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// pointAtStandins sets the endpoint variables to the running stand-ins and
// any other host.docker.internal to 127.0.0.1.
func pointAtStandins(env map[string]string, urls []string) {
	for _, k := range dockerVars(env) {
		env[k] = strings.ReplaceAll(env[k], "host.docker.internal", "127.0.0.1")
	}
	env["SHARDLINE_KINESIS_ENDPOINT"] = urls[0]
	env["SHARDLINE_DYNAMODB_ENDPOINT"] = urls[1]
}

// isPoll reports whether an event is a scheduled one, which makes a
// shardline.Start function poll (shardline's own test of an event: the
// schedule's {"shardline": ...}, EventBridge's scheduled events).
func isPoll(payload []byte) bool {
	var p struct {
		Shardline  *string `json:"shardline"`
		Source     string  `json:"source"`
		DetailType string  `json:"detail-type"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return false
	}
	return p.Shardline != nil || p.Source == "aws.events" && p.DetailType == "Scheduled Event" || p.Source == "aws.scheduler"
}

func environ(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// functionError is a function's answer with an error: what Lambda reports
// with X-Amz-Function-Error (the emulator answers 200 without it).
type functionError struct {
	fn, errorType, message string
}

func (e *functionError) Error() string {
	return fmt.Sprintf("%s returned an error: errorType %s: %s", e.fn, e.errorType, e.message)
}

// answerError reads an emulator's answer: nil for a result, else the
// function's error (a returned error, a crash, a timeout).
func answerError(fn string, status int, body []byte) error {
	var e struct {
		ErrorType    *string `json:"errorType"`
		ErrorMessage string  `json:"errorMessage"`
	}
	isErr := json.Unmarshal(body, &e) == nil && e.ErrorType != nil
	switch {
	case isErr:
		return &functionError{fn: fn, errorType: *e.ErrorType, message: e.ErrorMessage}
	case bytes.HasPrefix(bytes.TrimSpace(body), []byte("Task timed out")):
		return &functionError{fn: fn, errorType: "Sandbox.Timedout", message: string(bytes.TrimSpace(body))}
	case status != http.StatusOK:
		return fmt.Errorf("invoke %s: HTTP %d: %s", fn, status, bytes.TrimSpace(body))
	}
	return nil
}

// pick is the function -fn names, or the template's only function.
func pick(tpl *samtemplate.Template, name string) (*samtemplate.Function, error) {
	if name == "" {
		if len(tpl.Functions) == 1 {
			return tpl.Functions[0], nil
		}
		return nil, usageError{fmt.Sprintf("invoke: -fn is required: %s has %d functions (%s)", rel(tpl.Path), len(tpl.Functions), strings.Join(tpl.Names(), ", "))}
	}
	fn := tpl.Function(name)
	if fn == nil {
		return nil, usageError{fmt.Sprintf("invoke: no function %q in %s (it has %s)", name, rel(tpl.Path), strings.Join(tpl.Names(), ", "))}
	}
	return fn, nil
}

// invoke builds one function, runs it once under the emulator with the
// event, writes the answer to stdout and the function's log to stderr.
func invoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("standins invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf lambdaFlags
	lf.register(fs)
	fnName := fs.String("fn", "", "logical `id` of the function in the template (default: its only function)")
	event := fs.String("event", "", "event `file` to invoke it with (events/kinesis.json, events/poll-once.json, ...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *event == "" || fs.NArg() > 0 {
		return usageError{"invoke: -event is required, and no arguments (-fn names the function)"}
	}
	tpl, overrides, envFile, err := lf.load()
	if err != nil {
		return err
	}
	fn, err := pick(tpl, *fnName)
	if err != nil {
		return err
	}
	ev, err := os.ReadFile(*event)
	if err != nil {
		return usageError{fmt.Sprintf("invoke: -event: %v", err)}
	}
	env := environment(fn, overrides, envFile, stderr)
	poll := isPoll(ev)
	if docker := dockerVars(env); poll || len(docker) > 0 {
		st, looked := locate(ctx, lf.runDir, tpl.Dir)
		switch {
		case st != nil:
			urls, _ := st.up(ctx)
			pointAtStandins(env, urls)
			fmt.Fprintf(stderr, "standins: stand-ins found in %s (%s): kinesis-mock %s, DynamoDB Local %s\n", st.dir, looked[len(looked)-1].where, urls[0], urls[1])
		case poll:
			return fmt.Errorf("invoke %s: %s is a scheduled event (the function polls the stream and its lease table): %w", fn.LogicalID, *event, notFound(looked))
		default:
			for _, k := range docker {
				delete(env, k)
			}
			fmt.Fprintf(stderr, "standins: no running stand-ins, so %s (host.docker.internal) left unset; a Kinesis event needs none. Looked in:\n%s\n", strings.Join(docker, ", "), lookedList(looked))
		}
	}
	tmp, err := os.MkdirTemp("", "standins-invoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := buildFunction(ctx, tpl, fn, tmp, stderr)
	if err != nil {
		return err
	}
	log := &reportWatch{w: stderr, seen: make(chan struct{})}
	rie, err := standin.StartRIE(ctx, standin.RIEConfig{Bootstrap: bin, Name: fn.LogicalID, Env: environ(env),
		Timeout: time.Duration(fn.Timeout) * time.Second, MemoryMB: fn.MemoryMB, Log: log})
	if err != nil {
		return err
	}
	defer rie.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rie.Endpoint+standin.RIEInvokePath, bytes.NewReader(ev))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", fn.LogicalID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(body))
	// The emulator writes its REPORT line just after it answers: let it
	// reach the log before the emulator stops.
	select {
	case <-log.seen:
	case <-time.After(2 * time.Second):
	}
	return answerError(fn.LogicalID, resp.StatusCode, body)
}

// startLambda serves the template's functions on one Invoke endpoint, as
// `sam local start-lambda` does, until ctx is done.
func startLambda(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("standins start-lambda", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf lambdaFlags
	lf.register(fs)
	port := fs.Int("port", 3001, "port on 127.0.0.1 (0: a free one)")
	maxConc := fs.Int("max-concurrency", 8, "most emulators of one function at once (each runs one invocation); past it an Invoke is throttled (429), as Lambda throttles past a function's concurrency")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("start-lambda: unexpected arguments %q", fs.Args())}
	}
	tpl, overrides, envFile, err := lf.load()
	if err != nil {
		return err
	}
	envs := map[string]map[string]string{}
	var docker []string
	for _, fn := range tpl.Functions {
		envs[fn.LogicalID] = environment(fn, overrides, envFile, stderr)
		for _, k := range dockerVars(envs[fn.LogicalID]) {
			docker = append(docker, fn.LogicalID+"."+k)
		}
	}
	if len(docker) > 0 {
		st, looked := locate(ctx, lf.runDir, tpl.Dir)
		if st != nil {
			urls, _ := st.up(ctx)
			for _, env := range envs {
				if len(dockerVars(env)) > 0 {
					pointAtStandins(env, urls)
				}
			}
			fmt.Fprintf(stderr, "standins: stand-ins found in %s (%s): kinesis-mock %s, DynamoDB Local %s\n", st.dir, looked[len(looked)-1].where, urls[0], urls[1])
		} else {
			for _, env := range envs {
				for _, k := range dockerVars(env) {
					delete(env, k)
				}
			}
			fmt.Fprintf(stderr, "standins: no running stand-ins, so %s (host.docker.internal) left unset: a scheduled event will fail, a Kinesis event needs none. Looked in:\n%s\n", strings.Join(docker, ", "), lookedList(looked))
		}
	}
	tmp, err := os.MkdirTemp("", "standins-lambda-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r := &router{fns: map[string]*pool{}, log: &lockedWriter{w: stderr}}
	defer r.close()
	var served []string
	for _, fn := range tpl.Functions {
		bin, err := buildFunction(ctx, tpl, fn, tmp, stderr)
		if err != nil {
			return err
		}
		p := &pool{name: fn.LogicalID, env: environ(envs[fn.LogicalID]), timeout: time.Duration(fn.Timeout) * time.Second, memoryMB: fn.MemoryMB, bin: bin, max: *maxConc}
		r.fns[fn.LogicalID] = p
		name := fn.LogicalID
		if fn.FunctionName != "" && tpl.Function(fn.FunctionName) == nil {
			r.fns[fn.FunctionName] = p
			name += " (" + fn.FunctionName + ")"
		}
		served = append(served, name)
	}
	if _, err := standin.InstallRIE(ctx); err != nil {
		return err
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "serving %s on http://%s (poller run -lambda-endpoint http://%s -target-function <name>); Ctrl-C stops\n", strings.Join(served, ", "), l.Addr(), l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// MaxPayload is Lambda's limit on a synchronous Invoke's request payload.
const MaxPayload = 6 * 1024 * 1024

// router maps /2015-03-31/functions/<Name>/invocations to an idle emulator
// of that function, starting another when all are busy (the emulator runs
// one invocation at a time).
type router struct {
	fns map[string]*pool
	log io.Writer
}

// pool is one function's emulators.
type pool struct {
	name     string
	env      []string
	timeout  time.Duration
	memoryMB int
	bin      string

	max int // most emulators at once (0: no limit)

	mu       sync.Mutex
	idle     []*standin.Server
	all      []*standin.Server
	starting int // emulators being started
}

// errBusy: every emulator the pool may run is busy.
var errBusy = errors.New("every emulator of the function is busy")

func (p *pool) get(ctx context.Context, log io.Writer) (*standin.Server, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	if p.max > 0 && len(p.all)+p.starting >= p.max {
		p.mu.Unlock()
		return nil, errBusy
	}
	p.starting++
	p.mu.Unlock()
	s, err := standin.StartRIE(ctx, standin.RIEConfig{Bootstrap: p.bin, Name: p.name, Env: p.env,
		Timeout: p.timeout, MemoryMB: p.memoryMB, Log: log})
	p.mu.Lock()
	p.starting--
	if err == nil {
		p.all = append(p.all, s)
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (p *pool) put(s *standin.Server) {
	if exited, _ := s.Exited(); exited {
		p.mu.Lock()
		p.all = slices.DeleteFunc(p.all, func(x *standin.Server) bool { return x == s })
		p.mu.Unlock()
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, s)
	p.mu.Unlock()
}

func (r *router) close() {
	for _, p := range r.fns {
		p.mu.Lock()
		for _, s := range p.all {
			_ = s.Stop()
		}
		p.all, p.idle = nil, nil
		p.mu.Unlock()
	}
}

// functionName takes the name out of an Invoke path's FunctionName: a
// name, name:qualifier, or a partial or full ARN.
func functionName(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/2015-03-31/functions/")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, "/invocations")
	if !ok || name == "" {
		return "", false
	}
	if i := strings.Index(name, ":function:"); i >= 0 {
		name = name[i+len(":function:"):]
	}
	name, _, _ = strings.Cut(name, ":")
	return name, true
}

func (r *router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	name, ok := functionName(req.URL.EscapedPath())
	if ok {
		name = strings.ReplaceAll(name, "%3A", ":")
		name, ok = functionName("/2015-03-31/functions/" + name + "/invocations")
	}
	p := r.fns[name]
	if !ok || req.Method != http.MethodPost || p == nil {
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"Type":"User","message":"Function not found: %s"}`, name)
		return
	}
	// Lambda's synchronous payload limit: a larger request is refused
	// before anything is read past it, as Lambda refuses it (413).
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxPayload))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		w.Header().Set("X-Amzn-ErrorType", "RequestEntityTooLargeException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		fmt.Fprintf(w, `{"Type":"User","message":"Request must be smaller than %d bytes for the InvokeFunction operation"}`, MaxPayload)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s, err := p.get(req.Context(), r.log)
	if errors.Is(err, errBusy) {
		// As Lambda past a function's concurrency: the poller backs off.
		w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprintf(w, `{"Type":"User","message":"Rate Exceeded. (%d emulators of %s busy: standins start-lambda -max-concurrency)","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}`, p.max, p.name)
		return
	}
	if err != nil {
		fmt.Fprintln(r.log, "standins:", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer p.put(s)
	out, err := http.NewRequestWithContext(req.Context(), http.MethodPost, s.Endpoint+standin.RIEInvokePath, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, h := range []string{"X-Amz-Client-Context", "X-Amzn-Trace-Id", "Content-Type"} {
		if v := req.Header.Get(h); v != "" {
			out.Header.Set(h, v)
		}
	}
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// lockedWriter lets the emulators' output copiers share one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// reportWatch passes a function's log on and closes seen once the
// emulator's REPORT line has gone by.
type reportWatch struct {
	w    io.Writer
	mu   sync.Mutex
	once sync.Once
	seen chan struct{}
}

func (r *reportWatch) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.w.Write(p)
	if bytes.Contains(p, []byte("REPORT RequestId")) {
		r.once.Do(func() { close(r.seen) })
	}
	return n, err
}
