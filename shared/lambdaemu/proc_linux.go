package lambdaemu

import "syscall"

// sysProcAttr puts a runtime process in its own process group, so that a
// kill reaches the children it starts too, and has the kernel SIGKILL it
// if the process that started it dies: a test binary that panics or times
// out leaves nothing behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
}
