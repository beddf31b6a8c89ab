package main

import (
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
