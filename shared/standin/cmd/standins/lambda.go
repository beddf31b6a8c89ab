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
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/standin"
)

// lambdaFlags are the flags invoke and start-lambda share.
type lambdaFlags struct {
	template, envVars, cache string
}

func (f *lambdaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.template, "template", "template.yaml", "SAM `file` to read the functions' settings from")
	fs.StringVar(&f.envVars, "env-vars", "events/env.json", "JSON `file` of per-function variable overrides, as sam local's --env-vars")
	fs.StringVar(&f.cache, "cache", "", "install cache `dir` (default $"+standin.CacheDirEnv+" or <repo root>/.cache/standins)")
}

// functions reads the template's functions with env.json's overrides
// applied; a local endpoint for Docker (host.docker.internal) becomes the
// running stand-in of `standins up` when there is one, else 127.0.0.1.
func (f *lambdaFlags) functions(runDir string, warn io.Writer) (map[string]*function, error) {
	fns, err := readTemplate(f.template)
	if err != nil {
		return nil, err
	}
	overrides := map[string]map[string]string{}
	if f.envVars != "" {
		b, err := os.ReadFile(f.envVars)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &overrides); err != nil {
			return nil, fmt.Errorf("%s: %w", f.envVars, err)
		}
	}
	st := &state{dir: runDir}
	live := map[string]string{}
	for _, svc := range services {
		if _, ep, ok := st.read(svc); ok {
			live["SHARDLINE_"+strings.ToUpper(svc.key)+"_ENDPOINT"] = ep
		}
	}
	for name, fn := range fns {
		for k, v := range overrides[name] {
			fn.Env[k] = v
			fn.Unresolved = remove(fn.Unresolved, k)
		}
		for k, v := range fn.Env {
			if strings.Contains(v, "host.docker.internal") {
				if ep, ok := live[k]; ok {
					fn.Env[k] = ep
				} else {
					fn.Env[k] = strings.ReplaceAll(v, "host.docker.internal", "127.0.0.1")
				}
			}
		}
		if len(fn.Unresolved) > 0 {
			fmt.Fprintf(warn, "standins: %s: left unset (not resolvable from the template's defaults): %s\n", name, strings.Join(fn.Unresolved, ", "))
		}
	}
	return fns, nil
}

func remove(s []string, v string) []string {
	var out []string
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func (fn *function) envList() []string {
	var env []string
	for k, v := range fn.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// buildFunction builds ./functions/<name without "Function", lower case>
// as build-<Name> in the Makefile does, for this machine's architecture.
// root is the directory of the template (the module root).
func buildFunction(ctx context.Context, root, dir, name string) (string, error) {
	pkg := "./functions/" + strings.ToLower(strings.TrimSuffix(name, "Function"))
	out := filepath.Join(dir, name, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s (%s): %v\n%s", name, pkg, err, b)
	}
	return out, nil
}

// invoke builds one function, runs it once under the emulator with the
// event, writes the answer to stdout and the function's log to stderr.
func invoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("standins invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf lambdaFlags
	lf.register(fs)
	fnName := fs.String("fn", "", "logical id of the function in the template (e.g. WordCountFunction)")
	event := fs.String("event", "", "event `file` to invoke it with")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fnName == "" || *event == "" || fs.NArg() > 0 {
		return usageError{"invoke: -fn and -event are required, and nothing else"}
	}
	runDir, err := lf.runDir()
	if err != nil {
		return err
	}
	fns, err := lf.functions(runDir, stderr)
	if err != nil {
		return err
	}
	fn, ok := fns[*fnName]
	if !ok {
		return usageError{fmt.Sprintf("invoke: no function %q in %s (have %s)", *fnName, lf.template, names(fns))}
	}
	ev, err := os.ReadFile(*event)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "standins-invoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := buildFunction(ctx, filepath.Dir(lf.template), tmp, fn.Name)
	if err != nil {
		return err
	}
	log := &reportWatch{w: stderr, seen: make(chan struct{})}
	rie, err := standin.StartRIE(ctx, standin.RIEConfig{Bootstrap: bin, Name: fn.Name, Env: fn.envList(),
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
		return fmt.Errorf("invoke %s: %w", fn.Name, err)
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
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("invoke %s: HTTP %d", fn.Name, resp.StatusCode)
	}
	return nil
}

func (f *lambdaFlags) runDir() (string, error) {
	c := f.cache
	if c == "" {
		d, err := standin.DefaultCacheDir()
		if err != nil {
			return "", err
		}
		c = d
	}
	return filepath.Join(c, "run"), nil
}

func names(fns map[string]*function) string {
	var n []string
	for k := range fns {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// startLambda serves the template's functions on one Invoke endpoint, as
// `sam local start-lambda` does, until ctx is done.
func startLambda(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("standins start-lambda", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf lambdaFlags
	lf.register(fs)
	port := fs.Int("port", 3001, "port on 127.0.0.1 (0: a free one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("start-lambda: unexpected arguments %q", fs.Args())}
	}
	runDir, err := lf.runDir()
	if err != nil {
		return err
	}
	fns, err := lf.functions(runDir, stderr)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "standins-lambda-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r := &router{fns: map[string]*pool{}, log: &lockedWriter{w: stderr}}
	for name, fn := range fns {
		bin, err := buildFunction(ctx, filepath.Dir(lf.template), tmp, name)
		if err != nil {
			return err
		}
		r.fns[name] = &pool{fn: fn, bin: bin}
	}
	defer r.close()
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
	fmt.Fprintf(stdout, "serving %s on http://%s (poller -lambda-endpoint http://%s -target-function <name>); Ctrl-C stops\n", names(fns), l.Addr(), l.Addr())
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// router maps /2015-03-31/functions/<Name>/invocations to an idle emulator
// of that function, starting another when all are busy (the emulator runs
// one invocation at a time).
type router struct {
	fns map[string]*pool
	log io.Writer
}

// pool is one function's emulators.
type pool struct {
	fn  *function
	bin string

	mu   sync.Mutex
	idle []*standin.Server
	all  []*standin.Server
}

func (p *pool) get(ctx context.Context, log io.Writer) (*standin.Server, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	s, err := standin.StartRIE(ctx, standin.RIEConfig{Bootstrap: p.bin, Name: p.fn.Name, Env: p.fn.envList(),
		Timeout: time.Duration(p.fn.Timeout) * time.Second, MemoryMB: p.fn.MemoryMB, Log: log})
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.all = append(p.all, s)
	p.mu.Unlock()
	return s, nil
}

func (p *pool) put(s *standin.Server) {
	if exited, _ := s.Exited(); exited {
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
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s, err := p.get(req.Context(), r.log)
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
