package terminal

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestIsNotTerminal: a pipe, /dev/null, a regular file and a buffer are
// not terminals (the test's own output is not one under go test either).
func TestIsNotTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var nilFile *os.File
	for name, out := range map[string]any{"pipe": w, "/dev/null": null, "file": file, "buffer": &bytes.Buffer{}, "nil file": nilFile} {
		wr, _ := out.(interface{ Write([]byte) (int, error) })
		if Is(wr) {
			t.Errorf("Is(%s) = true, want false", name)
		}
		if got := Width(wr, 120); got != 120 {
			t.Errorf("Width(%s) = %d, want the default 120", name, got)
		}
	}
}

// TestLive: the status line is drawn in place, erased before every write
// through a wrapped writer, drawn again after a write that ends a line,
// cut to the width, and erased by Close.
func TestLive(t *testing.T) {
	var term bytes.Buffer // stdout and stderr on one terminal
	l := NewLive(&term, 20)
	stderr, stdout := l.Writer(&term), l.Writer(&term)
	l.Set("4 shards")
	if got, want := term.String(), Erase+"4 shards"; got != want {
		t.Fatalf("after Set: %q, want %q", got, want)
	}
	term.Reset()
	stderr.Write([]byte("level=INFO msg=x\n"))
	if got, want := term.String(), Erase+"level=INFO msg=x\n"+Erase+"4 shards"; got != want {
		t.Fatalf("after a log line: %q, want %q", got, want)
	}
	term.Reset()
	stdout.Write([]byte("partial "))
	stdout.Write([]byte("line\n"))
	if got, want := term.String(), Erase+"partial line\n"+Erase+"4 shards"; got != want {
		t.Fatalf("after a line in two writes: %q, want %q", got, want)
	}
	term.Reset()
	l.Set(strings.Repeat("x", 40))
	if got, want := term.String(), Erase+strings.Repeat("x", 18)+"…"; got != want {
		t.Fatalf("a long line: %q, want %q (cut to the width less one)", got, want)
	}
	term.Reset()
	l.Close()
	stderr.Write([]byte("after\n"))
	if got, want := term.String(), Erase+"after\n"; got != want {
		t.Fatalf("after Close: %q, want %q", got, want)
	}
}
