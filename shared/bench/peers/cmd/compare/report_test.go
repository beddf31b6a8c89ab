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
