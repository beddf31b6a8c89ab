//go:build unix

package filedest

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lock takes an exclusive flock on f, waiting for it.
func lock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		return nil
	}
}
