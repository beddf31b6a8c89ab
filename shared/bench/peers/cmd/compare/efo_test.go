package main

import (
	"strings"
	"testing"
	"time"
)

// TestEFOReport: the fan-out section's tables and its targets, judged on
// the worst run (latency), first read→last against polling over TLS
// (CPU) and the worst run's peak RSS.
func TestEFOReport(t *testing.T) {
	kpl := dataset{key: "kpl", name: "KPL (100 per aggregate)", stream: "peers-kpl-fake", records: 400000, shards: 4, aggregate: 100}
	backlog := func(cpuSched, firstRead float64, rssMB int64) report {
		return report{Records: 400000, FirstSeconds: 0.1, LastSeconds: 1.1, CPUSeconds: cpuSched, CPUFirstSeconds: 0.01,
			CPUSchedSeconds: cpuSched, FirstReadCPU: firstRead, FirstRead: true, MaxRSSKB: rssMB << 10}
	}
	lat := func(putP50, putP99 float64) report {
		return report{Records: 20000, LastSeconds: 22, PutRate: 1000, MaxRSSKB: 28 << 10, Latency: &latencyReport{Samples: 20000, P50MS: putP50, P90MS: putP99, P99MS: putP99, MaxMS: putP99 + 1,
			PutSamples: 20000, PutP50MS: putP50, PutP90MS: putP99, PutP99MS: putP99, PutMaxMS: putP99 + 1}}
	}
	plainLat := dataset{key: "plain", name: "plain", shards: 4}
	rows := []*result{
		{section: "efo-backlog", source: srcFake, ds: kpl, lib: "shardline", runs: []report{backlog(0.22, 0.01, 44)}},
		{section: "efo-backlog", source: srcFakeTLS, ds: kpl, lib: "shardline", runs: []report{backlog(0.26, 0.01, 45)}},     // 0.625 per 1M
		{section: "efo-backlog", source: srcFakeTLS, ds: kpl, lib: "shardline-efo", runs: []report{backlog(0.23, 0.01, 56)}}, // 0.55: 0.88×
		{section: "efo-backlog", source: srcFakeTLS, ds: kpl, lib: "vmware-efo", runs: []report{backlog(0.52, 0.02, 54)}},
		{section: "efo-shards100", source: srcFakeTLS, ds: dataset{key: "shards100", name: "KPL (100 per aggregate), 100 shards", records: 100000, shards: 100, aggregate: 100}, lib: "shardline-efo",
			runs: []report{{Records: 100000, FirstSeconds: 0.1, LastSeconds: 0.3, CPUSeconds: 0.2, MaxRSSKB: 84 << 10}, {Records: 100000, FirstSeconds: 0.1, LastSeconds: 0.3, CPUSeconds: 0.2, MaxRSSKB: 86 << 10}}},
		{section: "efo-steady100", source: srcFakeTLS, ds: dataset{key: "steady100", name: "plain, 100 shards", shards: 100}, lib: "shardline-efo", runs: []report{lat(1, 4)}},
		{section: "latency", source: srcFake, ds: plainLat, lib: "shardline", runs: []report{lat(101, 200)}},
		{section: "latency", source: srcFake, ds: plainLat, lib: "harlow", runs: []report{lat(126, 246)}}, // not in this section
		{section: "latency", source: srcFakeTLS, ds: plainLat, lib: "shardline-efo", runs: []report{lat(1, 3), lat(2, 31)}},
		{section: "latency", source: srcFakeTLS, ds: plainLat, lib: "vmware-efo", runs: []report{lat(1, 3)}},
	}
	var b strings.Builder
	writeEFOReport(&b, reportInput{rows: rows, opt: options{runs: 2, rate: 1000, warmup: 2000, latencyDuration: 20 * time.Second, efoSteady: 30 * time.Second, plainTk: 10 * time.Millisecond, kplFlush: 50 * time.Millisecond, shardSync: time.Second},
		protocols: map[string]int64{"SubscribeToShard HTTP/2.0": 8, "GetRecords HTTP/1.1": 5, "PutRecords HTTP/1.1": 9}})
	out := b.String()
	mustContain(t, out, []string{
		"## Enhanced fan-out (issue #18)",
		"| fake, TLS + HTTP/2 | KPL (100 per aggregate), 4 shards, 400000 | Shardline, fan-out | 1 |",
		"| KPL (100 per aggregate) | Shardline, fan-out | fake, TLS + HTTP/2 | 1.00 |",
		"| plain | Shardline, fan-out | 2 | 40000 |",
		"| steady | plain, 100 shards | Shardline, fan-out | 1 | — | 1000 | — |",
		"(plain, TLS + HTTP/2; put rate 1000/s) | p50 2 ms, p99 31 ms (worst run) | **not met** |",
		"first read→last: Shardline, fan-out 0.55 vs shardline 0.62 CPU s per 1M, 0.88×",
		"polling over plain HTTP 0.52, fan-out ÷ it 1.05× | **met** |",
		"(a backlog of 100000 KPL user records read from TRIM_HORIZON) | 86 MB (worst run) | **not met** |",
		"(a steady 1000 plain records/s for 30s) | 28 MB (worst run) | **met** |",
		"Read requests by HTTP version (both endpoints, whole run): GetRecords HTTP/1.1 5, SubscribeToShard HTTP/2.0 8.",
	}...)
	if strings.Contains(out, "harlow") {
		t.Errorf("a polling peer in the fan-out section:\n%s", out)
	}
}

func TestEFOBacklogRows(t *testing.T) {
	got := efoBacklogRows([]string{"shardline-efo", "vmware-efo"})
	want := []libSource{{"shardline", srcFake}, {"shardline", srcFakeTLS}, {"shardline-efo", srcFakeTLS}, {"vmware-efo", srcFakeTLS}}
	if len(got) != len(want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %v, want %v", i, got[i], want[i])
		}
	}
	for lib, want := range map[string]bool{"shardline-efo": true, "shardline-efo-sdk": true, "vmware-efo": true, "shardline": false, "shardline-json": false, "vmware": false} {
		if isEFO(lib) != want {
			t.Errorf("isEFO(%q) = %v", lib, !want)
		}
	}
}
