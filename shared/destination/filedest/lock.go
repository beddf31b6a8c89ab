package filedest

import (
	"errors"
	"io/fs"
	"os"
)

// OpenLocked opens the file at path with flag and perm and takes an
// exclusive advisory lock on it (flock), which Send holds while it appends
// and `redrive` holds while it rewrites the file without the lines it
// handled (a new file renamed over the old one). After taking the lock it
// makes sure path still names the file it opened — a rewrite may have
// replaced it meanwhile — and opens the new one if not, so that a line is
// never appended to a file already replaced. Closing the file releases
// the lock. Where there is no flock (not a Unix system) the file is
// opened without a lock.
func OpenLocked(path string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		f, err := os.OpenFile(path, flag, perm)
		if err != nil {
			return nil, err
		}
		if err := lock(f); err != nil {
			f.Close()
			return nil, err
		}
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		now, err := os.Stat(path)
		if err == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		// Replaced (or removed) while we waited for the lock: again.
	}
}
