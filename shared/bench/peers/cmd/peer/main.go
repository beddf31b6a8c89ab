// Command peer runs one consumer library against a stream and reports, as
// one JSON line on stdout, how long it took to count N user records and
// what it cost:
//
//	peer -lib harlow|vmware|vmware-efo|shardline|shardline-json|shardline-efo|shardline-efo-sdk -stream S -n N -kinesis URL -dynamodb URL [-app NAME]
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
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardline/shardline/shared/bench/peers/internal/schedstat"
)

// Report is what peer prints.
type Report struct {
	Lib          string  `json:"lib"`
	Records      int64   `json:"records"`
	FirstSeconds float64 `json:"first_seconds"` // process start to first record
	LastSeconds  float64 `json:"last_seconds"`  // process start to the N-th record
	CPUSeconds   float64 `json:"cpu_seconds"`   // user + system, this process, start to the N-th record
	// CPUFirstSeconds is user + system at the first record: CPUSeconds -
	// CPUFirstSeconds is what reading from the first record to the N-th
	// cost, without start-up.
	CPUFirstSeconds float64 `json:"cpu_first_seconds"`
	// CPUSchedSeconds is this process's CPU time at the N-th record from
	// the scheduler: the sum over /proc/self/task/*/schedstat of the first
	// field (ns on a CPU), read just after CPUSeconds; 0 if unreadable.
	// cmd/compare reads the same for this process when the fake gets its
	// first GetRecords, so the difference is what reading cost from the
	// first request on, with one clock at both ends.
	CPUSchedSeconds float64 `json:"cpu_sched_seconds,omitempty"`
	FirstBatch      int64   `json:"first_batch"` // user records in the handler call of the first record
	UserSeconds     float64 `json:"user_seconds"`
	SysSeconds      float64 `json:"sys_seconds"`
	MaxRSSKB        int64   `json:"max_rss_kb"`
	// KinesisConns is the TCP connections the Kinesis client dialled, up
	// to the N-th record; DiscardWarnings the SDK's "failed to discard
	// remaining HTTP response body" lines (a connection not kept).
	KinesisConns    int64 `json:"kinesis_conns"`
	DiscardWarnings int64 `json:"discard_warnings"`
	// Latency (-latency): producer timestamps to handler, over the records
	// produced after the warm-up: from the record's creation (bytes 0..8,
	// big-endian UnixNano) and from its put (bytes 8..16).
	Latency *LatencyReport `json:"latency,omitempty"`
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

// counter counts user records and closes done at the N-th (with
// -latency: at the N-th latency sample).
type counter struct {
	start    time.Time
	want     int64
	n        atomic.Int64
	first    atomic.Int64 // ns since start, 0 until the first record
	cpuFirst atomic.Int64 // CPU ns (user + sys) at the first record
	firstK   atomic.Int64 // user records in that handler call
	last     atomic.Int64
	done     chan struct{}
	closeMu  sync.Once
	lat      *latency // nil without -latency
}

func newCounter(start time.Time, want int64) *counter {
	return &counter{start: start, want: want, done: make(chan struct{})}
}

func (c *counter) add(k int) {
	if k <= 0 {
		return
	}
	now := int64(time.Since(c.start))
	if c.first.CompareAndSwap(0, now) {
		c.cpuFirst.Store(int64(cpuTime()))
		c.firstK.Store(int64(k))
	}
	n := c.n.Add(int64(k))
	if c.lat != nil {
		n = c.lat.samples()
	}
	if n >= c.want {
		c.closeMu.Do(func() {
			c.last.Store(now)
			close(c.done)
		})
	}
}

// observe takes the latency of each user record's data (with -latency),
// k records of shard, then counts them.
func (c *counter) observe(shard string, data func(i int) []byte, k int) {
	if c.lat != nil {
		c.lat.observe(shard, data, k, c.n.Load())
	}
	c.add(k)
}

// cpuTime is this process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type config struct {
	lib, stream, app, kinesis, dynamodb, region string
	n                                           int64
	timeout                                     time.Duration
	shardSync                                   time.Duration // vmware only; 0: the library's default
	// efo: enhanced fan-out (the -efo modes): efoOwn or efoSDK for
	// Shardline, any non-empty for vmware; "": polling.
	efo string
}

// runner starts a library's consumer; it returns when ctx is done or the
// consumer failed.
type runner func(ctx context.Context, cfg config, c *counter) error

