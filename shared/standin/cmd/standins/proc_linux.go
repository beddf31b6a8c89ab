package main

import "syscall"

// sysProcAttr puts a demo child in its own process group and has the
// kernel kill it if the demo dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
