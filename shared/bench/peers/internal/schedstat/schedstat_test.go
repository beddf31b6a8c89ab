package schedstat

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestSum(t *testing.T) {
	dir := t.TempDir()
	write := func(tid, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, tid), 0o755); err != nil {
			t.Fatal(err)
		}
		if content != "" {
			if err := os.WriteFile(filepath.Join(dir, tid, "schedstat"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("100", "22075912 1483541 76\n")
	write("101", "1000000000 0 3\n")
	write("102", "") // listed, then gone: no schedstat any more
	got, err := Sum(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(22075912 + 1000000000); got != want {
		t.Errorf("Sum = %v, want %v", got, want)
	}

	write("103", "garbage 1 2\n")
	if _, err := Sum(dir); err == nil {
		t.Error("malformed schedstat: no error")
	}
	if _, err := Sum(filepath.Join(dir, "102")); err == nil {
		t.Error("no thread readable: no error")
	}
	if _, err := Sum(filepath.Join(dir, "missing")); err == nil {
		t.Error("no such process: no error")
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"0 0 0\n": 0, "123": 123, "  45 6 7": 45} {
		if got, err := parse([]byte(in)); err != nil || got != want {
			t.Errorf("parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "\n", "-1 0 0", "x 1 2"} {
		if _, err := parse([]byte(in)); err == nil {
			t.Errorf("parse(%q): no error", in)
		}
	}
}

// TestSelf reads this process's own threads: a busy loop shows up.
func TestSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux /proc only")
	}
	a, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	for t0 := time.Now(); time.Since(t0) < 30*time.Millisecond; {
	}
	b, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if d := b - a; d < 20*time.Millisecond {
		t.Errorf("30 ms of spinning counted as %v", d)
	}
	c, err := PID(os.Getpid())
	if err != nil || c < b {
		t.Errorf("PID(self) = %v, %v; want ≥ %v", c, err, b)
	}
}
