//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/testwait"
)

// BenchmarkMemory (issue #7, point 6): the peak RSS of a real poller
// process holding 100 shards while records flow must stay under 64 MB.
//
// The child is the poller binary itself, built with `go build` into a
// temporary directory, run as `poller run -handler print -initial-position
// TRIM_HORIZON -failover-time 10s` against the stand-ins; its stdout (one
// JSON line per record) is counted and thrown away by this process. Its
// /proc/<pid>/status is sampled every 100 ms; VmHWM is the kernel's peak
// RSS. GODEBUG=gctrace=1 on the child gives the Go heap. Two phases, each a
// new 100-shard stream and a new poller:
//
//   - backlog: memRecords user records (KPL aggregates of up to 100) are
//     put first; the poller then starts from TRIM_HORIZON and reads them all.
//   - flowing: the poller starts on the empty stream, takes all 100
//     leases, then memRecords user records are put at memRate per second
//     while it reads.
//
// Metrics: peak-RSS-MB (the highest VmHWM read, to the exit after
// SIGTERM), steady-RSS-MB (median VmRSS from the first record printed to
// the last), records, shards (leases the poller held when every record was
// read), heap-peak-MB and heap-live-MB (largest heap at a GC and largest
// live heap after one, from gctrace), read-s (first record to last). A
// phase fails if the peak is 64 MB or more, the poller held fewer than 100
// leases, or it did not exit 0 after SIGTERM.
//
// With SHARDLINE_BENCH_HEAP_DIR=<dir> the child is this test binary instead
// (it runs as the poller under SHARDLINE_TEST_BE_POLLER=1, see TestMain)
// and writes Go heap profiles into <dir>/<phase>/: heap-peak.pb.gz when its
// heap reaches a new high, heap-end.pb.gz and metrics.json when every
// record was read. SHARDLINE_BENCH_RECORDS changes the user records per
// phase (default 100000).
//
//	SHARDLINE_CACHE_DIR=$PWD/.cache/standins AWS_EC2_METADATA_DISABLED=true \
//	  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
//	  go test -run '^$' -bench BenchmarkMemory -benchtime 1x ./poller/
func BenchmarkMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("needs the stand-ins and a few minutes (run without -short)")
	}
	k, d := standintest.Both(b)
	b.Setenv("AWS_ACCESS_KEY_ID", "local")
	b.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	b.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	clients, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1", KinesisEndpoint: k.Endpoint, DynamoDBEndpoint: d.Endpoint})
	if err != nil {
		b.Fatal(err)
	}
	m := &memBench{kinesisEP: k.Endpoint, dynamoEP: d.Endpoint, clients: clients, total: memRecords(b)}
	m.heapDir = os.Getenv(memHeapDirEnv)
	if m.heapDir == "" {
		m.bin = memBuildPoller(b)
	} else {
		m.bin = os.Args[0]
		b.Logf("child: this test binary as the poller, heap profiles in %s", m.heapDir)
	}
	b.Run("backlog", func(b *testing.B) { m.phase(b, "backlog") })
	b.Run("flowing", func(b *testing.B) { m.phase(b, "flowing") })
}

const (
	memShards     = 100
	memLimitMB    = 64
	memRate       = 2000 // user records per second in the flowing phase
	memAggregate  = 100  // most user records per KPL aggregate
	memDataBytes  = 100  // bytes of data per user record
	memSampleTick = 100 * time.Millisecond
	memHeapDirEnv = "SHARDLINE_BENCH_HEAP_DIR"
	memRecordsEnv = "SHARDLINE_BENCH_RECORDS"
)

// memBench is what the phases share: the stand-ins and the child binary.
type memBench struct {
	kinesisEP, dynamoEP string
	clients             *awsconf.Clients
	bin                 string // the poller binary
	heapDir             string // set: bin is the test binary, writing heap profiles
	total               int    // user records per phase
}

