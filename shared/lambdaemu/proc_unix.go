//go:build unix && !linux

package lambdaemu

import "syscall"

// sysProcAttr puts a runtime process in its own process group, so that a
// kill reaches the children it starts too.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) {
	_ = syscall.Kill(-pid, sig)
}
