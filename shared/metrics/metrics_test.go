package metrics

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Level{"NONE": None, "summary": Summary, "DETAILED": Detailed, "": Detailed} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("ALL"); err == nil {
		t.Error("ParseLevel(ALL): no error")
	}
	ds, err := ParseDimensions("Operation, shardid,StreamName,Operation")
	if err != nil || len(ds) != 3 || !ds.Has(ShardID) || ds.Has(WorkerIdentifier) {
		t.Errorf("ParseDimensions = %v, %v", ds, err)
	}
	if _, err := ParseDimensions("Operation,Region"); err == nil {
		t.Error("ParseDimensions with Region: no error")
	}
}

func TestHist(t *testing.T) {
	var h Hist
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Minute} {
		h.Observe(d)
	}
	s := h.Snapshot()
	if s.Count != 4 || s.Max != 2*time.Minute || s.Buckets[0] != 2 || s.Buckets[2] != 1 || s.Buckets[len(Bounds)] != 1 {
		t.Errorf("snapshot %+v", s)
	}
	h.Observe(7 * time.Millisecond)
	d := h.Snapshot().Sub(s)
	if d.Count != 1 || d.Sum != 7*time.Millisecond || d.Buckets[3] != 1 {
		t.Errorf("delta %+v", d)
	}
}

func BenchmarkObserve(b *testing.B) {
	var h Hist
	for b.Loop() {
		h.Observe(3 * time.Millisecond)
	}
}