func memRecords(b *testing.B) int {
	s := os.Getenv(memRecordsEnv)
	if s == "" {
		return 100000
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < memShards {
		b.Fatalf("%s=%q: allowed an integer of at least %d", memRecordsEnv, s, memShards)
	}
	return n
}

// memBuildPoller builds the poller as `make build` does, into a temporary
// directory.
func memBuildPoller(b *testing.B) string {
	b.Helper()
	out := filepath.Join(b.TempDir(), "poller")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", out, ".")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build the poller: %v\n%s", err, msg)
	}
	size := int64(0)
	if fi, err := os.Stat(out); err == nil {
		size = fi.Size()
	}
	b.Logf("built %s (%.1f MB) in %s", out, memMB(size/1024), time.Since(start).Round(time.Millisecond))
	return out
}

func (m *memBench) phase(b *testing.B, name string) {
	ctx := context.Background()
	streamName := standintest.NewStream(b, m.kinesisEP, memShards)
	app := standintest.UniqueName(b)
	worker := "mem-" + name
	prod, err := produce.New(ctx, m.clients.Kinesis, streamName, memAggregate)
	if err != nil {
		b.Fatal(err)
	}
	if name == "backlog" {
		start := time.Now()
		for sent := 0; sent < m.total; {
			n := min(memShards*memAggregate, m.total-sent)
			if err := prod.Put(ctx, memUserRecords(sent, n)); err != nil {
				b.Fatal(err)
			}
			sent += n
		}
		b.Logf("backlog: put %d user records in %d Kinesis records in %s", prod.UserRecords, prod.KinesisRecords, time.Since(start).Round(time.Millisecond))
	}

	var extra []string
	if m.heapDir != "" {
		dir := filepath.Join(m.heapDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		// A heap sample every 4 KB allocated, not every 512 KB: a live
		// heap of ~10 MB would otherwise show as a score of samples.
		extra = append(extra, childEnv+"=1", memHeapDirEnv+"="+dir, "GODEBUG=gctrace=1,memprofilerate=4096")
	}
	c := m.start(b, app, streamName, extra, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON",
		"-failover-time", "10s", "-worker-id", worker)
	tbl := lease.NewTable(m.clients.DynamoDB, app)

	if name == "flowing" {
		testwait.Until(b, 3*time.Minute, fmt.Sprintf("the poller holding %d leases", memShards), func() bool {
			return c.exited() || memHeld(ctx, tbl, worker) == memShards
		})
		if c.exited() {
			b.Fatalf("poller exited: %s", tail(c.errOut.String(), 4000))
		}
		b.Logf("flowing: %d leases held %s after the start; RSS %.1f MB", memShards, time.Since(c.started).Round(time.Millisecond), memMB(c.sampler.last().rssKB))
		pctx, cancel := context.WithCancel(ctx)
		defer cancel() // a producer left behind by a failure stops
		prodErr := make(chan error, 1)
		go func() { prodErr <- memProduceAtRate(pctx, prod, m.total, memRate) }()
		// The reading is waited for below; the producer's error, first.
		select {
		case err := <-prodErr:
			if err != nil {
				b.Fatal(err)
			}
		case <-c.done:
			b.Fatalf("poller exited while records were put: %s", tail(c.errOut.String(), 4000))
		}
		b.Logf("flowing: put %d user records in %d Kinesis records", prod.UserRecords, prod.KinesisRecords)
	}

	testwait.Until(b, 10*time.Minute, fmt.Sprintf("%d records printed", m.total), func() bool {
		return c.exited() || c.lines.n.Load() >= int64(m.total)
	})
	if c.exited() {
		b.Fatalf("poller exited after %d records: %s", c.lines.n.Load(), tail(c.errOut.String(), 4000))
	}
	lastLine := time.Now()
	held := memHeld(ctx, tbl, worker)
	end, err := memProcStatus(c.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	end.sockets = memSockets(c.cmd.Process.Pid)
	if m.heapDir != "" {
		c.heapProfile(b, filepath.Join(m.heapDir, name))
	}
	code := c.stop(b)
	samples := c.sampler.stop()
	// The peak: the highest VmHWM read, the drain after SIGTERM included
	// (to the last sample, at most memSampleTick before the exit). Not the
	// rusage of the exited child: its ru_maxrss also counts the memory of
	// this process, which the child shared between its vfork and exec.
	peakKB := end.hwmKB
	for _, s := range samples {
		peakKB = max(peakKB, s.hwmKB)
	}

	first := time.Unix(0, c.lines.first.Load())
	var window []int64
	for _, s := range samples {
		if !s.at.Before(first) && !s.at.After(lastLine) {
			window = append(window, s.rssKB)
		}
	}
	steadyKB := memMedian(window)
	// Sockets: the most open at once, and how many different ones were
	// seen (a lower bound on the connections opened: one that opened and
	// closed between two samples is missed).
	seen := map[string]bool{}
	mostOpen := 0
	for _, s := range samples {
		mostOpen = max(mostOpen, len(s.sockets))
		for _, k := range s.sockets {
			seen[k] = true
		}
	}
	heapPeak, heapLive, gcs := memGCTrace(c.errOut.String())
	readFor := lastLine.Sub(first)

	b.Logf("%s: %d records printed, %d leases held; when all were read: VmHWM %.1f MB, VmRSS %.1f MB (anon %.1f, file %.1f); peak to the exit %.1f MB; median VmRSS while reading %.1f MB over %d samples; Go heap at most %.1f MB, live at most %.1f MB over %d GCs; read in %s; exit %d",
		name, c.lines.n.Load(), held, memMB(end.hwmKB), memMB(end.rssKB), memMB(end.anonKB), memMB(end.fileKB), memMB(peakKB),
		memMB(steadyKB), len(window), heapPeak, heapLive, gcs, readFor.Round(time.Millisecond), code)
	step := max(time.Second, (lastLine.Sub(c.started) / 10).Truncate(time.Second))
	b.Logf("%s: VmRSS since the start: %s", name, memTimeline(samples, c.started, step))
	b.Logf("%s: sockets: at most %d open at once, %d different ones seen, %d open when every record was read", name, mostOpen, len(seen), len(end.sockets))

	b.ReportMetric(0, "ns/op")
	b.ReportMetric(memMB(peakKB), "peak-RSS-MB")
	b.ReportMetric(memMB(steadyKB), "steady-RSS-MB")
	b.ReportMetric(float64(c.lines.n.Load()), "records")
	b.ReportMetric(float64(held), "shards")
	b.ReportMetric(heapPeak, "heap-peak-MB")
	b.ReportMetric(heapLive, "heap-live-MB")
	b.ReportMetric(readFor.Seconds(), "read-s")

	if code != 0 {
		b.Errorf("poller exit code %d after SIGTERM, want 0; stderr:\n%s", code, tail(c.errOut.String(), 4000))
	}
	if held != memShards {
		b.Errorf("the poller held %d leases when every record was read, want %d", held, memShards)
	}
	if memMB(peakKB) >= memLimitMB {
		b.Errorf("peak RSS %.1f MB with %d shards (%s), want under %d MB", memMB(peakKB), memShards, name, memLimitMB)
	}
}

// memUserRecords are n user records numbered from first, spread over many
// partition keys, each with memDataBytes of data.
func memUserRecords(first, n int) []kpl.UserRecord {
	recs := make([]kpl.UserRecord, n)
	for i := range recs {
		seq := first + i
		key := fmt.Sprintf("key-%d", seq%10007)
		data := fmt.Appendf(make([]byte, 0, memDataBytes), "%s:%d ", key, seq)
		for len(data) < memDataBytes {
			data = append(data, byte('a'+len(data)%26))
		}
		recs[i] = kpl.UserRecord{PartitionKey: key, Data: data}
	}
	return recs
}

// memProduceAtRate puts total user records, rate a second, once a second.
func memProduceAtRate(ctx context.Context, p *produce.Producer, total, rate int) error {
	start := time.Now()
	for sent, tick := 0, 1; sent < total; tick++ {
		n := min(rate, total-sent)
		if err := p.Put(ctx, memUserRecords(sent, n)); err != nil {
			return err
		}
		sent += n
		time.Sleep(time.Until(start.Add(time.Duration(tick) * time.Second))) // pacing, not synchronisation
	}
	return nil
}

// memHeld is how many leases worker holds; -1 if the table cannot be read.
func memHeld(ctx context.Context, tbl *lease.Table, worker string) int {
	ls, err := tbl.List(ctx)
	if err != nil {
		return -1
	}
	n := 0
	for _, l := range ls {
		if l.Owner == worker {
			n++
		}
	}
	return n
}

// memChild is a poller process whose stdout is counted, not kept.
type memChild struct {
	cmd     *exec.Cmd
	lines   *memLineCounter
	errOut  *testwait.Buffer
	done    chan struct{}
	started time.Time
	sampler *memSampler
}

func (m *memBench) start(b *testing.B, app, streamName string, extra []string, args ...string) *memChild {
	b.Helper()
	cmd := exec.Command(m.bin, args...)
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_DISABLED=true",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"SHARDLINE_KINESIS_ENDPOINT="+m.kinesisEP, "SHARDLINE_DYNAMODB_ENDPOINT="+m.dynamoEP,
		"SHARDLINE_APP_NAME="+app, "SHARDLINE_STREAM_NAME="+streamName, "GODEBUG=gctrace=1")
	cmd.Env = append(cmd.Env, extra...)
	c := &memChild{cmd: cmd, lines: &memLineCounter{}, errOut: &testwait.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.lines, c.errOut
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c.started = time.Now()
	go func() { _ = cmd.Wait(); close(c.done) }()
	c.sampler = startMemSampler(cmd.Process.Pid)
	b.Cleanup(func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL) // by PID; a no-op once reaped
		<-c.done
		c.sampler.stop()
	})
	return c
}

