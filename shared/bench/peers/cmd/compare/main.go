// Command compare runs the peer comparison of issue #11: it starts the
// stand-ins (kinesis-mock, DynamoDB Local), preloads two streams with the
// same user records (KPL-aggregated and plain), builds cmd/peer, runs each
// library's consumer on each stream as a child process -runs times, one at
// a time, and prints a Markdown table to stdout (progress on stderr).
//
//	cd shared/bench/peers && go run ./cmd/compare [-kpl 100000] [-plain 20000] [-shards 4] [-runs 2] [-libs harlow,vmware,shardline]
//
// The stand-ins run on the same machine as the consumers: wall-clock
// figures include kinesis-mock's own CPU, so compare them between rows,
// not with AWS.
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
	"strings"
	"time"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// report is cmd/peer's JSON line.
type report struct {
	Lib          string  `json:"lib"`
	Records      int64   `json:"records"`
	FirstSeconds float64 `json:"first_seconds"`
	LastSeconds  float64 `json:"last_seconds"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	MaxRSSKB     int64   `json:"max_rss_kb"`
}

type dataset struct {
	name      string
	stream    string
	records   int
	aggregate int // user records per Kinesis record; 0: plain
}

type result struct {
	ds   dataset
	lib  string
	runs []report
	err  error
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	nKPL := fs.Int("kpl", 100000, "user records in the KPL-aggregated stream (0: skip)")
	agg := fs.Int("aggregate", 100, "user records per KPL aggregate")
	nPlain := fs.Int("plain", 20000, "records in the plain stream (0: skip)")
	shards := fs.Int("shards", 4, "shards per stream")
	runs := fs.Int("runs", 2, "runs per library and stream")
	libs := fs.String("libs", "harlow,vmware,shardline", "libraries, comma-separated")
	peer := fs.String("peer", "", "a built cmd/peer binary (default: go build it)")
	timeout := fs.Duration("timeout", 5*time.Minute, "per run")
	shardSync := fs.Duration("vmware-shard-sync", time.Second, "vmware's ShardSyncIntervalMillis (0: its default, 60 s; it takes one lease per sync)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }

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

	var sets []dataset
	if *nKPL > 0 {
		sets = append(sets, dataset{name: fmt.Sprintf("KPL (%d per aggregate)", *agg), stream: "peers-kpl", records: *nKPL, aggregate: *agg})
	}
	if *nPlain > 0 {
		sets = append(sets, dataset{name: "plain", stream: "peers-plain", records: *nPlain})
	}
	var spec []string
	for _, d := range sets {
		spec = append(spec, fmt.Sprintf("%s:%d", d.stream, *shards))
	}
	logf("starting stand-ins")
	ks, err := standin.StartKinesis(ctx, standin.KinesisOptions{InitializeStreams: strings.Join(spec, ",")})
	if err != nil {
		return fmt.Errorf("kinesis-mock: %w", err)
	}
	defer ks.Stop()
	ds, err := standin.StartDynamoDB(ctx, standin.DynamoDBOptions{})
	if err != nil {
		return fmt.Errorf("dynamodb local: %w", err)
	}
	defer ds.Stop()
	logf("kinesis %s, dynamodb %s", ks.Endpoint, ds.Endpoint)

	kc := standin.KinesisClient(ks.Endpoint)
	for _, d := range sets {
		t0 := time.Now()
		p, err := produce.New(ctx, kc, d.stream, d.aggregate)
		if err != nil {
			return err
		}
		recs := make([]kpl.UserRecord, 0, d.records)
		for i := range d.records {
			recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprint("key-", i%1000), Data: fmt.Appendf(nil, "key-%d:%d 1 2 3 4 5 6 7 8 9", i%1000, i)})
		}
		for len(recs) > 0 { // in slices, so a failure says where
			k := min(len(recs), 10000)
			if err := p.Put(ctx, recs[:k]); err != nil {
				return fmt.Errorf("preload %s: %w", d.stream, err)
			}
			recs = recs[k:]
		}
		logf("preloaded %s: %d user records in %.1fs", d.stream, d.records, time.Since(t0).Seconds())
	}

	env := append(os.Environ(), standin.Env(ks.Endpoint, ds.Endpoint)...)
	env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	var results []result
	for _, d := range sets {
		for lib := range strings.SplitSeq(*libs, ",") {
			r := result{ds: d, lib: lib}
			for i := range *runs {
				rep, err := runPeer(ctx, *peer, env, lib, d, ks.Endpoint, ds.Endpoint, *timeout, *shardSync)
				if err != nil {
					logf("%s on %s, run %d: %v", lib, d.stream, i+1, err)
					r.err = err
					break
				}
				logf("%s on %s, run %d: %.2fs to first, %.2fs to last, %.2f CPU s, %d MB", lib, d.stream, i+1, rep.FirstSeconds, rep.LastSeconds, rep.CPUSeconds, rep.MaxRSSKB/1024)
				r.runs = append(r.runs, rep)
			}
			results = append(results, r)
		}
	}
	writeTable(stdout, results, *shards, *shardSync)
	return nil
}

func runPeer(ctx context.Context, bin string, env []string, lib string, d dataset, kin, ddb string, timeout, shardSync time.Duration) (report, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-lib", lib, "-stream", d.stream, "-n", fmt.Sprint(d.records),
		"-kinesis", kin, "-dynamodb", ddb, "-timeout", timeout.String(), "-vmware-shard-sync", shardSync.String())
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return report{}, fmt.Errorf("%w: %s", err, tail(errb.String(), 600))
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return report{}, fmt.Errorf("decode %q: %w", tail(out.String(), 300), err)
	}
	if rep.Records < int64(d.records) {
		return rep, errors.New("fewer records than asked")
	}
	return rep, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// figures are the means over a result's runs.
type figures struct {
	rate, cpuPerM, rssMB, first, last float64
}

func mean(r result) figures {
	var f figures
	for _, x := range r.runs {
		span := x.LastSeconds - x.FirstSeconds
		if span <= 0 {
			span = x.LastSeconds
		}
		f.rate += float64(r.ds.records) / span
		f.cpuPerM += x.CPUSeconds / float64(r.ds.records) * 1e6
		f.rssMB += float64(x.MaxRSSKB) / 1024
		f.first += x.FirstSeconds
		f.last += x.LastSeconds
	}
	n := float64(len(r.runs))
	return figures{f.rate / n, f.cpuPerM / n, f.rssMB / n, f.first / n, f.last / n}
}

func writeTable(w io.Writer, results []result, shards int, shardSync time.Duration) {
	fmt.Fprintf(w, "| stream | library | runs | user records/s | CPU s per 1M user records | peak RSS MB | first record s | all records s |\n")
	fmt.Fprintf(w, "|---|---|---|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		if len(r.runs) == 0 {
			fmt.Fprintf(w, "| %s, %d shards, %d | %s | failed: %s | | | | | |\n", r.ds.name, shards, r.ds.records, r.lib, strings.ReplaceAll(tail(r.err.Error(), 200), "|", "/"))
			continue
		}
		f := mean(r)
		fmt.Fprintf(w, "| %s, %d shards, %d | %s | %d | %.0f | %.1f | %.0f | %.2f | %.2f |\n", r.ds.name, shards, r.ds.records, r.lib, len(r.runs), f.rate, f.cpuPerM, f.rssMB, f.first, f.last)
	}
	fmt.Fprintf(w, "\nShardline ÷ peer (means over runs; records/s above 1 = Shardline faster, CPU, RSS and first-record below 1 = Shardline cheaper/sooner):\n\n")
	fmt.Fprintf(w, "| stream | peer | records/s | CPU per 1M | peak RSS | first record |\n|---|---|---:|---:|---:|---:|\n")
	for _, s := range results {
		if s.lib != "shardline" || len(s.runs) == 0 {
			continue
		}
		sf := mean(s)
		for _, p := range results {
			if p.ds != s.ds || p.lib == "shardline" || len(p.runs) == 0 {
				continue
			}
			pf := mean(p)
			fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %.2f | %.2f |\n", s.ds.name, p.lib, sf.rate/pf.rate, sf.cpuPerM/pf.cpuPerM, sf.rssMB/pf.rssMB, sf.first/pf.first)
		}
	}
	fmt.Fprintf(w, "\nuser records/s: N ÷ (last − first record), so start-up is left out; first record and all records: seconds from the consumer process's start. CPU: the consumer process's own getrusage (user + sys) at the N-th record; peak RSS: its VmHWM then. Stand-ins on the same host. vmware's ShardSyncIntervalMillis: %v (0: its default, 60 s; it takes one lease per sync).\n", shardSync)
}
