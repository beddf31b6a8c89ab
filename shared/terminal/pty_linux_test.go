package terminal

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair: the terminal end a program
// writes to, and the other end.
func openPTY(t *testing.T) (tty, ptmx *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	var unlock int32
	if !ioctl(ptmx, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)) {
		t.Fatal("unlock the pseudo-terminal")
	}
	var n uint32
	if !ioctl(ptmx, syscall.TIOCGPTN, unsafe.Pointer(&n)) {
		t.Fatal("pseudo-terminal number")
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty, ptmx
}

// TestIsTerminal: the terminal end of a pseudo-terminal is a terminal,
// with the width set on it.
func TestIsTerminal(t *testing.T) {
	tty, _ := openPTY(t)
	if !Is(tty) {
		t.Fatal("Is(pty) = false, want true")
	}
	ws := struct{ Row, Col, X, Y uint16 }{Row: 40, Col: 132}
	if !ioctl(tty, syscall.TIOCSWINSZ, unsafe.Pointer(&ws)) {
		t.Fatal("set the window size")
	}
	if got := Width(tty, 80); got != 132 {
		t.Errorf("Width(pty) = %d, want 132", got)
	}
}
