package terminal

import (
	"io"
	"os"
)

// Is reports whether w is an *os.File open on a terminal.
func Is(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && f != nil && isTerminal(f)
}

// Width is the terminal's width in columns, or def when w is not a
// terminal or its size is unknown.
func Width(w io.Writer, def int) int {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return def
	}
	if n := width(f); n > 0 {
		return n
	}
	return def
}
