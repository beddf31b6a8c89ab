package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/kpl"
)

func TestWriteBetweenMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# B\n\nbefore\n"+beginMarker+"\nold\n"+endMarker+"\nafter\n"), 0o644)
	if err := writeBetweenMarkers(path, beginMarker, endMarker, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := "# B\n\nbefore\n" + beginMarker + "\nnew\n" + endMarker + "\nafter\n"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
	os.WriteFile(path, []byte("only "+beginMarker), 0o644)
	if err := writeBetweenMarkers(path, beginMarker, endMarker, []byte("x")); err == nil {
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
	rep.Latency = &latencyReport{Samples: 20000, P50MS: 100, P90MS: 180, P99MS: 199, MaxMS: 210,
		PutSamples: 20000, PutP50MS: 100, PutP90MS: 180, PutP99MS: 199, PutMaxMS: 210}
	rows := []*result{{section: "latency", source: srcFake, ds: dataset{key: "plain", name: "plain", shards: 4}, lib: "shardline", runs: []report{rep}}}
	var b strings.Builder
	writeReport(&b, reportInput{rows: rows, opt: options{runs: 1, rate: 1000, latencyDuration: 20 * time.Second, plainTk: 10 * time.Millisecond, kplFlush: 50 * time.Millisecond, latencySource: srcFake},
		probe: &putProbe{rate: 1000, put: 22000, seconds: 30, longest: 6700 * time.Millisecond, stuck: 2 * time.Second, windows: []int64{4980, 4835, 3495}}})
	out := b.String()
	mustContain(t, out, []string{"(fake, real puts)", "accepted **733 records/s**", "996, 967, 699 /s", "had waited 2s", "| plain | Shardline | 1 | 20000 | 100 | 180 | 199 | 210 | 100 | 199 | 998 |", "(plain, fake; put rate 998/s; judged from put) | from put: p50 100 ms, p99 199 ms; from creation: p50 100 ms, p99 199 ms (worst run) | **met** |"}...)
}

// TestLatencyFromPut: KPL latency is judged from the put; a run of an
// older peer without put stamps is judged from creation and shows "—".
func TestLatencyFromPut(t *testing.T) {
	kpl := dataset{key: "kpl", name: "KPL (≤100 per aggregate, flushed every 50ms)", shards: 4, aggregate: 100}
	lat := func(p50, p99, putP50, putP99 float64) report {
		r := report{Records: 20000, LastSeconds: 22, PutRate: 1000, Latency: &latencyReport{Samples: 20000, P50MS: p50, P90MS: p99 - 10, P99MS: p99, MaxMS: p99 + 5}}
		if putP50 > 0 {
			r.Latency.PutSamples, r.Latency.PutP50MS, r.Latency.PutP90MS, r.Latency.PutP99MS, r.Latency.PutMaxMS = 20000, putP50, putP99-10, putP99, putP99+5
		}
		return r
	}
	rows := []*result{
		// two runs: the worst from creation misses the target, from the put it is met
		{section: "latency", source: srcFake, ds: kpl, lib: "shardline", runs: []report{lat(120, 240, 96, 200), lat(130, 260, 104, 235)}},
		{section: "latency", source: srcFake, ds: kpl, lib: "harlow", runs: []report{lat(250, 500, 225, 470)}},
		{section: "latency", source: srcFake, ds: dataset{key: "plain", name: "plain", shards: 4}, lib: "shardline", runs: []report{lat(90, 300, 0, 0)}},
	}
	var b strings.Builder
	writeReport(&b, reportInput{rows: rows, opt: options{runs: 2, rate: 1000, latencyDuration: 20 * time.Second, plainTk: 10 * time.Millisecond, kplFlush: 50 * time.Millisecond, latencySource: srcFake}})
	out := b.String()
	mustContain(t, out, []string{
		"| p50 ms from creation | p90 ms | p99 ms | max ms | p50 ms from put | p99 ms from put |",
		"| KPL (≤100 per aggregate, flushed every 50ms) | Shardline | 2 | 40000 | 125 | 240 | 250 | 265 | 100 | 218 | 1000 |",
		"| plain | Shardline | 1 | 20000 | 90 | 290 | 300 | 305 | — | — | 1000 |",
		"| kpl | harlow v0.5.0 | 0.50 | 0.50 | 0.44 | 0.46 |",
		"(KPL (≤100 per aggregate, flushed every 50ms), fake; put rate 1000/s; judged from put) | from put: p50 104 ms, p99 235 ms; from creation: p50 130 ms, p99 260 ms (worst run) | **met** |",
		"(plain, fake; put rate 1000/s; judged from creation) | from creation: p50 90 ms, p99 300 ms; from put: — (worst run) | **not met** |",
		"**From put** (put stamp to handler) is the consumer's own latency",
		"up to 50ms (mean about 25ms)",
	}...)
}

// TestStampPut: both stamps round-trip through the bytes cmd/peer reads;
// the put stamp moves, nothing else does, and records stay 100 bytes.
func TestStampPut(t *testing.T) {
	made := time.Unix(1796051652, 86e6)
	put := made.Add(37 * time.Millisecond)
	recs := userRecords(7, 3, made)
	stamp := func(d []byte, at int) int64 { return int64(binary.BigEndian.Uint64(d[at:])) }
	for i, r := range recs {
		if stamp(r.Data, createdStamp) != made.UnixNano() || stamp(r.Data, putStamp) != made.UnixNano() {
			t.Errorf("record %d before the put: stamps %d, %d", i, stamp(r.Data, createdStamp), stamp(r.Data, putStamp))
		}
	}
	before := string(recs[1].Data[stampsEnd:])
	short := kpl.UserRecord{PartitionKey: "k", Data: []byte{1, 2, 3}}
	stampPut(append(recs, short), put)
	for i, r := range recs {
		if len(r.Data) != recordSize || stamp(r.Data, createdStamp) != made.UnixNano() || stamp(r.Data, putStamp) != put.UnixNano() {
			t.Errorf("record %d after the put: %d bytes, stamps %d, %d", i, len(r.Data), stamp(r.Data, createdStamp), stamp(r.Data, putStamp))
		}
	}
	if after := string(recs[1].Data[stampsEnd:]); after != before || !strings.Contains(after, " key-8:8 ") {
		t.Errorf("padding changed: %q → %q", before, after)
	}
	if string(short.Data) != "\x01\x02\x03" {
		t.Errorf("short record written: %q", short.Data)
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
	mustContain(t, out, []string{
		"| CPU s per 1M user records, first→last | CPU s per 1M, first read→last | CPU s per 1M, whole process |",
		"| fake | KPL (100 per aggregate), 4 shards, 1000000 | harlow v0.5.0 | 1 | 100000 | 1.80 | 3.00 | 3.00 | 40 |",
		"| kinesis-mock | KPL (100 per aggregate), 4 shards, 1000000 | harlow v0.5.0 | 1 | 100000 | 1.80 | — | 3.00 | 40 |",
		"| fake | KPL (100 per aggregate) | harlow v0.5.0 | 1.00 | 0.56 | 0.37 | 0.67 |",
		"| kinesis-mock | KPL (100 per aggregate) | harlow v0.5.0 | 1.00 | 0.56 | — | 0.67 |",
		"| CPU per user record ≤ ½ the best peer's (KPL (100 per aggregate), fake; judged on first read→last) | first read→last: Shardline 1.10 vs harlow 3.00 CPU s per 1M, 0.37×; first→last: Shardline 1.00 vs harlow 1.80 CPU s per 1M, 0.56× | **met** |",
		"| CPU per user record ≤ ½ the best peer's (KPL (100 per aggregate), kinesis-mock) | first→last: Shardline 1.00 vs harlow 1.80 CPU s per 1M, 0.56×; first read→last: — | shown, not judged: the stand-in is the bottleneck (see the fake rows) |",
		"CPU first read→last (fake rows only",
	}...)
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

// mustContain fails the test for each of wants that out lacks.
func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
