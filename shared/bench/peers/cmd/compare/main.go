// Command compare runs the peer comparison of issue #11: it starts the
// stand-ins (kinesis-mock, DynamoDB Local), preloads streams with the same
// user records (KPL-aggregated and plain, and a 100-shard KPL stream),
// copies them into an in-process fake Kinesis (internal/fakekinesis,
// served on 127.0.0.1 by this process, so that its CPU is not the
// consumer's), builds cmd/peer and runs each library's consumer as a child
// process, one at a time, -runs times:
//
//   - backlog: TRIM_HORIZON to the end of each stream, on the fake and on
//     kinesis-mock (records/s, CPU per user record first→last, from the
//     first GetRecords (fake only) and whole process, peak RSS, time to
//     first record);
//   - 100 shards: Shardline holding a 100-shard stream with a backlog;
//   - first record once the lease table exists: Shardline;
//   - latency: a new 4-shard stream on the fake (-latency-source; or on a
//     kinesis-mock of their own), the consumer started first, then 1,000
//     user records/s put for -latency-duration, plain and KPL-aggregated,
//     each user record carrying its producer timestamps (made, and handed
//     to PutRecords); with the fake, a
//     put-rate probe first measures what a fresh kinesis-mock takes;
//   - enhanced fan-out (issue #18, efo.go): the fake also served over TLS
//     with HTTP/2; Shardline and vmware-go-kcl-v2 reading with
//     SubscribeToShard beside polling Shardline (backlog and latency), and
//     Shardline's fan-out on 100 shards (backlog, steady flow);
//   - with -profile DIR: CPU and heap profiles of Shardline on the fake.
//
// It prints Markdown on stdout (progress on stderr) and writes it into
// -write (default the repository's BENCHMARKS.md, between
// <!-- peers:begin --> and <!-- peers:end -->, the fan-out section between
// <!-- efo:begin --> and <!-- efo:end -->). -efo runs the fan-out rows
// alone.
//
//	cd shared/bench/peers && go run ./cmd/compare [-runs 2] [-quick] [-efo] [-profile DIR] [-write PATH]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/bench/peers/internal/fakekinesis"
	"github.com/shardline/shardline/shared/bench/peers/internal/schedstat"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// report is cmd/peer's JSON line.
type report struct {
	Lib             string         `json:"lib"`
	Records         int64          `json:"records"`
	FirstSeconds    float64        `json:"first_seconds"`
	LastSeconds     float64        `json:"last_seconds"`
	CPUSeconds      float64        `json:"cpu_seconds"`
	CPUFirstSeconds float64        `json:"cpu_first_seconds"`
	CPUSchedSeconds float64        `json:"cpu_sched_seconds"` // schedstat at the N-th record; 0: none
	FirstBatch      int64          `json:"first_batch"`
	MaxRSSKB        int64          `json:"max_rss_kb"`
	KinesisConns    int64          `json:"kinesis_conns"`    // TCP connections the Kinesis client dialled (harlow, Shardline)
	DiscardWarnings int64          `json:"discard_warnings"` // the SDK's "failed to discard remaining HTTP response body"
	Latency         *latencyReport `json:"latency"`
	// Filled in by compare:
	WallSeconds float64 // the child's whole life
	PutRate     float64 // latency runs: user records put per second
	MockCPU     float64 // kinesis-mock's CPU seconds during the run
	// FirstReadCPU is the child's CPU seconds (schedstat, as
	// CPUSchedSeconds) when the fake got its first GetRecords; valid if
	// FirstRead (fake backlog runs).
	FirstReadCPU float64
	FirstRead    bool
}

// cpuFirstRead is CPU s per 1M user records from the first GetRecords to
// the N-th record, and whether the run has it.
func (r report) cpuFirstRead() (float64, bool) {
	if !r.FirstRead || r.CPUSchedSeconds <= 0 || r.Records <= 0 {
		return 0, false
	}
	return (r.CPUSchedSeconds - r.FirstReadCPU) / float64(r.Records) * 1e6, true
}

