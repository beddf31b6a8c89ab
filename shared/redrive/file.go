package redrive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/destination/filedest"
)

// FileSource reads a JSON lines file -on-failure file:///path wrote: one
// message per line. Lines done are cut from the file by rewriting it
// (a new file renamed over the old one, mode kept) at most once a second
// while the redrive runs and at Close. Lines appended meanwhile (a poller
// still writing to it) are kept: a rewrite holds the advisory lock that
// the file destination takes to append (filedest.OpenLocked), from its
// reading the file again until the new file replaced it.
type FileSource struct {
	Path string

	mu       sync.Mutex
	f        *os.File // the file as it was opened: its lines are read from it
	r        *bufio.Reader
	off      int64 // where the next line starts in f
	line     int
	size     int64            // f's size when opened: lines past it are not read
	cut      map[int64]int64  // start → end of lines done
	tailFrom int64            // where lines not from f start in the file now
	dirty    bool             // lines done since the last rewrite
	last     time.Time        // the last rewrite
	every    time.Duration    // least time between rewrites in Done
	now      func() time.Time // for tests
}

var _ Source = (*FileSource)(nil)

// NewFileSource returns the source of the file at path.
func NewFileSource(path string) *FileSource {
	return &FileSource{Path: path, cut: map[int64]int64{}, every: time.Second, now: time.Now}
}

func (s *FileSource) String() string { return "file://" + s.Path }

// Check opens the file.
func (s *FileSource) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		return nil
	}
	f, err := os.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return &NotFoundError{What: "file " + s.Path}
	}
	if err != nil {
		return fmt.Errorf("file %s: %w", s.Path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file %s: %w", s.Path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("file %s: not a regular file (%s)", s.Path, fi.Mode().Type())
	}
	s.f, s.size, s.tailFrom = f, fi.Size(), fi.Size()
	s.r = bufio.NewReaderSize(io.LimitReader(f, fi.Size()), 1<<20)
	return nil
}

type fileRef struct{ start, end int64 }

// Next reads up to n lines (empty lines are skipped).
func (s *FileSource) Next(ctx context.Context, n int) ([]*Message, error) {
	if err := s.Check(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Message
	for len(out) < n {
		b, err := s.r.ReadBytes('\n')
		start := s.off
		s.off += int64(len(b))
		if len(b) > 0 {
			s.line++
			if len(bytes.TrimSpace(b)) > 0 {
				out = append(out, &Message{ID: fmt.Sprintf("%s:%d", s.Path, s.line), Body: b, ref: fileRef{start, s.off}})
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("file %s: %w", s.Path, err)
		}
	}
	return out, nil
}

// Done marks the messages' lines for cutting, and rewrites the file if
// the last rewrite is a second old.
func (s *FileSource) Done(_ context.Context, msgs []*Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		ref := m.ref.(fileRef)
		s.cut[ref.start] = ref.end
		s.dirty = true
	}
	if s.now().Sub(s.last) < s.every {
		return nil
	}
	return s.rewrite()
}

// Release keeps the lines: nothing to do.
func (s *FileSource) Release(context.Context, []*Message) error { return nil }

// Close rewrites the file without the lines done.
func (s *FileSource) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.rewrite()
	s.f.Close()
	s.f = nil
	return err
}

// rewrite writes the file anew: f's lines not cut, then whatever the file
// now holds past the lines that came from f (appended meanwhile).
func (s *FileSource) rewrite() error {
	if !s.dirty {
		return nil
	}
	s.last = s.now()
	// The lock a poller's file destination takes to append: no line is
	// appended from here until the new file has replaced this one (a
	// writer waiting then appends to the new one).
	lf, err := filedest.OpenLocked(s.Path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("file %s: lock it to cut the lines done: %w", s.Path, err)
	}
	defer lf.Close()
	fi, err := lf.Stat()
	if err != nil {
		return fmt.Errorf("file %s: %w", s.Path, err)
	}
	cur, err := io.ReadAll(lf)
	if err != nil {
		return fmt.Errorf("file %s: read it again to cut the lines done: %w", s.Path, err)
	}
	var out bytes.Buffer
	sec := io.NewSectionReader(s.f, 0, s.size)
	var pos int64
	keep := func(end int64) error {
		if end <= pos {
			return nil
		}
		if _, err := io.Copy(&out, io.NewSectionReader(sec, pos, end-pos)); err != nil {
			return err
		}
		pos = end
		return nil
	}
	starts := make([]int64, 0, len(s.cut))
	for st := range s.cut {
		starts = append(starts, st)
	}
	slices.Sort(starts)
	for _, st := range starts {
		if err := keep(st); err != nil {
			return fmt.Errorf("file %s: %w", s.Path, err)
		}
		pos = s.cut[st]
	}
	if err := keep(s.size); err != nil {
		return fmt.Errorf("file %s: %w", s.Path, err)
	}
	kept := int64(out.Len())
	if s.tailFrom < int64(len(cur)) {
		out.Write(cur[s.tailFrom:])
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.Path), "."+filepath.Base(s.Path)+".redrive-*")
	if err != nil {
		return fmt.Errorf("file %s: %w", s.Path, err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename
	if _, err := tmp.Write(out.Bytes()); err == nil {
		err = tmp.Chmod(fi.Mode().Perm())
		if err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.Path)
	}
	if err != nil {
		return fmt.Errorf("file %s: rewrite it without the lines done: %w", s.Path, err)
	}
	s.tailFrom, s.dirty = kept, false
	return nil
}
