package main

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	c := newCounter(time.Now(), 5)
	c.add(0)
	if got := c.first.Load(); got != 0 {
		t.Fatalf("first after add(0) = %d, want 0", got)
	}
	c.add(3)
	select {
	case <-c.done:
		t.Fatal("done after 3 of 5")
	default:
	}
	c.add(3)
	c.add(1) // past N: no second close
	<-c.done
	if got, want := c.n.Load(), int64(7); got != want {
		t.Errorf("n = %d, want %d", got, want)
	}
	if c.first.Load() <= 0 || c.last.Load() < c.first.Load() {
		t.Errorf("first %d, last %d: want 0 < first <= last", c.first.Load(), c.last.Load())
	}
}

func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-lib", "kcl-java"}, `-lib "kcl-java"`},
		{[]string{"-lib", "harlow", "-stream", "s", "-kinesis", "http://x", "-dynamodb", "http://y"}, "-n > 0"},
	} {
		err := run(time.Now(), tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestLatency(t *testing.T) {
	c := newCounter(time.Now(), 3)
	c.lat = newLatency(2, 0)
	stamp := func(ago time.Duration) []byte {
		b := make([]byte, 100)
		binary.BigEndian.PutUint64(b, uint64(time.Now().Add(-ago).UnixNano()))
		return b
	}
	// Warm-up: the first two records, and any produced before it ended, do not count.
	old := stamp(time.Hour)
	c.observe("s", func(int) []byte { return old }, 1)
	c.observe("s", func(int) []byte { return stamp(time.Minute) }, 1)
	if n := c.lat.samples(); n != 0 {
		t.Fatalf("%d samples during the warm-up", n)
	}
	recs := [][]byte{stamp(-5 * time.Millisecond), stamp(-5 * time.Millisecond), old, {1, 2}}
	c.observe("s", func(i int) []byte { return recs[i] }, len(recs))
	select {
	case <-c.done:
		t.Fatal("done after 2 of 3 samples")
	default:
	}
	c.observe("s", func(int) []byte { return stamp(-20 * time.Millisecond) }, 1)
	<-c.done
	r := c.lat.report()
	if r.Samples != 3 || r.Bad != 1 {
		t.Fatalf("report %+v, want 3 samples, 1 bad", r)
	}
	if r.P50MS > 10 || r.MaxMS < 1 {
		t.Errorf("report %+v", r)
	}
}

// TestLatencyFromPut: the second stamp (bytes 8..16) feeds the from-put
// histogram; records without one, too short or holding text there, count
// from creation only.
func TestLatencyFromPut(t *testing.T) {
	l := newLatency(0, 0)
	now := time.Now()
	rec := func(created, put time.Time, size int) []byte {
		b := make([]byte, max(size, 16))
		binary.BigEndian.PutUint64(b, uint64(created.UnixNano()))
		binary.BigEndian.PutUint64(b[8:], uint64(put.UnixNano()))
		return b[:size]
	}
	text := rec(now.Add(-60*time.Millisecond), now, 100)
	copy(text[8:], " key-12:345 ") // a record made before the put stamp
	recs := [][]byte{
		rec(now.Add(-60*time.Millisecond), now.Add(-10*time.Millisecond), 100),
		rec(now.Add(-60*time.Millisecond), now.Add(-10*time.Millisecond), 100),
		rec(now.Add(-60*time.Millisecond), now.Add(-10*time.Millisecond), 16),
		rec(now.Add(-60*time.Millisecond), now.Add(-10*time.Millisecond), 12),  // creation stamp only
		rec(now.Add(-60*time.Millisecond), now.Add(-61*time.Millisecond), 100), // put before creation
		text,
		{1, 2, 3},
	}
	l.observe("s", func(i int) []byte { return recs[i] }, len(recs), 0)
	r := l.report()
	if r.Samples != 6 || r.Bad != 1 || r.PutSamples != 3 || r.PutBad != 3 {
		t.Fatalf("report %+v, want 6 samples, 1 bad, 3 from put, 3 without a put stamp", r)
	}
	if r.P50MS < 60 || r.P50MS > 100 || r.MaxMS < 60 {
		t.Errorf("from creation: p50 %v ms, max %v ms; want ~61", r.P50MS, r.MaxMS)
	}
	if r.PutP50MS < 10 || r.PutP50MS > 50 || r.PutP99MS > 50 || r.PutMaxMS != r.PutP99MS {
		t.Errorf("from put: p50 %v, p99 %v, max %v ms; want ~11", r.PutP50MS, r.PutP99MS, r.PutMaxMS)
	}
}

// TestLatencyWarmupShards: with -warmup-shards the warm-up lasts until
// records have come from that many shards, however many came before.
func TestLatencyWarmupShards(t *testing.T) {
	l := newLatency(2, 3)
	stamp := func() []byte {
		b := make([]byte, 16)
		binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
		return b
	}
	one := func(shard string, seen int64) {
		d := stamp() // made before it is received
		time.Sleep(time.Millisecond)
		l.observe(shard, func(int) []byte { return d }, 1, seen)
	}
	one("a", 0)
	one("a", 1)
	one("b", 2) // 3 records, 2 shards: still warming up
	if n := l.samples(); n != 0 {
		t.Fatalf("%d samples before the third shard", n)
	}
	one("c", 3) // the warm-up ends here: records made after now count
	one("a", 4)
	if n := l.samples(); n != 1 {
		t.Errorf("%d samples after the warm-up, want 1", n)
	}
}
