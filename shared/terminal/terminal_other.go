//go:build !linux

package terminal

import "os"

// isTerminal is the character-device bit: true on a terminal, and also
// on /dev/null (outside Linux, no ioctl is made here).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func width(*os.File) int { return 0 }
