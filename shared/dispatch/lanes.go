package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shardline/shardline/shared/stream"
)

// LanesConfig sets Lanes up besides the Dispatcher's Config each lane has.
type LanesConfig struct {
	// Factor is how many lanes (and so handler calls in flight) the shard
	// has: 1–10.
	Factor int
	// Ahead bounds what the lanes hold of records added and not yet done,
	// in bytes as RecordCost counts them: Add waits while they hold that
	// much (so they hold at most Ahead plus one Add's records). 0 or less:
	// no bound. SetAhead changes it.
	Ahead int
	// MaxBatchingWindow is how long a lane waits to fill a batch (to
	// BatchSize records or MaxBatchBytes of data) before it calls with
	// what it has; the wait begins when the lane is free and has a record.
	// 0: a free lane calls at once with what it has. Flush ends the waits,
	// and so does Add while it waits for room (no more records can come).
	// A reader with lanes does not wait for the window itself.
	MaxBatchingWindow time.Duration
	// Done is called with the position before which every record added
	// is done (handled, or given up to the on-failure destination), each
	// time it moves on: in increasing order, one call at a time, from the
	// lanes' goroutines or from Add. Required.
	Done func(stream.Position)
}

// Lanes delivers one shard's records to the handler in up to Factor calls
// at once, as Lambda's ParallelizationFactor does, with lanes that do not
// wait for each other. Each user record belongs to the lane of its
// partition key (Lane), so the records of one key stay in order; each lane
// forms its own batches and runs them through a Dispatcher of its own
// (retries, bisect, partial failures, record age, give-ups, deadlines).
//
// The shard's reader calls Add with the records it reads, in shard order;
// Add returns as soon as they are queued, and waits only while the lanes
// hold Ahead bytes of records not done, so the reader keeps reading ahead
// while a slow lane works through its calls and the others go on with
// theirs. Done reports the watermark: the position before the lowest
// record, over all lanes, that is not done, so a checkpoint taken from it
// never passes a record a lane has not finished.
//
// When a lane fails (a *GiveUpError, ctx's cause, ErrStopping at the
// Deadline), the other lanes finish their call in flight and take no new
// batch; Add and Flush then return the error. Close stops the lanes the
// same way and waits for them: after it returns no handler call starts and
// Done is not called. Add, Flush and Close are called from one goroutine
// (the shard's); Stats and SetAhead from any.
type Lanes struct {
	cfg      Config
	window   time.Duration
	done     func(stream.Position)
	ctx      context.Context
	stop     <-chan struct{}
	halt     chan struct{} // closed when the lanes stop: stop closed, a lane failed, or Close
	haltOnce sync.Once
	closed   chan struct{} // ends the goroutine that watches stop
	wg       sync.WaitGroup
	ahead    atomic.Int64

	mu       sync.Mutex
	lanes    []*lane
	next     uint64          // the shard-order index of the next record added
	through  stream.Position // the last position added (a record's, or Add's through)
	held     int64           // RecordCost of the records queued and not done
	flushing bool            // no batching window: the shard ended
	cutting  bool            // Cut: each lane delivers what it holds, one batch, then stops
	full     bool            // no batching window: Add waits for room
	errs     []error         // the lanes' errors, in the order they came
	room     chan struct{}   // one slot: records were done, or a lane stopped

	report   sync.Mutex // one Done call at a time, in increasing order
	reported stream.Position
}

// lane is one lane's queue and state. Its records are q[head:], in shard
// order: q[head:head+busy] are in the lane's call, the rest wait. A lane
// with no records has no goroutine (a worker may hold 100 shards of 10
// lanes, most of them idle).
type lane struct {
	d     *Dispatcher
	q     []queued
	head  int
	busy  int
	bytes int       // data of the waiting records, for MaxBatchBytes
	since time.Time // when the batching window of the waiting records began
	wake  chan struct{}
	stats Stats // the Dispatcher's, as of its last done or return
	err   error
	// running: the lane has a goroutine, started by Add when it gives an
	// idle lane records; it ends when the lane has none left.
	running bool
	// cutTaken: after Cut, the lane took the one batch it delivers.
	cutTaken bool
}

// compact moves the lane's records to the front of its queue (the call
// has its own copy of its batch); l.mu is held.
func (ln *lane) compact() {
	n := copy(ln.q, ln.q[ln.head:])
	clear(ln.q[n:])
	ln.q, ln.head = ln.q[:n], 0
}

// queued is a record in a lane, with its place in the shard: idx orders
// records across lanes, prev is the position of the record added before it
// (everything up to prev is done once every record before this one is).
type queued struct {
	rec  stream.Record
	idx  uint64
	prev stream.Position
}

