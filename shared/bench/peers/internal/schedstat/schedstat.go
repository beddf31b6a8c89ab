// Package schedstat reads a process's CPU time from the scheduler's
// per-thread accounting: the first field of /proc/<pid>/task/<tid>/schedstat
// is the nanoseconds that thread has spent on a CPU. Summed over the
// threads it is precise to the nanosecond, where /proc/<pid>/stat's utime
// and stime count 10 ms ticks; and one process can read it for another,
// so a driver and its child can measure one span from both ends with the
// same clock.
//
// Only live threads are listed: CPU of a thread that has exited is not in
// the sum (Go's runtime keeps its threads; a goroutine that exits locked
// to its thread takes that thread with it).
package schedstat

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Self is the CPU time of this process's live threads.
func Self() (time.Duration, error) { return Sum("/proc/self/task") }

// PID is the CPU time of process pid's live threads.
func PID(pid int) (time.Duration, error) { return Sum(fmt.Sprintf("/proc/%d/task", pid)) }

// Sum adds the first field of <taskDir>/*/schedstat. A thread that
// vanished between the listing and the read is skipped; a directory that
// cannot be listed (the process is gone) or holds no readable thread is
// an error.
func Sum(taskDir string) (time.Duration, error) {
	ents, err := os.ReadDir(taskDir)
	if err != nil {
		return 0, err
	}
	var sum int64
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(taskDir, e.Name(), "schedstat"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				continue // the thread exited after the listing
			}
			return 0, err
		}
		ns, err := parse(b)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %w", taskDir, e.Name(), err)
		}
		sum += ns
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: no thread's schedstat could be read", taskDir)
	}
	return time.Duration(sum), nil
}

// parse reads the first field of a schedstat line: "<ns on cpu> <ns
// waiting> <timeslices>\n".
func parse(b []byte) (int64, error) {
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, errors.New("empty")
	}
	ns, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil || ns < 0 {
		return 0, fmt.Errorf("first field %q: not a count of nanoseconds", f[0])
	}
	return ns, nil
}
