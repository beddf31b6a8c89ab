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
	c.lat = newLatency(2)
	stamp := func(ago time.Duration) []byte {
		b := make([]byte, 100)
		binary.BigEndian.PutUint64(b, uint64(time.Now().Add(-ago).UnixNano()))
		return b
	}
	// Warm-up: the first two records, and any produced before it ended, do not count.
	old := stamp(time.Hour)
	c.observe(func(int) []byte { return old }, 1)
	c.observe(func(int) []byte { return stamp(time.Minute) }, 1)
	if n := c.lat.samples.Load(); n != 0 {
		t.Fatalf("%d samples during the warm-up", n)
	}
	recs := [][]byte{stamp(-5 * time.Millisecond), stamp(-5 * time.Millisecond), old, {1, 2}}
	c.observe(func(i int) []byte { return recs[i] }, len(recs))
	select {
	case <-c.done:
		t.Fatal("done after 2 of 3 samples")
	default:
	}
	c.observe(func(int) []byte { return stamp(-20 * time.Millisecond) }, 1)
	<-c.done
	r := c.lat.report()
	if r.Samples != 3 || r.Bad != 1 {
		t.Fatalf("report %+v, want 3 samples, 1 bad", r)
	}
	if r.P50MS > 10 || r.MaxMS < 1 {
		t.Errorf("report %+v", r)
	}
}