// recordOverhead is what a queued record costs besides its data and key.
const recordOverhead = int64(unsafe.Sizeof(queued{}))

// RecordCost is what a record held in a lane counts against
// LanesConfig.Ahead: the lane's copy of it, its data and its partition key
// (which share the GetRecords answer's buffer they keep alive).
func RecordCost(r *stream.Record) int64 {
	return recordOverhead + int64(len(r.Data)+len(r.PartitionKey))
}

// NewLanes starts lc.Factor lanes for one shard. Their handler calls
// derive from ctx; closing stop lets each lane finish its call in flight
// and take no new batch (a drain).
func NewLanes(ctx context.Context, stop <-chan struct{}, cfg Config, lc LanesConfig) (*Lanes, error) {
	if lc.Factor < 1 || lc.Factor > 10 {
		return nil, fmt.Errorf("parallelization-factor %d: allowed 1–10", lc.Factor)
	}
	ds := make([]*Dispatcher, lc.Factor)
	for i := range ds {
		c := cfg
		if c.Logger != nil && lc.Factor > 1 {
			c.Logger = c.Logger.With("lane", i)
		}
		d, err := New(c)
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	return startLanes(ctx, stop, ds, lc)
}

func startLanes(ctx context.Context, stop <-chan struct{}, ds []*Dispatcher, lc LanesConfig) (*Lanes, error) {
	if lc.Done == nil {
		return nil, errors.New("dispatch: lanes need a done function")
	}
	if len(ds) < 1 || len(ds) > 10 {
		return nil, fmt.Errorf("parallelization-factor %d: allowed 1–10", len(ds))
	}
	l := &Lanes{
		cfg: ds[0].cfg, window: lc.MaxBatchingWindow, done: lc.Done, ctx: ctx, stop: stop,
		halt: make(chan struct{}), closed: make(chan struct{}), room: make(chan struct{}, 1),
		lanes: make([]*lane, len(ds)),
	}
	l.ahead.Store(int64(lc.Ahead))
	for i, d := range ds {
		l.lanes[i] = &lane{d: d, wake: make(chan struct{}, 1), stats: d.Stats()}
	}
	if stop != nil {
		go func() {
			select {
			case <-stop:
				l.stopLanes()
			case <-l.closed:
			}
		}()
	}
	return l, nil
}

// SetAhead changes the bound on what the lanes hold (LanesConfig.Ahead).
func (l *Lanes) SetAhead(bytes int) { l.ahead.Store(int64(bytes)) }

// Lane is the lane a partition key belongs to among n: FNV-32a of the key,
// modulo n.
func Lane(partitionKey string, n int) int {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(partitionKey); i++ {
		h ^= uint32(partitionKey[i])
		h *= prime
	}
	return int(h % uint32(n))
}

// Add queues recs, which follow what was added before in shard order, each
// in its key's lane. through, when set, is the position everything read so
// far ends at, at or after the last of recs: records between that the
// reader dropped (filtered out, outside the hash range) are done once the
// records before them are. Add waits first, when it has records, while
// the lanes hold Ahead bytes or more. It returns the first lane's error
// once a lane has failed (then call Close), ErrStopping once stop is
// closed, or ctx's cause.
func (l *Lanes) Add(recs []stream.Record, through stream.Position) error {
	l.mu.Lock()
	for {
		if err := l.stopped(); err != nil {
			l.mu.Unlock()
			return err
		}
		if a := l.ahead.Load(); a <= 0 || l.held < a || len(recs) == 0 {
			break
		}
		if !l.full {
			// No lane gets more records until some are done: none
			// waits for its batching window to fill a batch.
			l.full = true
			for _, ln := range l.lanes {
				signal(ln.wake)
			}
		}
		l.mu.Unlock()
		l.waitRoom()
		l.mu.Lock()
	}
	l.full = false
	var woken uint16 // lanes given records, to wake (startLanes: at most 10)
	var now time.Time
	n := len(l.lanes)
	for i := range recs {
		r := &recs[i]
		k := 0
		if n > 1 {
			k = Lane(r.PartitionKey, n)
		}
		ln := l.lanes[k]
		if l.window > 0 {
			if len(ln.q)-ln.head == ln.busy { // no record waits: the window begins
				if now.IsZero() {
					now = time.Now()
				}
				ln.since = now
			}
			ln.bytes += len(r.Data)
		}
		if len(ln.q) == cap(ln.q) && ln.head > 0 {
			ln.compact() // room at the front: no need to grow
		}
		ln.q = append(ln.q, queued{rec: *r, idx: l.next, prev: l.through})
		l.next++
		l.through = r.Position()
		l.held += RecordCost(r)
		woken |= 1 << k
	}
	if through.Seq != "" && !through.IsSentinel() && (l.through.Seq == "" || through.After(l.through)) {
		l.through = through
	}
	for k := range n {
		if woken&(1<<k) == 0 {
			continue
		}
		if ln := l.lanes[k]; !ln.running {
			ln.running = true
			l.wg.Go(func() { l.run(ln) })
		} else {
			signal(ln.wake)
		}
	}
	mark := l.mark()
	l.mu.Unlock()
	l.reportMark(mark)
	return nil
}

// Flush waits until every record added is done and reported to Done,
// with no batching window from now on (the shard has ended). It returns
// what Add returns when the lanes stop first.
func (l *Lanes) Flush() error {
	l.mu.Lock()
	l.flushing = true
	for _, ln := range l.lanes {
		signal(ln.wake)
	}
	for {
		if err := l.stopped(); err != nil {
			l.mu.Unlock()
			return err
		}
		empty := true
		for _, ln := range l.lanes {
			empty = empty && ln.head == len(ln.q)
		}
		if empty {
			// The lane that let the last record go may not have
			// reported it yet: Done has the end when Flush returns.
			mark := l.mark()
			l.mu.Unlock()
			l.reportMark(mark)
			return nil
		}
		l.mu.Unlock()
		l.waitRoom()
		l.mu.Lock()
	}
}

// Cut ends the lanes' batching windows as a drain ends a shard's: each
// lane delivers the batch it holds now (one call, at most BatchSize
// records; none when it holds none), whatever stop says, and takes no
// more. It waits for those calls, which stay within the dispatchers'
// Deadline and HandlerTimeout. Records past them stay to do. Call Close
// after it.
func (l *Lanes) Cut() {
	l.mu.Lock()
	l.cutting = true
	for _, ln := range l.lanes {
		if len(ln.q) > ln.head && !ln.running {
			ln.running = true
			l.wg.Go(func() { l.run(ln) })
		} else {
			signal(ln.wake)
		}
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// Close stops the lanes: each finishes its call in flight (with its
// retries' back-off cut short) and takes no new batch; then it waits for
// them. It returns the first lane error other than ErrStopping (a
// *GiveUpError, ctx's cause, a destination's refusal), else the first
// ErrStopping a lane returned (the Deadline came, or stop was closed during
// a back-off), else nil. Records not reported done stay to do. Close may be
// called more than once.
func (l *Lanes) Close() error {
	l.stopLanes()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	var stopping error
	for _, err := range l.errs {
		if !errors.Is(err, ErrStopping) {
			return err
		}
		if stopping == nil {
			stopping = err
		}
	}
	return stopping
}

// Stats adds up the lanes' counts, as of each lane's last record done or
// call returned. It is safe to call at any time.
func (l *Lanes) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s Stats
	for _, ln := range l.lanes {
		s = s.Add(ln.stats)
	}
	return s
}

// stopped is why Add and Flush cannot go on, or nil; l.mu is held.
func (l *Lanes) stopped() error {
	if len(l.errs) > 0 {
		return l.errs[0]
	}
	select {
	case <-l.stop:
		return ErrStopping
	case <-l.halt: // closed
		return ErrStopping
	default:
	}
	if l.ctx.Err() != nil {
		return context.Cause(l.ctx)
	}
	return nil
}

// waitRoom waits until a lane lets records go or stops, or stop or ctx
// ends.
func (l *Lanes) waitRoom() {
	select {
	case <-l.room:
	case <-l.halt:
	case <-l.stop:
	case <-l.ctx.Done():
	}
}

func (l *Lanes) stopLanes() { l.haltOnce.Do(func() { close(l.halt) }) }

// signal wakes whoever waits on a one-slot channel, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// mark is the watermark: the position before the lowest record not done,
// or the last position added when every record is done; l.mu is held.
func (l *Lanes) mark() stream.Position {
	var low *queued
	for _, ln := range l.lanes {
		if ln.head < len(ln.q) {
			if q := &ln.q[ln.head]; low == nil || q.idx < low.idx {
				low = q
			}
		}
	}
	if low == nil {
		return l.through
	}
	return low.prev
}

// reportMark calls Done with p if p is past what was reported. Marks are
// taken under l.mu and reported after it, so one may come after a later
// one: it is then already covered, and dropped.
func (l *Lanes) reportMark(p stream.Position) {
	if p.IsSentinel() {
		return
	}
	l.report.Lock()
	defer l.report.Unlock()
	if l.reported.Seq != "" && !p.After(l.reported) {
		return
	}
	l.reported = p
	l.done(p)
}

// run is one lane's goroutine: take a batch, deliver it, until the lanes
// stop or the lane fails.
func (l *Lanes) run(ln *lane) {
	laneDone := func(p stream.Position) { l.laneDone(ln, p) }
	var buf []stream.Record // the goroutine's: an idle lane keeps none
	for {
		batch, ok := l.take(ln, buf)
		if !ok {
			return
		}
		buf = batch
		stop := l.halt
		l.mu.Lock()
		if l.cutting {
			stop = nil // Cut's batch: the call in flight of a drain
		}
		l.mu.Unlock()
		err := ln.d.Deliver(l.ctx, stop, batch, laneDone)
		stats := ln.d.Stats()
		l.mu.Lock()
		ln.stats = stats
		ln.busy = 0 // what is left of the batch (after an error) is not done
		if err != nil {
			ln.err = err
			l.errs = append(l.errs, err)
			ln.running = false
		} else if len(ln.q) > ln.head && l.window > 0 {
			ln.since = time.Now() // the next batch's window begins
		}
		l.mu.Unlock()
		if err != nil {
			l.stopLanes() // the other lanes finish their call in flight
			signal(l.room)
			return
		}
	}
}

// take returns a copy of the lane's next batch (in buf if it fits), once
// its batching window allows; false when the lane has no records left
// (its goroutine ends) or the lanes stop (or ctx ends) first.
func (l *Lanes) take(ln *lane, buf []stream.Record) ([]stream.Record, bool) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.cutting {
			// A drain ended the windows (Cut): the batch the lane holds
			// is delivered now, once, whatever stop says.
			waiting := len(ln.q) - ln.head
			if ln.cutTaken || waiting == 0 || l.ctx.Err() != nil {
				ln.running = false
				return nil, false
			}
			ln.cutTaken = true
			n := min(waiting, l.cfg.BatchSize)
			batch := make([]stream.Record, n)
			for i := range batch {
				batch[i] = ln.q[ln.head+i].rec
				if l.window > 0 {
					ln.bytes -= len(batch[i].Data)
				}
			}
			ln.busy = n
			return batch, true
		}
		select {
		case <-l.halt:
			ln.running = false
			return nil, false
		case <-l.stop: // before the goroutine that watches it halts the lanes
			ln.running = false
			return nil, false
		default:
		}
		waiting := len(ln.q) - ln.head
		if l.ctx.Err() != nil || waiting == 0 {
			ln.running = false // Add starts another when it has records
			return nil, false
		}
		size := l.cfg.BatchSize
		wait := time.Duration(0)
		if l.window > 0 && !l.flushing && !l.full && waiting < size && (l.cfg.MaxBatchBytes <= 0 || ln.bytes < l.cfg.MaxBatchBytes) {
			wait = l.window - time.Since(ln.since)
		}
		if wait <= 0 {
			// A copy in buf, so that q may move meanwhile.
			n := min(waiting, size)
			batch := buf[:0]
			if cap(batch) < n {
				batch = make([]stream.Record, 0, max(n, min(2*cap(batch), size)))
			}
			batch = batch[:n]
			for i := range batch {
				batch[i] = ln.q[ln.head+i].rec
				if l.window > 0 {
					ln.bytes -= len(batch[i].Data)
				}
			}
			ln.busy = n
			return batch, true
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		l.mu.Unlock()
		select { // the window ends, more records come, or the lanes stop
		case <-ln.wake:
		case <-l.halt:
		case <-l.ctx.Done():
		case <-timer.C:
		}
		l.mu.Lock()
	}
}

// laneDone is a lane's Dispatcher reporting its records up to p done: they
// leave the lane, and the watermark may move.
func (l *Lanes) laneDone(ln *lane, p stream.Position) {
	stats := ln.d.Stats()
	l.mu.Lock()
	ln.stats = stats
	for ln.busy > 0 && !ln.q[ln.head].rec.Position().After(p) {
		l.held -= RecordCost(&ln.q[ln.head].rec)
		ln.q[ln.head] = queued{}
		ln.head++
		ln.busy--
	}
	if ln.head == len(ln.q) {
		// Empty: a queue larger than the lane's share of the bound is let
		// go (a worker may hold a thousand lanes, most of them idle); up
		// to it, it is kept for reuse.
		if int64(cap(ln.q))*recordOverhead > l.ahead.Load()/int64(len(l.lanes)) {
			ln.q = nil
		}
		ln.q, ln.head = ln.q[:0], 0
	} else if ln.head >= 256 && 2*ln.head >= len(ln.q) {
		ln.compact()
	}
	mark := l.mark()
	l.mu.Unlock()
	signal(l.room)
	l.reportMark(mark)
}