var runners = map[string]runner{
	"harlow":    runHarlow,
	"vmware":    runVMware,
	"shardline": runShardline,
	// Shardline reading GetRecords in JSON, as it reads an endpoint that
	// refuses CBOR (moto_server), with AWS_CBOR_DISABLE=true.
	"shardline-json": func(ctx context.Context, cfg config, c *counter) error {
		os.Setenv("AWS_CBOR_DISABLE", "true")
		return runShardline(ctx, cfg, c)
	},
	// Enhanced fan-out: a consumer named after -app, SubscribeToShard per
	// shard (over TLS with HTTP/2 where the endpoint is https://, as on
	// AWS). shardline-efo reads the subscriptions with Shardline's own
	// reader, shardline-efo-sdk with the SDK's (fetch.SDKSubscribe).
	"shardline-efo":     withEFO(efoOwn, runShardline),
	"shardline-efo-sdk": withEFO(efoSDK, runShardline),
	"vmware-efo":        withEFO(efoOwn, runVMware),
}

// libs names the -lib values.
const libs = "harlow, vmware, vmware-efo, shardline, shardline-json, shardline-efo or shardline-efo-sdk"

// withEFO is r reading with enhanced fan-out.
func withEFO(mode string, r runner) runner {
	return func(ctx context.Context, cfg config, c *counter) error {
		cfg.efo = mode
		return r(ctx, cfg, c)
	}
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
	fs.StringVar(&cfg.lib, "lib", "", libs)
	fs.StringVar(&cfg.stream, "stream", "", "stream name")
	fs.StringVar(&cfg.app, "app", "", "application (lease/checkpoint) name; default peer-<lib>-<time>")
	fs.StringVar(&cfg.kinesis, "kinesis", os.Getenv("AWS_ENDPOINT_URL_KINESIS"), "Kinesis endpoint")
	fs.StringVar(&cfg.dynamodb, "dynamodb", os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), "DynamoDB endpoint")
	fs.StringVar(&cfg.region, "region", "us-east-1", "region")
	fs.Int64Var(&cfg.n, "n", 0, "user records to count before exiting")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up after this long")
	fs.DurationVar(&cfg.shardSync, "vmware-shard-sync", 0, "vmware: ShardSyncIntervalMillis (0: the library's 60 s, ±50% jitter; its worker takes one lease per sync, so 4 shards take ~4 intervals)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run (start to the N-th record) to this file")
	memprofile := fs.String("memprofile", "", "write a heap profile to this file at the N-th record")
	lat := fs.Bool("latency", false, "take each user record's producer timestamps (bytes 0..8: made, 8..16: handed to PutRecords; big-endian UnixNano) and report latency percentiles from each; -n then counts latency samples")
	warmup := fs.Int64("warmup", 1000, "with -latency: only records produced after this many user records were received count")
	warmupShards := fs.Int("warmup-shards", 0, "with -latency: and only once records have come from this many shards (a library that takes its leases one by one would count the backlog of a shard taken late)")
	ensureTable := fs.Bool("ensure-table", false, "shardline: create the lease table of -app (the library's own code) and exit, printing nothing")
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
		return fmt.Errorf("-lib %q: want %s", cfg.lib, libs)
	}
	if cfg.stream == "" || cfg.n <= 0 || cfg.kinesis == "" || cfg.dynamodb == "" {
		return errors.New("-stream, -n > 0, -kinesis and -dynamodb are required")
	}
	if cfg.app == "" {
		cfg.app = fmt.Sprintf("peer-%s-%d", cfg.lib, start.UnixNano())
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	if *ensureTable {
		if cfg.lib != "shardline" {
			return errors.New("-ensure-table: shardline only")
		}
		return ensureShardlineTable(ctx, cfg)
	}
	c := newCounter(start, cfg.n)
	if *lat {
		c.lat = newLatency(*warmup, *warmupShards)
	}
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
	sched, schedErr := schedstat.Self()
	if schedErr != nil {
		fmt.Fprintln(os.Stderr, "peer: schedstat:", schedErr)
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	rep := Report{
		Lib: cfg.lib, Records: c.n.Load(),
		FirstSeconds: time.Duration(c.first.Load()).Seconds(),
		LastSeconds:  time.Duration(c.last.Load()).Seconds(),
		UserSeconds:  tv(ru.Utime), SysSeconds: tv(ru.Stime),
		MaxRSSKB:     peakRSSKB(ru.Maxrss),
		KinesisConns: kinesisConns.Load(), DiscardWarnings: discardWarnings.Load(),
	}
	rep.CPUSeconds = rep.UserSeconds + rep.SysSeconds
	rep.CPUFirstSeconds = time.Duration(c.cpuFirst.Load()).Seconds()
	rep.CPUSchedSeconds = sched.Seconds()
	rep.FirstBatch = c.firstK.Load()
	if c.lat != nil {
		rep.Latency = c.lat.report()
	}
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		if err := writeHeap(*memprofile); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// writeHeap writes a heap profile (after a GC, so it shows what is live).
func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
