package filedest

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/dispatch"
)

// Mode is the permission a new file is created with.
const Mode = 0o600

// Form is the form of the value, for error messages.
const Form = "file:///absolute/path"

// ParsePath returns the path of a file:///path value; file://localhost/path
// is accepted too.
func ParsePath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "file" || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") ||
		(u.Host != "" && u.Host != "localhost") || strings.HasSuffix(u.Path, "/") {
		return "", fmt.Errorf("%q: allowed %s (an absolute path to a file)", raw, Form)
	}
	return u.Path, nil
}

// Destination appends records to the file at Path.
type Destination struct {
	Path string
	mu   sync.Mutex
}

var _ dispatch.Destination = (*Destination)(nil)

// New returns the destination for the file at path.
func New(path string) *Destination { return &Destination{Path: path} }

func (d *Destination) String() string { return "file://" + d.Path }

// Send appends f's record as one line and syncs the file.
func (d *Destination) Send(_ context.Context, f dispatch.Failure) error {
	b, err := record.Marshal(record.New(f))
	if err != nil {
		return fmt.Errorf("file %s: %w", d.Path, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.write(append(b, '\n')); err != nil {
		return fmt.Errorf("file %s: %w", d.Path, err)
	}
	return nil
}

func (d *Destination) write(line []byte) error {
	file, err := OpenLocked(d.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, Mode)
	if err != nil {
		return err
	}
	if cut, err := endsCut(file); err != nil {
		file.Close()
		return err
	} else if cut {
		line = append([]byte{'\n'}, line...)
	}
	if _, err := file.Write(line); err != nil {
		file.Close()
		return fmt.Errorf("append: %w", err)
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return fmt.Errorf("sync: %w", err)
	}
	return file.Close()
}

// endsCut reports whether the file ends inside a line.
func endsCut(file *os.File) (bool, error) {
	fi, err := file.Stat()
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Size() == 0 {
		return false, nil
	}
	last := make([]byte, 1)
	if _, err := file.ReadAt(last, fi.Size()-1); err != nil && err != io.EOF {
		return false, err
	}
	return last[0] != '\n', nil
}
