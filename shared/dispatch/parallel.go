package dispatch

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"

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
// of one key stay in order. done reports, in shard order, the last position
// before which every record of every lane is done: the checkpoint never
// passes a record that a lane has not finished. In-flight calls per shard
// are at most N. It is not safe for concurrent use.
type Parallel struct {
	lanes []*Dispatcher
}

// NewParallel returns a Parallel of n lanes (2–10) with cfg each.
func NewParallel(cfg Config, n int) (*Parallel, error) {
	p := &Parallel{lanes: make([]*Dispatcher, n)}
	for i := range p.lanes {
		d, err := New(cfg)
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

// Lane is the lane a partition key belongs to among n.
func Lane(partitionKey string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(partitionKey))
	return int(h.Sum32() % uint32(n))
}

// Deliver splits recs into lanes by partition key and delivers the lanes
// at once. It returns when every lane is done or stopped: nil when all
// records are done; the first lane's error other than ErrStopping (a
// *GiveUpError, ctx's cause), after the other lanes finished their batch
// in flight; or ErrStopping when stop was closed or Deadline came.
func (p *Parallel) Deliver(ctx context.Context, stop <-chan struct{}, recs []stream.Record, done func(stream.Position)) error {
	n := len(p.lanes)
	// index[l] lists the shard-order indexes of lane l's records.
	index := make([][]int, n)
	for i := range recs {
		l := Lane(recs[i].PartitionKey, n)
		index[l] = append(index[l], i)
	}
	var (
		mu       sync.Mutex
		next     = make([]int, n) // per lane: how many of its records are done
		reported = 0              // records done in shard order, as reported
	)
	// firstOpen is the shard-order index of the first record not done.
	firstOpen := func() int {
		m := len(recs)
		for l := range n {
			if next[l] < len(index[l]) {
				m = min(m, index[l][next[l]])
			}
		}
		return m
	}
	laneStop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(laneStop) }) }
	watchDone := make(chan struct{})
	defer close(watchDone)
	go func() {
		select {
		case <-stop:
			halt()
		case <-watchDone:
		}
	}()

	errs := make([]error, n)
	var wg sync.WaitGroup
	for l := range n {
		if len(index[l]) == 0 {
			continue
		}
		lane := make([]stream.Record, len(index[l]))
		for k, i := range index[l] {
			lane[k] = recs[i]
		}
		wg.Go(func() {
			laneDone := func(pos stream.Position) {
				mu.Lock()
				defer mu.Unlock()
				for next[l] < len(lane) && !lane[next[l]].Position().After(pos) {
					next[l]++
				}
				if f := firstOpen(); f > reported {
					reported = f
					done(recs[f-1].Position())
				}
			}
			err := p.lanes[l].Deliver(ctx, laneStop, lane, laneDone)
			if err != nil {
				errs[l] = err
				halt() // the other lanes finish their batch in flight
			}
		})
	}
	wg.Wait()
	var stopping error
	for _, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, ErrStopping):
			if stopping == nil {
				stopping = err
			}
		default:
			return err
		}
	}
	return stopping
}
