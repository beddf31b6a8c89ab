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