// latencyReport is cmd/peer's latency: from each record's creation
// stamp, and from its put stamp (Put*; zero from a peer without them).
type latencyReport struct {
	Samples    int64   `json:"samples"`
	P50MS      float64 `json:"p50_ms"`
	P90MS      float64 `json:"p90_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	PutSamples int64   `json:"put_samples"`
	PutBad     int64   `json:"put_bad"`
	PutP50MS   float64 `json:"put_p50_ms"`
	PutP90MS   float64 `json:"put_p90_ms"`
	PutP99MS   float64 `json:"put_p99_ms"`
	PutMaxMS   float64 `json:"put_max_ms"`
}

type dataset struct {
	key       string // kpl, plain, shards100
	name      string
	stream    string
	records   int
	shards    int
	aggregate int // user records per Kinesis record; 0: plain
}

// result is one row: a library on a dataset from a source.
type result struct {
	section string // backlog, shards100, firstrecord, latency
	source  string // fake, kinesis-mock
	ds      dataset
	lib     string
	runs    []report
	err     error
}

type options struct {
	runs              int
	libs              []string
	timeout           time.Duration
	shardSync         time.Duration
	latencyDuration   time.Duration
	rate, warmup      int
	kplFlush, plainTk time.Duration
	profileDir        string
	latencySource     string
	efoLibs           []string      // enhanced fan-out libraries of the EFO rows; none: no EFO rows
	efoSteady         time.Duration // the 100-shard steady-flow run of the EFO rows (0: skipped)
}

const (
	srcFake    = "fake"
	srcFakeTLS = "fake-tls" // the fake's TLS endpoint (HTTP/2), where enhanced fan-out reads
	srcMock    = "kinesis-mock"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nKPL := fs.Int("kpl", 400000, "user records in the KPL-aggregated backlog stream (0: skip)")
	agg := fs.Int("aggregate", 100, "user records per KPL aggregate")
	nPlain := fs.Int("plain", 30000, "records in the plain backlog stream (0: skip)")
	nFakePlain := fs.Int("fake-plain", 300000, "records in the plain backlog stream of the fake rows, put straight into the fake (0: the kinesis-mock stream's copy)")
	nFakeKPL := fs.Int("fake-kpl", 0, "user records in the KPL backlog stream of the fake rows, put straight into the fake (0: the kinesis-mock stream's copy; more records, for a profile, without preloading kinesis-mock longer)")
	shards := fs.Int("shards", 4, "shards of the backlog and latency streams")
	n100 := fs.Int("shards100", 100000, "KPL user records in the 100-shard stream Shardline holds (0: skip)")
	runs := fs.Int("runs", 2, "runs of everything")
	libs := fs.String("libs", "harlow,vmware,shardline,shardline-json", "libraries, comma-separated (shardline-json: Shardline reading GetRecords in JSON, AWS_CBOR_DISABLE=true)")
	peer := fs.String("peer", "", "a built cmd/peer binary (default: go build it)")
	timeout := fs.Duration("timeout", 5*time.Minute, "per run")
	shardSync := fs.Duration("vmware-shard-sync", time.Second, "vmware's ShardSyncIntervalMillis (0: its default, 60 s; it takes one lease per sync)")
	latDur := fs.Duration("latency-duration", 20*time.Second, "measured part of each latency run (0: skip the latency runs)")
	latSrc := fs.String("latency-source", srcFake, "where the latency runs put and every consumer reads: fake (the in-process fake, a fresh empty stream per run) or kinesis-mock (a kinesis-mock of their own; it could not take 1,000 puts/s on a 2-core host)")
	probeDur := fs.Duration("mock-put-probe", 30*time.Second, "with -latency-source fake: put -rate plain records/s into a fresh kinesis-mock for this long, no consumer, and report the rate it took (0: skip)")
	rate := fs.Int("rate", 1000, "user records per second in the latency runs")
	warmup := fs.Int("warmup", 2000, "latency: user records the consumer receives before samples count (records produced later count)")
	profileDir := fs.String("profile", "", "write Shardline's CPU and heap profiles of the fake KPL and plain runs into this directory")
	write := fs.String("write", "", "write the Markdown into this file between <!-- peers:begin --> and <!-- peers:end --> (default: the repository's BENCHMARKS.md; \"-\": nowhere; with -quick: nowhere unless given)")
	preloadWorkers := fs.Int("preload-workers", 1, "producers putting each backlog stream into kinesis-mock at once, each one PutRecords call at a time (more did not help: kinesis-mock is busy on one core)")
	quick := fs.Bool("quick", false, "smoke run: small streams, one run, 5 s latency runs, writes nothing unless -write is given")
	efoOnly := fs.Bool("efo", false, "only the enhanced fan-out rows (issue #18): no kinesis-mock, the streams put straight into the fake; writes between <!-- efo:begin --> and <!-- efo:end --> only")
	efoLibs := fs.String("efo-libs", "shardline-efo,vmware-efo", "enhanced fan-out libraries of the EFO rows, comma-separated (shardline-efo-sdk: Shardline with the SDK's subscription reader; \"\": no EFO rows)")
	efoSteady := fs.Duration("efo-steady", 30*time.Second, "EFO rows: the measured part of the run of shardline-efo on a new 100-shard stream at -rate user records/s, for its peak RSS (0: skipped)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		for name, v := range map[string]string{"kpl": "20000", "plain": "5000", "fake-plain": "20000", "shards100": "10000", "runs": "1", "latency-duration": "5s", "warmup": "500", "mock-put-probe": "3s", "efo-steady": "5s"} {
			if !set[name] {
				fs.Set(name, v)
			}
		}
	}
	if *latSrc != srcFake && *latSrc != srcMock {
		return fmt.Errorf("-latency-source %q: want %s or %s", *latSrc, srcFake, srcMock)
	}
	dest := *write
	switch {
	case dest == "-" || (*quick && !set["write"]):
		dest = ""
	case dest == "":
		root, err := repoRoot()
		if err != nil {
			return fmt.Errorf("-write: %w", err)
		}
		dest = filepath.Join(root, "BENCHMARKS.md")
	}
	opt := options{
		runs: *runs, libs: strings.Split(*libs, ","), timeout: *timeout, shardSync: *shardSync,
		latencyDuration: *latDur, rate: *rate, warmup: *warmup,
		kplFlush: 50 * time.Millisecond, plainTk: 10 * time.Millisecond, profileDir: *profileDir,
		latencySource: *latSrc, efoSteady: *efoSteady,
	}
	if *efoLibs != "" {
		opt.efoLibs = strings.Split(*efoLibs, ",")
	}
	if *efoOnly {
		if len(opt.efoLibs) == 0 {
			return errors.New("-efo with -efo-libs \"\": nothing to run")
		}
		if *latSrc != srcFake {
			return errors.New("-efo: the latency runs read the fake")
		}
		// Polling Shardline beside the fan-out libraries.
		opt.libs = []string{"shardline"}
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	began := time.Now()

	tmp, err := os.MkdirTemp("", "shardline-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *peer == "" {
		*peer = filepath.Join(tmp, "peer")
		logf("building cmd/peer")
		b := exec.CommandContext(ctx, "go", "build", "-o", *peer, "github.com/shardline/shardline/shared/bench/peers/cmd/peer")
		b.Stdout, b.Stderr = stderr, stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build cmd/peer: %w", err)
		}
	}
	if opt.profileDir != "" {
		if err := os.MkdirAll(opt.profileDir, 0o755); err != nil {
			return err
		}
	}

	var sets []dataset
	if *nKPL > 0 {
		sets = append(sets, dataset{key: "kpl", name: fmt.Sprintf("KPL (%d per aggregate)", *agg), stream: "peers-kpl", records: *nKPL, shards: *shards, aggregate: *agg})
	}
	if *nPlain > 0 {
		sets = append(sets, dataset{key: "plain", name: "plain", stream: "peers-plain", records: *nPlain, shards: *shards})
	}
	var ds100 *dataset
	if *n100 > 0 {
		ds100 = &dataset{key: "shards100", name: fmt.Sprintf("KPL (%d per aggregate), 100 shards", *agg), stream: "peers-100", records: *n100, shards: 100, aggregate: *agg}
	}
	var spec []string
	for _, d := range append(sets, deref(ds100)...) {
		spec = append(spec, fmt.Sprintf("%s:%d", d.stream, d.shards))
	}
	logf("starting stand-ins")
	var ks *standin.Server // kinesis-mock; nil with -efo
	mock := struct {
		endpoint string
		pid      int
	}{}
	if !*efoOnly {
		if ks, err = standin.StartKinesis(ctx, standin.KinesisOptions{InitializeStreams: strings.Join(spec, ",")}); err != nil {
			return fmt.Errorf("kinesis-mock: %w", err)
		}
		defer ks.Stop()
		mock.endpoint, mock.pid = ks.Endpoint, ks.PID
		logf("kinesis-mock %s (pid %d)", ks.Endpoint, ks.PID)
	}
	dsrv, err := standin.StartDynamoDB(ctx, standin.DynamoDBOptions{})
	if err != nil {
		return fmt.Errorf("dynamodb local: %w", err)
	}
	defer dsrv.Stop()
	logf("dynamodb %s (pid %d)", dsrv.Endpoint, dsrv.PID)
	// With -latency-source kinesis-mock the latency runs put into a
	// kinesis-mock of their own: the one holding the backlog streams is
	// slow to take puts (a 50,000-record plain preload ran at ~400
	// records/s, a 1,000/s producer fell to ~280/s).
	var lks *standin.Server
	if opt.latencyDuration > 0 && opt.latencySource == srcMock {
		if lks, err = standin.StartKinesis(ctx, standin.KinesisOptions{}); err != nil {
			return fmt.Errorf("kinesis-mock for the latency runs: %w", err)
		}
		defer lks.Stop()
		logf("kinesis-mock for the latency runs %s (pid %d)", lks.Endpoint, lks.PID)
	}

	fake := fakekinesis.New()
	var unknown atomic.Int64
	fake.Logf = func(format string, a ...any) {
		if strings.Contains(format, "UNKNOWN") {
			unknown.Add(1)
		}
		logf(format, a...)
	}
	preload := map[string]float64{}
	if ks != nil {
		kc := standin.KinesisClient(ks.Endpoint)
		for _, d := range append(sets, deref(ds100)...) {
			t0 := time.Now()
			if err := preloadStream(ctx, kc, d, *preloadWorkers); err != nil {
				return err
			}
			putSecs := time.Since(t0).Seconds()
			st, err := fakekinesis.Load(ctx, kc, d.stream)
			if err != nil {
				return fmt.Errorf("copy %s into the fake: %w", d.stream, err)
			}
			fake.Add(st)
			preload[d.stream] = time.Since(t0).Seconds()
			logf("preloaded %s: %d user records in %d Kinesis records over %d shards, %.1fs (puts %.1fs, %.0f Kinesis records/s; then copied into the fake)", d.stream, d.records, st.Records(), len(st.Shards), time.Since(t0).Seconds(), putSecs, float64(st.Records())/putSecs)
		}
	}
	fakeEP, err := fake.Start(fakekinesis.ServeOptions{})
	if err != nil {
		return err
	}
	defer fakeEP.Close()
	fakeURL := fakeEP.URL
	logf("fake Kinesis %s", fakeURL)
	// The fake's TLS endpoint (HTTP/2 by ALPN, as Kinesis serves
	// SubscribeToShard), for the enhanced fan-out rows; the children
	// trust its certificate through AWS_CA_BUNDLE.
	var fakeTLS *fakekinesis.Endpoint
	if len(opt.efoLibs) > 0 {
		if fakeTLS, err = fake.Start(fakekinesis.ServeOptions{TLS: true}); err != nil {
			return err
		}
		defer fakeTLS.Close()
		logf("fake Kinesis over TLS %s (CA %s)", fakeTLS.URL, fakeTLS.CAFile)
	}
	// The fake rows' plain stream: larger than kinesis-mock can take in
	// time (it puts ~800 records/s here), put straight into the fake, so
	// that CPU per record is measured over more than a few ms. With -efo
	// every stream is put straight into the fake.
	fakeSets := slices.Clone(sets)
	for i, d := range fakeSets {
		n := map[string]int{"plain": *nFakePlain, "kpl": *nFakeKPL}[d.key]
		if n <= 0 && ks == nil {
			n = d.records
		}
		if n <= 0 {
			continue
		}
		d.stream, d.records = "peers-"+d.key+"-fake", n
		if err := preloadFake(ctx, fake, fakeURL, d, preload, logf); err != nil {
			return err
		}
		fakeSets[i] = d
	}
	if ds100 != nil && ks == nil {
		if err := preloadFake(ctx, fake, fakeURL, *ds100, preload, logf); err != nil {
			return err
		}
	}

	// Where the latency runs put and read.
	var lt latencyTarget
	var probe *putProbe
	if opt.latencyDuration > 0 {
		switch opt.latencySource {
		case srcFake:
			lt = latencyTarget{source: srcFake, endpoint: fakeURL, client: standin.KinesisClient(fakeURL),
				create: func(_ context.Context, name string, shards int) error { return fake.AddEmptyStream(name, shards) },
				remove: fake.Remove}
			if fakeTLS != nil {
				lt.tlsEndpoint = fakeTLS.URL
			}
			if *probeDur > 0 && !*efoOnly {
				pr, err := probeMockPuts(ctx, *probeDur, *shards, opt, logf)
				if err != nil {
					return fmt.Errorf("kinesis-mock put probe: %w", err)
				}
				probe = &pr
			}
		case srcMock:
			lt = latencyTarget{source: srcMock, endpoint: lks.Endpoint, client: standin.KinesisClient(lks.Endpoint),
				create: func(ctx context.Context, name string, shards int) error {
					return standin.EnsureStreams(ctx, lks.Endpoint, fmt.Sprintf("%s:%d", name, shards))
				}}
		}
	}

	env := append(os.Environ(), standin.Env(mock.endpoint, dsrv.Endpoint)...)
	env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	endpoints := map[string]string{srcFake: fakeURL, srcMock: mock.endpoint}
	if fakeTLS != nil {
		// The last AWS_CA_BUNDLE wins (os/exec keeps the last of a key):
		// the fake's certificate, not the host's bundle.
		env = append(env, "AWS_CA_BUNDLE="+fakeTLS.CAFile)
		endpoints[srcFakeTLS] = fakeTLS.URL
	}
	r := &runner{bin: *peer, env: env, ddb: dsrv.Endpoint, opt: opt, mockPID: mock.pid, logf: logf, fake: fake,
		endpoints: endpoints}

	// One row per (section, source, dataset, lib); runs appended round by
	// round, so run 2 of everything comes after run 1 of everything.
	var rows []*result
	row := func(section, source string, d dataset, lib string) *result {
		for _, x := range rows {
			if x.section == section && x.source == source && x.ds.key == d.key && x.lib == lib {
				return x
			}
		}
		x := &result{section: section, source: source, ds: d, lib: lib}
		rows = append(rows, x)
		return x
	}
	do := func(x *result, f func() (report, error)) {
		if x.err != nil {
			return // failed before: do not repeat
		}
		rep, err := f()
		if err != nil {
			logf("%s %s %s %s: %v", x.section, x.source, x.ds.stream, x.lib, err)
			x.err = err
			return
		}
		x.runs = append(x.runs, rep)
	}
	for round := 1; round <= opt.runs; round++ {
		logf("round %d of %d", round, opt.runs)
		for _, src := range []string{srcFake, srcMock} {
			if *efoOnly {
				break
			}
			srcSets := sets
			if src == srcFake {
				srcSets = fakeSets
			}
			for _, d := range srcSets {
				for _, lib := range opt.libs {
					x := row("backlog", src, d, lib)
					do(x, func() (report, error) { return r.backlog(ctx, src, d, lib, "", nil) })
				}
			}
			if ds100 != nil && contains(opt.libs, "shardline") {
				x := row("shards100", src, *ds100, "shardline")
				do(x, func() (report, error) { return r.backlog(ctx, src, *ds100, "shardline", "", nil) })
			}
			if len(srcSets) > 0 && contains(opt.libs, "shardline") {
				d := srcSets[len(srcSets)-1]
				x := row("firstrecord", src, d, "shardline")
				do(x, func() (report, error) { return r.firstRecord(ctx, src, d, round) })
			}
		}
		if len(opt.efoLibs) > 0 {
			// Enhanced fan-out (issue #18): the fake's streams read over
			// TLS with HTTP/2, beside polling Shardline over both
			// endpoints; Shardline on 100 shards.
			for _, d := range fakeSets {
				for _, rl := range efoBacklogRows(opt.efoLibs) {
					x := row("efo-backlog", rl.source, d, rl.lib)
					do(x, func() (report, error) { return r.backlog(ctx, rl.source, d, rl.lib, "", nil) })
				}
			}
			for _, lib := range opt.efoLibs {
				if ds100 != nil && isShardline(lib) {
					x := row("efo-shards100", srcFakeTLS, *ds100, lib)
					do(x, func() (report, error) { return r.backlog(ctx, srcFakeTLS, *ds100, lib, "", nil) })
				}
			}
			if opt.efoSteady > 0 && opt.latencySource == srcFake && contains(opt.efoLibs, "shardline-efo") {
				v := dataset{key: "steady100", name: "plain, 100 shards", shards: 100}
				x := row("efo-steady100", srcFakeTLS, v, "shardline-efo")
				do(x, func() (report, error) { return r.latency(ctx, lt, v, "shardline-efo", round, opt.efoSteady) })
			}
		}
		if opt.latencyDuration > 0 {
			libs := opt.libs
			if opt.latencySource == srcFake {
				libs = append(slices.Clone(libs), opt.efoLibs...)
			}
			for _, v := range []dataset{
				{key: "plain", name: "plain", shards: *shards},
				{key: "kpl", name: fmt.Sprintf("KPL (≤%d per aggregate, flushed every %v)", *agg, opt.kplFlush), shards: *shards, aggregate: *agg},
			} {
				for _, lib := range libs {
					src := lt.source
					if isEFO(lib) {
						src = srcFakeTLS
					}
					x := row("latency", src, v, lib)
					do(x, func() (report, error) { return r.latency(ctx, lt, v, lib, round, opt.latencyDuration) })
				}
			}
		}
	}
	profiles := map[string]string{}
	if opt.profileDir != "" {
		var which []libSource
		if !*efoOnly && contains(opt.libs, "shardline") {
			which = append(which, libSource{"shardline", srcFake})
		}
		if len(opt.efoLibs) > 0 {
			which = append(which, libSource{"shardline", srcFakeTLS})
			for _, lib := range opt.efoLibs {
				if isShardline(lib) {
					which = append(which, libSource{lib, srcFakeTLS})
				}
			}
		}
		type target struct {
			libSource
			d dataset
		}
		var targets []target
		for _, d := range fakeSets {
			for _, ls := range which {
				targets = append(targets, target{ls, d})
			}
		}
		if ds100 != nil && contains(opt.efoLibs, "shardline-efo") {
			// Where fan-out's peak RSS goes with 100 shards.
			targets = append(targets, target{libSource{"shardline-efo", srcFakeTLS}, *ds100})
		}
		for _, t := range targets {
			name := fmt.Sprintf("%s on the %s %s stream", libName(t.lib), sourceName(t.source), t.d.key)
			base := filepath.Join(opt.profileDir, fmt.Sprintf("%s-%s-%s", t.lib, t.source, t.d.key))
			_, err := r.backlog(ctx, t.source, t.d, t.lib, "", []string{"-cpuprofile", base + ".cpu.pprof", "-memprofile", base + ".heap.pprof"})
			if err != nil {
				logf("profile %s: %v", name, err)
				continue
			}
			profiles[name] = base
			logf("profiles: %s.cpu.pprof, %s.heap.pprof", base, base)
		}
	}
	if err := ctx.Err(); err != nil {
		return err // interrupted: write nothing
	}
	calls := fake.Calls()
	logf("fake Kinesis calls: %v", calls)

	in := reportInput{
		rows: rows, opt: opt, args: args, began: began, took: time.Since(began), preload: preload,
		fakeCalls: calls, protocols: fake.Protocols(), unknown: unknown.Load(), profiles: profiles, quick: *quick, probe: probe,
	}
	type part struct {
		md         bytes.Buffer
		begin, end string
	}
	var parts []*part
	if !*efoOnly {
		p := &part{begin: beginMarker, end: endMarker}
		writeReport(&p.md, in)
		parts = append(parts, p)
	}
	if len(opt.efoLibs) > 0 {
		p := &part{begin: efoBeginMarker, end: efoEndMarker}
		writeEFOReport(&p.md, in)
		parts = append(parts, p)
	}
	for _, p := range parts {
		stdout.Write(p.md.Bytes())
		if dest != "" {
			if err := writeBetweenMarkers(dest, p.begin, p.end, p.md.Bytes()); err != nil {
				return err
			}
			logf("wrote %s (%s)", dest, p.begin)
		}
	}
	return nil
}

func deref(d *dataset) []dataset {
	if d == nil {
		return nil
	}
	return []dataset{*d}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// repoRoot is the directory of the main module's go.mod above the working
// directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/shardline/shardline\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no github.com/shardline/shardline go.mod above the working directory")
		}
		dir = parent
	}
}

// runner starts peer children.
type runner struct {
	bin       string
	env       []string
	ddb       string
	opt       options
	mockPID   int
	endpoints map[string]string
	logf      func(string, ...any)
	fake      *fakekinesis.Server // for its GetRecords hook
}

// firstRead takes a child's CPU time (internal/schedstat, from outside)
// when the fake gets the run's first GetRecords, in the request's
// goroutine before it is answered.
type firstRead struct {
	pid   atomic.Int64 // 0 until the child has started
	fired atomic.Bool
	mu    sync.Mutex
	cpu   time.Duration
	err   error
}

func (f *firstRead) hook() {
	if f.fired.Load() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired.Swap(true) {
		return
	}
	if pid := f.pid.Load(); pid == 0 {
		f.err = errors.New("GetRecords before the child's pid was known")
	} else {
		f.cpu, f.err = schedstat.PID(int(pid))
	}
}

// result is the child's CPU at the first GetRecords, or why there is none.
func (f *firstRead) result() (time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.fired.Load() {
		return 0, errors.New("no GetRecords seen")
	}
	return f.cpu, f.err
}

// peer runs one child to completion and decodes its report. With
// watchFake, the fake's GetRecords hook takes the child's CPU at its first
// GetRecords (report.FirstReadCPU); only one child runs at a time.
func (r *runner) peer(ctx context.Context, watchFake bool, args ...string) (report, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opt.timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, append(args, "-dynamodb", r.ddb, "-timeout", r.opt.timeout.String(), "-vmware-shard-sync", r.opt.shardSync.String())...)
	cmd.Env = r.env
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	var fr *firstRead
	if watchFake && r.fake != nil {
		fr = &firstRead{}
		r.fake.SetOnRead(fr.hook)
		defer r.fake.SetOnRead(nil)
	}
	mock0 := procCPU(r.mockPID)
	t0 := time.Now()
	err := cmd.Start()
	if err == nil {
		if fr != nil {
			fr.pid.Store(int64(cmd.Process.Pid))
		}
		err = cmd.Wait()
	}
	if err != nil {
		return report{}, fmt.Errorf("%w: %s", err, tail(errb.String(), 600))
	}
	var rep report
	if out.Len() == 0 {
		return rep, nil
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return report{}, fmt.Errorf("decode %q: %w", tail(out.String(), 300), err)
	}
	rep.WallSeconds = time.Since(t0).Seconds()
	rep.MockCPU = procCPU(r.mockPID) - mock0
	if fr != nil {
		if cpu, err := fr.result(); err != nil {
			r.logf("%s: no CPU at the first GetRecords: %v", strings.Join(args, " "), err)
		} else {
			rep.FirstReadCPU, rep.FirstRead = cpu.Seconds(), true
		}
	}
	return rep, nil
}

// backlog reads d from TRIM_HORIZON to the end.
func (r *runner) backlog(ctx context.Context, src string, d dataset, lib, app string, extra []string) (report, error) {
	args := []string{"-lib", lib, "-stream", d.stream, "-n", fmt.Sprint(d.records), "-kinesis", r.endpoints[src]}
	if app != "" {
		args = append(args, "-app", app)
	}
	rep, err := r.peer(ctx, src != srcMock, append(args, extra...)...)
	if err != nil {
		return rep, err
	}
	if rep.Records < int64(d.records) {
		return rep, fmt.Errorf("%d records, fewer than %d", rep.Records, d.records)
	}
	fr := ""
	if rep.FirstRead {
		fr = fmt.Sprintf(", %.2f first read→last", rep.CPUSchedSeconds-rep.FirstReadCPU)
	}
	r.logf("%s on %s (%s): %.2fs to first, %.2fs to last, %.2f CPU s (schedstat %.2f; %.2f first→last%s), %d MB", lib, d.stream, src, rep.FirstSeconds, rep.LastSeconds, rep.CPUSeconds, rep.CPUSchedSeconds, rep.CPUSeconds-rep.CPUFirstSeconds, fr, rep.MaxRSSKB/1024)
	return rep, nil
}

// firstRecord times Shardline to its first record once its lease table
// exists: an untimed child creates the table with the library's own code,
// then the timed one starts under the same application name.
func (r *runner) firstRecord(ctx context.Context, src string, d dataset, round int) (report, error) {
	app := fmt.Sprintf("peer-first-%s-%d-%d", strings.ReplaceAll(src, "-", ""), round, time.Now().UnixNano())
	if _, err := r.peer(ctx, false, "-lib", "shardline", "-stream", d.stream, "-n", "1", "-kinesis", r.endpoints[src], "-app", app, "-ensure-table"); err != nil {
		return report{}, fmt.Errorf("create the lease table: %w", err)
	}
	rep, err := r.peer(ctx, false, "-lib", "shardline", "-stream", d.stream, "-n", "1", "-kinesis", r.endpoints[src], "-app", app)
	if err == nil {
		r.logf("shardline first record on %s (%s), lease table there: %.3fs", d.stream, src, rep.FirstSeconds)
	}
	return rep, err
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// procCPU is a process's user + system CPU seconds (from /proc; 0 if
// unreadable). Clock ticks are taken as 100 per second (USER_HZ on Linux).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

// machine describes the host for the report.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GB RAM", float64(kb)/1024/1024)
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d cores (%s, shared)%s%s, %s", runtime.NumCPU(), cpu, mem, kernel, runtime.Version())
}

// preloadFake makes d.stream in the fake and puts d.records user records
// into it over HTTP (fakeURL), noting how long it took in preload.
func preloadFake(ctx context.Context, fake *fakekinesis.Server, fakeURL string, d dataset, preload map[string]float64, logf func(string, ...any)) error {
	t0 := time.Now()
	if err := fake.AddEmptyStream(d.stream, d.shards); err != nil {
		return err
	}
	if err := preloadStream(ctx, standin.KinesisClient(fakeURL), d, 4); err != nil {
		return fmt.Errorf("preload the fake's %s: %w", d.stream, err)
	}
	preload[d.stream] = time.Since(t0).Seconds()
	logf("preloaded %s in the fake: %d user records over %d shards, %.1fs", d.stream, d.records, d.shards, time.Since(t0).Seconds())
	return nil
}

// preloadStream puts d.records user records into d.stream with workers
// producers at once, each taking slices of records in turn (so a failure
// says where), one PutRecords call at a time each.
func preloadStream(ctx context.Context, kc *kinesis.Client, d dataset, workers int) error {
	const slice = 10000 // 100 user records per shard per slice over 100 shards: full aggregates
	var next atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errc := make(chan error, max(workers, 1))
	for range max(workers, 1) {
		go func() {
			errc <- func() error {
				p, err := produce.New(ctx, kc, d.stream, d.aggregate)
				if err != nil {
					return err
				}
				for {
					i := int(next.Add(slice)) - slice
					if i >= d.records {
						return nil
					}
					if err := p.Put(ctx, userRecords(i, min(slice, d.records-i), time.Now())); err != nil {
						return fmt.Errorf("preload %s, records %d–: %w", d.stream, i, err)
					}
				}
			}()
		}()
	}
	var first error
	for range max(workers, 1) {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel(err)
		}
	}
	return first
}
