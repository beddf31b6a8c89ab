package terminal

import (
	"bytes"
	"io"
	"sync"
	"unicode/utf8"
)

// Live keeps one status line at the bottom of a terminal: Set redraws it
// in place (carriage return, the text, erase to the end of the line), and
// every writer wrapped with Writer erases it before a write and draws it
// again after a write that ends a line, so that log lines and a handler's
// output scroll above it and are never torn by it. It is safe for
// concurrent use; writes through its writers are serialised.
type Live struct {
	mu    sync.Mutex
	w     io.Writer // where the line is drawn
	width int       // the line is cut to width-1 columns (no wrap)
	line  string
	shown bool
}

// Erase is what erases the status line: back to the first column, erase
// to the end of the line.
const Erase = "\r\x1b[K"

// NewLive draws its line on w, a terminal width columns wide.
func NewLive(w io.Writer, width int) *Live {
	if width < 2 {
		width = 80
	}
	return &Live{w: w, width: width}
}

// Set replaces the status line and draws it.
func (l *Live) Set(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.line = cut(line, l.width-1)
	l.draw()
}

// Close erases the status line; later writes go through untouched.
func (l *Live) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shown {
		_, _ = io.WriteString(l.w, Erase)
	}
	l.line, l.shown = "", false
}

func (l *Live) draw() {
	if l.line == "" {
		return
	}
	_, _ = io.WriteString(l.w, Erase+l.line)
	l.shown = true
}

// Writer wraps w (the same terminal: stderr, stdout) so that its writes
// pass above the status line.
func (l *Live) Writer(w io.Writer) io.Writer { return &above{l: l, w: w} }

type above struct {
	l *Live
	w io.Writer
}

func (a *above) Write(p []byte) (int, error) {
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if a.l.shown {
		_, _ = io.WriteString(a.l.w, Erase)
		a.l.shown = false
	}
	n, err := a.w.Write(p)
	if bytes.HasSuffix(p, []byte("\n")) {
		a.l.draw()
	}
	return n, err
}

// cut shortens s to at most n runes, the last one an ellipsis.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}
