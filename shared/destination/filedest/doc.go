// Package filedest is the on-failure destination file:///path: it appends
// each batch given up to a file as one line of JSON (the on-failure record
// of package record, with the records, never split) and syncs the file
// before Send returns.
//
// A new file is created with mode 0600: the records may hold anything the
// stream carries. An existing file keeps its mode. Sends from one process
// are serialised; each line is written with a single append, so several
// processes may share a file on a local file system. A line cut short by a
// failed write (a full disk) is ended with a newline before the next one,
// so a reader loses that line alone, which was reported as not sent.
//
// Each append holds an exclusive advisory lock (flock) on the file, which
// `redrive` takes too while it rewrites the file without the lines it
// handled (OpenLocked): an append waits for a rewrite, then goes to the
// file that replaced the old one, and is never lost with it.
package filedest
