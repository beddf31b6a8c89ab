package checkpoint

import (
	"time"

	"github.com/shardline/shardline/shared/stream"
)

// Tracker follows one shard: the last position done and the last written.
// It does no I/O. It is not safe for concurrent use.
type Tracker struct {
	interval  time.Duration
	done      stream.Position
	written   stream.Position
	lastWrite time.Time
}

// New starts a tracker at the lease's checkpoint, written at now.
func New(interval time.Duration, from stream.Position, now time.Time) *Tracker {
	return &Tracker{interval: interval, done: from, written: from, lastWrite: now}
}

// Done records that everything up to and including p is done.
func (t *Tracker) Done(p stream.Position) { t.done = p }

// Pending returns the position to write and whether it differs from the
// last one written.
func (t *Tracker) Pending() (stream.Position, bool) { return t.done, t.done != t.written }

// Due returns the position to write if one is pending and the interval has
// passed since the last write.
func (t *Tracker) Due(now time.Time) (stream.Position, bool) {
	p, ok := t.Pending()
	if !ok || now.Sub(t.lastWrite) < t.interval {
		return stream.Position{}, false
	}
	return p, true
}

// Written records a successful write of p at now.
func (t *Tracker) Written(p stream.Position, now time.Time) {
	t.written = p
	t.lastWrite = now
}

// Last is the last position written.
func (t *Tracker) Last() stream.Position { return t.written }
