package dispatch

import (
	"context"
	"fmt"

	"github.com/shardline/shardline/shared/stream"
)

// Deliverer hands a shard's records to the handler: a Dispatcher (one
// batch in flight) or a Parallel (up to N, one per partition-key lane).
// Stats may be read only between Deliver calls.
type Deliverer interface {
	Deliver(ctx context.Context, stop <-chan struct{}, recs []stream.Record, done func(stream.Position)) error
	Stats() Stats
}

var (
	_ Deliverer = (*Dispatcher)(nil)
	_ Deliverer = (*Parallel)(nil)
)

// NewDeliverer returns a Dispatcher for a parallelization factor of 1 (or
// less), and a Parallel of that many lanes above.
func NewDeliverer(cfg Config, factor int) (Deliverer, error) {
	if factor <= 1 {
		return New(cfg)
	}
	return NewParallel(cfg, factor)
}

// Parallel delivers one shard's records in up to N batches at once, as
// Lambda's ParallelizationFactor does, but by the partition key of each
// user record (Lambda's own cannot see inside a KPL aggregate): every key
// belongs to one lane, a lane delivers its records in order with a
// Dispatcher of its own (retries, bisect, give-up as usual), so the records
// of one key stay in order. It is Lanes for one slice of records: the lanes
// do not wait for each other within it, and Deliver returns when all are
// done. done reports, in shard order, the last position before which every
// record of every lane is done: the checkpoint never passes a record that a
// lane has not finished. In-flight calls per shard are at most N. A shard's
// reader uses Lanes itself, so that lanes go on across reads. Parallel is
// not safe for concurrent use.
type Parallel struct {
	lanes []*Dispatcher
}

// NewParallel returns a Parallel of n lanes (2–10) with cfg each.
func NewParallel(cfg Config, n int) (*Parallel, error) {
	if n < 1 || n > 10 {
		return nil, fmt.Errorf("parallelization-factor %d: allowed 1–10", n)
	}
	p := &Parallel{lanes: make([]*Dispatcher, n)}
	for i := range p.lanes {
		c := cfg
		if c.Logger != nil {
			c.Logger = c.Logger.With("lane", i)
		}
		d, err := New(c)
		if err != nil {
			return nil, err
		}
		p.lanes[i] = d
	}
	return p, nil
}

// Stats adds up the lanes' counts.
func (p *Parallel) Stats() Stats {
	var s Stats
	for _, d := range p.lanes {
		s = s.Add(d.Stats())
	}
	return s
}

// Add returns the sum of two Stats.
func (s Stats) Add(o Stats) Stats {
	s.Batches += o.Batches
	s.Records += o.Records
	s.Handled += o.Handled
	s.Failures += o.Failures
	s.Retries += o.Retries
	s.GivenUp += o.GivenUp
	s.Throttles += o.Throttles
	s.NotInvoked += o.NotInvoked
	s.Timeouts += o.Timeouts
	s.HandledBytes += o.HandledBytes
	s.FailedRecords += o.FailedRecords
	s.DestinationFailures += o.DestinationFailures
	s.HandlerTime = s.HandlerTime.Add(o.HandlerTime)
	return s
}

// Deliver hands recs to the lanes and waits until every record is done or
// the lanes stop: nil when all records are done; the first lane's error
// other than ErrStopping (a *GiveUpError, ctx's cause), after the other
// lanes finished their batch in flight; or ErrStopping when stop was closed
// or Deadline came.
func (p *Parallel) Deliver(ctx context.Context, stop <-chan struct{}, recs []stream.Record, done func(stream.Position)) error {
	l, err := startLanes(ctx, stop, p.lanes, LanesConfig{Done: done})
	if err != nil {
		return err
	}
	err = l.Add(recs, stream.Position{})
	if err == nil {
		err = l.Flush()
	}
	if cerr := l.Close(); cerr != nil {
		return cerr
	}
	return err
}
