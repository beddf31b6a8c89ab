package coordinator

import (
	"testing"
	"time"
)

// TestThroughput: throughputKBps is unmeasured (-1) until a first
// interval has passed, then the KB/s of that interval, then a moving
// average (KCL's weight 0.5 for the newest).
func TestThroughput(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var r throughput
	r.kbps = -1
	if r = r.next(4096, t0); r.kbps != -1 {
		t.Fatalf("first measurement without a start: %g KB/s, want -1 (not measured)", r.kbps)
	}
	if r = r.next(4096+20*1024, t0.Add(2*time.Second)); r.kbps != 10 {
		t.Fatalf("20 KB in 2s: %g KB/s, want 10", r.kbps)
	}
	if r = r.next(4096+20*1024, t0.Add(4*time.Second)); r.kbps != 5 {
		t.Fatalf("then nothing for 2s: %g KB/s, want the average 5", r.kbps)
	}
	if same := r.next(r.bytes+1024, r.at); same.kbps != 5 {
		t.Fatalf("no time passed: %g KB/s, want 5 kept", same.kbps)
	}
}
