//go:build !unix

package lambdaemu

import "syscall"

// sysProcAttr: no process groups here; only the process itself is
// signalled.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(int, syscall.Signal) {}
