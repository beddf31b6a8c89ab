//go:build !unix

package filedest

import "os"

// lock does nothing here: no flock on this system.
func lock(*os.File) error { return nil }
