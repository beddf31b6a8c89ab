package replay

import (
	"context"
	"sync"
	"time"
)

// Limiter caps user records per second across the readers that share it.
// Records are let through at the start of the time slot they take: over
// any span T at most Rate*T records plus one chunk pass. Safe for
// concurrent use.
type Limiter struct {
	mu   sync.Mutex
	per  time.Duration // time one record takes
	next time.Time     // when the next slot begins
}

// NewLimiter returns a limiter of rate records per second; nil for
// rate <= 0 (no cap; a nil *Limiter's Wait returns at once).
func NewLimiter(rate float64) *Limiter {
	if rate <= 0 {
		return nil
	}
	return &Limiter{per: time.Duration(float64(time.Second) / rate)}
}

// Wait waits until n records may pass, or ctx ends (its cause).
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := time.Now()
	start := now
	if l.next.After(now) {
		start = l.next
	}
	l.next = start.Add(time.Duration(n) * l.per)
	l.mu.Unlock()
	d := start.Sub(now)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