func (c *memChild) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop drains the poller with SIGTERM and returns its exit code.
func (c *memChild) stop(b *testing.B) int {
	b.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("poller did not exit within 2m of SIGTERM; stderr:\n%s", tail(c.errOut.String(), 4000))
	}
	return c.cmd.ProcessState.ExitCode()
}

// heapProfile asks the child (the test binary) for its end-of-phase heap
// profile and waits for it.
func (c *memChild) heapProfile(b *testing.B, dir string) {
	b.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "metrics.json")
	testwait.Until(b, time.Minute, file, func() bool { _, err := os.Stat(file); return err == nil })
	js, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("heap profiles in %s; runtime/metrics: %s", dir, js)
}

// memLineCounter counts the lines written to it and keeps none.
type memLineCounter struct {
	n     atomic.Int64
	first atomic.Int64 // UnixNano of the first write
}

func (w *memLineCounter) Write(p []byte) (int, error) {
	w.first.CompareAndSwap(0, time.Now().UnixNano())
	w.n.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
}

// memSample is one reading of /proc/<pid>/status, and the process's
// sockets (inodes) from /proc/<pid>/fd.
type memSample struct {
	at                           time.Time
	rssKB, hwmKB, anonKB, fileKB int64
	sockets                      []string
}

// memSockets lists the socket inodes pid holds open.
func memSockets(pid int) []string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			out = append(out, l)
		}
	}
	return out
}

