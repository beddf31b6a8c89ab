// Package ptytest opens pseudo-terminals for tests of what a program shows
// on a terminal (the live view, cleared screens). Linux only; test code
// only.
package ptytest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"unsafe"

	"github.com/shardline/shardline/shared/testwait"
)

// Open opens a pseudo-terminal of 40 rows and 120 columns: tty is the
// terminal a program writes to; what it writes is copied into out (as the
// terminal shows it: the line discipline turns "\n" into "\r\n"). It
// skips the test where there are no pseudo-terminals; both ends close at
// cleanup.
func Open(t testing.TB) (tty *os.File, out *testwait.Buffer) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	var n uint32
	if err := ioctl(ptmx, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatal(err)
	}
	if err := ioctl(ptmx, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	ws := struct{ Row, Col, X, Y uint16 }{Row: 40, Col: 120}
	if err := ioctl(tty, syscall.TIOCSWINSZ, unsafe.Pointer(&ws)); err != nil {
		t.Fatal(err)
	}
	out = &testwait.Buffer{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, err := io.Copy(out, ptmx)
		var pe *os.PathError
		if err != nil && !(errors.As(err, &pe) && errors.Is(pe.Err, syscall.EIO)) { // EIO: the terminal end closed
			t.Errorf("reading the pseudo-terminal: %v", err)
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		<-copied
		ptmx.Close()
	})
	return tty, out
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}
