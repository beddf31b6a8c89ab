package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteBetweenMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# B\n\nbefore\n"+beginMarker+"\nold\n"+endMarker+"\nafter\n"), 0o644)
	if err := writeBetweenMarkers(path, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "# B\n\nbefore\n" + beginMarker + "\nnew\n" + endMarker + "\nafter\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
	os.WriteFile(path, []byte("only "+beginMarker), 0o644)
	if err := writeBetweenMarkers(path, []byte("x")); err == nil {
		t.Error("one marker: no error")
	}
}

func TestUserRecords(t *testing.T) {
	ts := time.Unix(1796051652, 86e6)
	recs := userRecords(998, 3, ts)
	for i, r := range recs {
		if len(r.Data) != recordSize || int64(uint64(r.Data[0])<<56|uint64(r.Data[1])<<48|uint64(r.Data[2])<<40|uint64(r.Data[3])<<32|uint64(r.Data[4])<<24|uint64(r.Data[5])<<16|uint64(r.Data[6])<<8|uint64(r.Data[7])) != ts.UnixNano() {
			t.Errorf("record %d: %q", i, r.Data)
		}
	}
	if recs[2].PartitionKey != "key-0" || !strings.Contains(string(recs[2].Data), "key-0:1000") {
		t.Errorf("record 2: %q %q", recs[2].PartitionKey, recs[2].Data)
	}
}

func TestLatencyReportNamesSource(t *testing.T) {
	rep := report{Records: 20000, LastSeconds: 22, PutRate: 998}
	rep.Latency = &struct {
		Samples int64   `json:"samples"`
		P50MS   float64 `json:"p50_ms"`
		P90MS   float64 `json:"p90_ms"`
		P99MS   float64 `json:"p99_ms"`
		MaxMS   float64 `json:"max_ms"`
	}{Samples: 20000, P50MS: 100, P90MS: 180, P99MS: 199, MaxMS: 210}
	rows := []*result{{section: "latency", source: srcFake, ds: dataset{key: "plain", name: "plain", shards: 4}, lib: "shardline", runs: []report{rep}}}
	var b strings.Builder
	writeReport(&b, reportInput{rows: rows, opt: options{runs: 1, rate: 1000, latencyDuration: 20 * time.Second, plainTk: 10 * time.Millisecond, kplFlush: 50 * time.Millisecond, latencySource: srcFake},
		probe: &putProbe{rate: 1000, put: 22000, seconds: 30, longest: 6700 * time.Millisecond, stuck: 2 * time.Second, windows: []int64{4980, 4835, 3495}}})
	out := b.String()
	for _, want := range []string{"(fake, real puts)", "accepted **733 records/s**", "996, 967, 699 /s", "had waited 2s", "| plain | Shardline | 1 | 20000 | 100 | 180 | 199 | 210 | 998 |", "(plain, fake; put rate 998/s) | p50 100 ms, p99 199 ms (worst run) | **met** |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestBacklogCPUColumns: first read→last where the fake's hook gave one,
// "—" elsewhere, and the CPU targets judged on it where it exists.
func TestBacklogCPUColumns(t *testing.T) {
	ds := dataset{key: "kpl", name: "KPL (100 per aggregate)", stream: "peers-kpl", records: 1000000, shards: 4, aggregate: 100}
	run := func(cpu, cpuFirst, sched, firstRead float64, hooked bool) report {
		return report{Records: 1000000, FirstSeconds: 1, LastSeconds: 11, CPUSeconds: cpu, CPUFirstSeconds: cpuFirst,
			CPUSchedSeconds: sched, FirstReadCPU: firstRead, FirstRead: hooked, MaxRSSKB: 40 << 10}
	}
	var rows []*result
	for _, src := range []string{srcFake, srcMock} {
		hooked := src == srcFake
		rows = append(rows,
			// first→last 1.00, first read→last 1.10
			&result{section: "backlog", source: src, ds: ds, lib: "shardline", runs: []report{run(2, 1, 2.05, 0.95, hooked)}},
			// first→last 1.80, first read→last 3.00: half of it went on before its first record
			&result{section: "backlog", source: src, ds: ds, lib: "harlow", runs: []report{run(3, 1.2, 3.02, 0.02, hooked)}},
			// first→last 4.00, first read→last 4.50
			&result{section: "backlog", source: src, ds: ds, lib: "vmware", runs: []report{run(5, 1, 5, 0.5, hooked)}},
		)
	}
	var b strings.Builder
	writeReport(&b, reportInput{rows: rows, opt: options{runs: 1}})
	out := b.String()
	for _, want := range []string{
		"| CPU s per 1M user records, first→last | CPU s per 1M, first read→last | CPU s per 1M, whole process |",
		"| fake | KPL (100 per aggregate), 4 shards, 1000000 | harlow v0.5.0 | 1 | 100000 | 1.80 | 3.00 | 3.00 | 40 |",
		"| kinesis-mock | KPL (100 per aggregate), 4 shards, 1000000 | harlow v0.5.0 | 1 | 100000 | 1.80 | — | 3.00 | 40 |",
		"| fake | KPL (100 per aggregate) | harlow v0.5.0 | 1.00 | 0.56 | 0.37 | 0.67 |",
		"| kinesis-mock | KPL (100 per aggregate) | harlow v0.5.0 | 1.00 | 0.56 | — | 0.67 |",
		"| CPU per user record ≤ ½ the best peer's (KPL (100 per aggregate), fake; judged on first read→last) | first read→last: Shardline 1.10 vs harlow 3.00 CPU s per 1M, 0.37×; first→last: Shardline 1.00 vs harlow 1.80 CPU s per 1M, 0.56× | **met** |",
		"| CPU per user record ≤ ½ the best peer's (KPL (100 per aggregate), kinesis-mock; judged on first→last) | first→last: Shardline 1.00 vs harlow 1.80 CPU s per 1M, 0.56×; first read→last: — | **not met** |",
		"CPU first read→last (fake rows only",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestCPUFirstRead(t *testing.T) {
	r := report{Records: 500000, CPUSchedSeconds: 2, FirstReadCPU: 0.5, FirstRead: true}
	if c, ok := r.cpuFirstRead(); !ok || c != 3 {
		t.Errorf("cpuFirstRead = %v, %v; want 3, true", c, ok)
	}
	r.FirstRead = false
	if _, ok := r.cpuFirstRead(); ok {
		t.Error("no hook: a figure")
	}
	r.FirstRead, r.CPUSchedSeconds = true, 0 // an old child without cpu_sched_seconds
	if _, ok := r.cpuFirstRead(); ok {
		t.Error("no cpu_sched_seconds: a figure")
	}
}

// TestFirstReadHook: the fake's hook reads the child's CPU once, at the
// first GetRecords, and says why when it cannot.
func TestFirstReadHook(t *testing.T) {
	var f firstRead
	if _, err := f.result(); err == nil {
		t.Error("no GetRecords: no error")
	}
	f.hook() // before the pid is known
	if _, err := f.result(); err == nil {
		t.Error("pid unknown: no error")
	}
	var g firstRead
	g.pid.Store(int64(os.Getpid()))
	g.hook()
	cpu, err := g.result()
	if err != nil || cpu <= 0 {
		t.Fatalf("result = %v, %v", cpu, err)
	}
	for t0 := time.Now(); time.Since(t0) < 20*time.Millisecond; {
	}
	g.hook() // later GetRecords change nothing
	if again, _ := g.result(); again != cpu {
		t.Errorf("second GetRecords moved the figure from %v to %v", cpu, again)
	}
}