func memProcStatus(pid int) (memSample, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memSample{}, err
	}
	s := memSample{at: time.Now()}
	fields := map[string]*int64{"VmRSS:": &s.rssKB, "VmHWM:": &s.hwmKB, "RssAnon:": &s.anonKB, "RssFile:": &s.fileKB}
	for line := range strings.SplitSeq(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && fields[f[0]] != nil {
			*fields[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if s.rssKB == 0 {
		return memSample{}, fmt.Errorf("pid %d: no VmRSS (exited)", pid)
	}
	return s, nil
}

// memSampler reads a process's status every memSampleTick until it is
// stopped or the process is gone.
type memSampler struct {
	mu      sync.Mutex
	samples []memSample
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

func startMemSampler(pid int) *memSampler {
	s := &memSampler{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(memSampleTick)
		defer t.Stop()
		for {
			if r, err := memProcStatus(pid); err == nil {
				r.sockets = memSockets(pid)
				s.mu.Lock()
				s.samples = append(s.samples, r)
				s.mu.Unlock()
			}
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *memSampler) last() memSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return memSample{}
	}
	return s.samples[len(s.samples)-1]
}

func (s *memSampler) stop() []memSample {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

func memMB(kB int64) float64 { return float64(kB) / 1024 }

func memMedian(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// memTimeline is VmRSS every step since start, as "t=5s 21.3MB ...".
func memTimeline(samples []memSample, start time.Time, step time.Duration) string {
	var sb strings.Builder
	next := time.Duration(0)
	for _, s := range samples {
		if at := s.at.Sub(start); at >= next {
			fmt.Fprintf(&sb, "t=%s %.1fMB ", at.Round(time.Second), memMB(s.rssKB))
			next = at.Truncate(step) + step
		}
	}
	return strings.TrimSpace(sb.String())
}

// gctrace: "gc 7 @1.234s 1%: ... ms cpu, 4->5->2 MB, 5 MB goal, ...".
var memGCLine = regexp.MustCompile(`(?m)^gc \d+ @.* (\d+)->(\d+)->(\d+) MB, (\d+) MB goal`)

// memGCTrace returns the largest heap at a GC (start or end of the cycle),
// the largest live heap after one (MB) and the number of GCs.
func memGCTrace(stderr string) (peak, live float64, gcs int) {
	for _, m := range memGCLine.FindAllStringSubmatch(stderr, -1) {
		gcs++
		for i, s := range m[1:4] {
			v, _ := strconv.ParseFloat(s, 64)
			peak = max(peak, v)
			if i == 2 {
				live = max(live, v)
			}
		}
	}
	return peak, live, gcs
}

// In the child (SHARDLINE_TEST_BE_POLLER=1 with SHARDLINE_BENCH_HEAP_DIR),
// the poller also writes profiles: heap-peak.pb.gz each time the live heap
// after a GC passes the last one written by a twentieth,
// goroutines-peak.txt each time the goroutines pass the last count written
// by 50, and, on SIGUSR1, heap-end.pb.gz, goroutines-end.txt and then
// metrics.json. It runs before TestMain turns the test binary into the
// poller.
func init() {
	dir := os.Getenv(memHeapDirEnv)
	if os.Getenv(childEnv) != "1" || dir == "" {
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	go memProfileLoop(dir, sigs)
}

func memProfileLoop(dir string, sigs <-chan os.Signal) {
	names := []string{"/memory/classes/heap/objects:bytes", "/memory/classes/total:bytes", "/sched/goroutines:goroutines", "/gc/heap/live:bytes"}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	peak := make([]uint64, len(names))
	var liveWritten, goroutinesWritten uint64
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			metrics.Read(samples)
			for i, s := range samples {
				if s.Value.Kind() == metrics.KindUint64 {
					peak[i] = max(peak[i], s.Value.Uint64())
				}
			}
			if live := samples[3].Value.Uint64(); live > liveWritten+liveWritten/20 {
				memWriteAtomic(filepath.Join(dir, "heap-peak.pb.gz"), memHeapProfile)
				liveWritten = live
			}
			if g := samples[2].Value.Uint64(); g > goroutinesWritten+50 {
				memWriteAtomic(filepath.Join(dir, "goroutines-peak.txt"), memGoroutines)
				goroutinesWritten = g
			}
		case <-sigs:
			memWriteAtomic(filepath.Join(dir, "heap-end.pb.gz"), memHeapProfile)
			memWriteAtomic(filepath.Join(dir, "goroutines-end.txt"), memGoroutines)
			metrics.Read(samples)
			out := map[string]map[string]uint64{"now": {}, "peak": {}}
			for i, s := range samples {
				if s.Value.Kind() == metrics.KindUint64 {
					out["now"][names[i]] = s.Value.Uint64()
					out["peak"][names[i]] = max(peak[i], s.Value.Uint64())
				}
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			out["memstats"] = map[string]uint64{"HeapInuse": ms.HeapInuse, "HeapIdle": ms.HeapIdle, "HeapReleased": ms.HeapReleased,
				"StackInuse": ms.StackInuse, "Sys": ms.Sys, "NumGC": uint64(ms.NumGC)}
			memWriteAtomic(filepath.Join(dir, "metrics.json"), func(f *os.File) error { return json.NewEncoder(f).Encode(out) })
		}
	}
}

func memHeapProfile(f *os.File) error { return pprof.Lookup("heap").WriteTo(f, 0) }

func memGoroutines(f *os.File) error { return pprof.Lookup("goroutine").WriteTo(f, 1) }

// memWriteAtomic writes a file through a temporary one and a rename, so a
// reader never sees it half written. Errors go to stderr: the child has no
// one else to tell.
func memWriteAtomic(path string, write func(*os.File) error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err == nil {
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "memory profile:", err)
	}
}
