package terminal

import (
	"os"
	"syscall"
	"unsafe"
)

// isTerminal asks the kernel for the file's terminal attributes (TCGETS):
// only a terminal has them (/dev/null, a character device too, has not).
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	return ioctl(f, syscall.TCGETS, unsafe.Pointer(&t))
}

// width asks for the window size (TIOCGWINSZ); 0 when unknown.
func width(f *os.File) int {
	var ws struct{ Row, Col, X, Y uint16 }
	if !ioctl(f, syscall.TIOCGWINSZ, unsafe.Pointer(&ws)) {
		return 0
	}
	return int(ws.Col)
}

// ioctl makes one ioctl on f's descriptor (through SyscallConn, which
// leaves the file's blocking mode alone) and reports whether it worked.
func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
	}); err != nil {
		return false
	}
	return errno == 0
}
