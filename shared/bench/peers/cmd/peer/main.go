// Command peer runs one consumer library against a stream and reports, as
// one JSON line on stdout, how long it took to count N user records and
// what it cost:
//
//	peer -lib harlow|vmware|shardline -stream S -n N -kinesis URL -dynamodb URL [-app NAME]
//
// Each library reads from TRIM_HORIZON with its own defaults except where
// the flags below say otherwise; the handler only counts user records
// (de-aggregating KPL records where the library does not).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Report is what peer prints.
type Report struct {
	Lib          string  `json:"lib"`
	Records      int64   `json:"records"`
	FirstSeconds float64 `json:"first_seconds"` // process start to first record
	LastSeconds  float64 `json:"last_seconds"`  // process start to the N-th record
	CPUSeconds   float64 `json:"cpu_seconds"`   // user + system, this process
	UserSeconds  float64 `json:"user_seconds"`
	SysSeconds   float64 `json:"sys_seconds"`
	MaxRSSKB     int64   `json:"max_rss_kb"`
}

// peakRSSKB is this process's own peak RSS: VmHWM from /proc/self/status.
// getrusage's ru_maxrss is no good for a child: Linux carries the parent's
// high-water mark across fork and exec into it (a child of a 48 MB driver
// reports 48 MB). Falls back to ru_maxrss (kB) where /proc is missing.
func peakRSSKB(fallback int64) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fallback
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
				return kb
			}
		}
	}
	return fallback
}

// counter counts user records and closes done at the N-th.
type counter struct {
	start   time.Time
	want    int64
	n       atomic.Int64
	first   atomic.Int64 // ns since start, 0 until the first record
	last    atomic.Int64
	done    chan struct{}
	closeMu sync.Once
}

func newCounter(start time.Time, want int64) *counter {
	return &counter{start: start, want: want, done: make(chan struct{})}
}

func (c *counter) add(k int) {
	if k <= 0 {
		return
	}
	now := int64(time.Since(c.start))
	c.first.CompareAndSwap(0, now)
	if c.n.Add(int64(k)) >= c.want {
		c.closeMu.Do(func() {
			c.last.Store(now)
			close(c.done)
		})
	}
}

type config struct {
	lib, stream, app, kinesis, dynamodb, region string
	n                                           int64
	timeout                                     time.Duration
	shardSync                                   time.Duration // vmware only; 0: the library's default
}

// runner starts a library's consumer; it returns when ctx is done or the
// consumer failed.
type runner func(ctx context.Context, cfg config, c *counter) error

var runners = map[string]runner{
	"harlow":    runHarlow,
	"vmware":    runVMware,
	"shardline": runShardline,
}

func main() {
	start := time.Now()
	if err := run(start, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func run(start time.Time, args []string) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	var cfg config
	fs.StringVar(&cfg.lib, "lib", "", "harlow, vmware or shardline")
	fs.StringVar(&cfg.stream, "stream", "", "stream name")
	fs.StringVar(&cfg.app, "app", "", "application (lease/checkpoint) name; default peer-<lib>-<time>")
	fs.StringVar(&cfg.kinesis, "kinesis", os.Getenv("AWS_ENDPOINT_URL_KINESIS"), "Kinesis endpoint")
	fs.StringVar(&cfg.dynamodb, "dynamodb", os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "DynamoDB endpoint")
	fs.StringVar(&cfg.region, "region", "us-east-1", "region")
	fs.Int64Var(&cfg.n, "n", 0, "user records to count before exiting")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.DurationVar(&cfg.shardSync, "vmware-shard-sync", 0, "vmware: ShardSyncIntervalMillis (0: the library's 60 s, ±50% jitter; its worker takes one lease per sync, so 4 shards take ~4 intervals)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, ok := runners[cfg.lib]
	if !ok {
		return fmt.Errorf("-lib %q: want harlow, vmware or shardline", cfg.lib)
	}
	if cfg.stream == "" || cfg.n <= 0 || cfg.kinesis == "" || cfg.dynamodb == "" {
		return errors.New("-stream, -n > 0, -kinesis and -dynamodb are required")
	}
	if cfg.app == "" {
		cfg.app = fmt.Sprintf("peer-%s-%d", cfg.lib, start.UnixNano())
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	c := newCounter(start, cfg.n)
	errc := make(chan error, 1)
	go func() { errc <- r(ctx, cfg, c) }()
	select {
	case <-c.done:
	case err := <-errc:
		if err == nil {
			err = errors.New("consumer stopped early")
		}
		return fmt.Errorf("%s after %d records: %w", cfg.lib, c.n.Load(), err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %d of %d records: %w", cfg.lib, c.n.Load(), cfg.n, ctx.Err())
	}
	// Measured here, before any shutdown work: the cost of reading N.
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return fmt.Errorf("getrusage: %w", err)
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	rep := Report{
		Lib: cfg.lib, Records: c.n.Load(),
		FirstSeconds: time.Duration(c.first.Load()).Seconds(),
		LastSeconds:  time.Duration(c.last.Load()).Seconds(),
		UserSeconds:  tv(ru.Utime), SysSeconds: tv(ru.Stime),
		MaxRSSKB: peakRSSKB(ru.Maxrss),
	}
	rep.CPUSeconds = rep.UserSeconds + rep.SysSeconds
	return json.NewEncoder(os.Stdout).Encode(rep)
}
