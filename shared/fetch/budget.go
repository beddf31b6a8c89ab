package fetch

import (
	"context"
	"sync"
)

// Budget bounds the bytes of Kinesis answers a worker's shards hold at
// once: for enhanced fan-out, the subscription events read and not yet
// handed on (polling bounds each read's size instead). A reader takes an
// event's size from it before reading the event (what waits is left in
// the connection's flow-control window, at Kinesis) and gives it back
// when the next event is asked for. An event larger than the whole budget
// takes all of it. Safe for concurrent use.
type Budget struct {
	mu   sync.Mutex
	free int64
	max  int64
	wake chan struct{} // closed when bytes are given back
}

// NewBudget returns a budget of n bytes (at least 1).
func NewBudget(n int64) *Budget {
	n = max(n, 1)
	return &Budget{free: n, max: n, wake: make(chan struct{})}
}

// take takes n bytes (at most the whole budget), waiting until they are
// free or ctx ends; it returns what it took.
func (b *Budget) take(ctx context.Context, n int64) (int64, error) {
	if b == nil {
		return 0, nil
	}
	n = min(n, b.max)
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return n, nil
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
}

// give gives back n bytes taken.
func (b *Budget) give(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}
