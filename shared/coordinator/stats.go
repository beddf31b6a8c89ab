package coordinator

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/stream"
)

// ShardStats is one shard's progress as this worker saw it.
type ShardStats struct {
	ShardID string // the lease key: the shard id, or account:stream:creationEpoch:shardId with several streams
	// StreamName is the shard's stream when the worker reads several
	// ("" with one: Snapshot.StreamName).
	StreamName         string
	Checkpoint         stream.Position // last written
	KinesisRecords     int64           // records read from Kinesis
	UserRecords        int64           // after de-aggregation, before the hash-range filter
	Malformed          int64           // aggregates delivered whole because they were damaged
	DroppedOutOfRange  int64           // user records outside the shard's hash range
	FilteredOut        int64           // user records the filter did not match
	Done               int64           // handler batches (or parts) reported done
	MillisBehindLatest int64
	FirstRead          time.Time
	LastRead           time.Time
	// Dispatch adds up the dispatchers of every take of the shard by this
	// worker (a shard lost and taken again keeps its counts).
	Dispatch dispatch.Stats
	Parked   string // why the shard is parked, "" when it is not
	// Fetch counts GetRecords calls and expired iterators, over every take.
	Fetch fetch.Stats
	// Mode is how the last take's records came: fetch.ModePolling or
	// fetch.ModeFanOut; "" until a take has made its publisher.
	Mode string
	Held bool // held by this worker now
}

// Totals adds up every shard's stats.
type Totals struct {
	Shards            int
	KinesisRecords    int64
	UserRecords       int64
	Records           int64 // records handed to the handler (retries count again)
	Handled           int64 // records the handler finished with, once each
	Throttles         int64
	Timeouts          int64
	Batches           int64
	Failures          int64
	GivenUp           int64
	Malformed         int64
	DroppedOutOfRange int64
	FilteredOut       int64
}

type shardStats struct {
	mu         sync.Mutex
	s          ShardStats
	prior      dispatch.Stats // the dispatchers of earlier takes
	priorFetch fetch.Stats    // the readers of earlier takes
}

func (s *shardStats) update(fn func(*ShardStats)) {
	s.mu.Lock()
	fn(&s.s)
	s.mu.Unlock()
}

func (s *shardStats) behind() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s.MillisBehindLatest
}

// handled is the records the handler finished with, and their bytes, over
// every take.
func (s *shardStats) handled() (records, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s.Dispatch.Handled, s.s.Dispatch.HandledBytes
}

func (s *shardStats) addDone() { s.update(func(x *ShardStats) { x.Done++ }) }
func (s *shardStats) setCheckpoint(p stream.Position) {
	s.update(func(x *ShardStats) { x.Checkpoint = p })
}

// setDispatch records the current take's dispatcher stats.
func (s *shardStats) setDispatch(d dispatch.Stats) {
	s.update(func(x *ShardStats) { x.Dispatch = addStats(s.prior, d) })
}

// newTake starts counting a new dispatcher and reader on top of the
// earlier ones.
func (s *shardStats) newTake() {
	s.update(func(x *ShardStats) { s.prior, s.priorFetch = x.Dispatch, x.Fetch })
}

// setFetch records the current take's reader stats.
func (s *shardStats) setFetch(f fetch.Stats) {
	s.update(func(x *ShardStats) {
		x.Fetch = s.priorFetch.Add(f)
	})
}

func (s *shardStats) setMode(m string) { s.update(func(x *ShardStats) { x.Mode = m }) }

func (s *shardStats) addFiltered(n int64) { s.update(func(x *ShardStats) { x.FilteredOut += n }) }

func (s *shardStats) setParked(reason string) {
	s.update(func(x *ShardStats) { x.Parked = reason })
}

func addStats(a, b dispatch.Stats) dispatch.Stats { return a.Add(b) }
func (s *shardStats) addRead(k kpl.Stats, behind int64) {
	s.update(func(x *ShardStats) {
		x.KinesisRecords += int64(k.Records)
		x.UserRecords += int64(k.UserRecords)
		x.Malformed += int64(k.Malformed)
		x.DroppedOutOfRange += int64(k.DroppedOutOfRange)
		x.MillisBehindLatest = behind
		x.LastRead = time.Now()
		if x.FirstRead.IsZero() {
			x.FirstRead = x.LastRead
		}
	})
}

// Stats returns a snapshot of every shard this worker has read, by shard id.
func (w *Worker) Stats() []ShardStats {
	w.mu.Lock()
	all := slices.Collect(maps.Values(w.stats))
	w.mu.Unlock()
	out := make([]ShardStats, 0, len(all))
	for _, s := range all {
		s.mu.Lock()
		out = append(out, s.s)
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b ShardStats) int { return strings.Compare(a.ShardID, b.ShardID) })
	return out
}

// Totals adds up Stats.
func (w *Worker) Totals() Totals {
	var t Totals
	for _, s := range w.Stats() {
		t.Shards++
		t.KinesisRecords += s.KinesisRecords
		t.UserRecords += s.UserRecords
		t.Records += s.Dispatch.Records
		t.Handled += s.Dispatch.Handled
		t.Throttles += s.Dispatch.Throttles
		t.Timeouts += s.Dispatch.Timeouts
		t.Batches += s.Dispatch.Batches
		t.Failures += s.Dispatch.Failures
		t.GivenUp += s.Dispatch.GivenUp
		t.Malformed += s.Malformed
		t.DroppedOutOfRange += s.DroppedOutOfRange
		t.FilteredOut += s.FilteredOut
	}
	return t
}

// Summary is what a run did, as the scheduled poller function returns it.
type Summary struct {
	WorkerID       string    `json:"workerId"`
	Shards         []string  `json:"shards"`     // shards read
	HeldAtStop     []string  `json:"heldAtStop"` // shards held when the run stopped
	KinesisRecords int64     `json:"kinesisRecords"`
	Records        int64     `json:"records"` // user records handed to the handler, retries included
	Handled        int64     `json:"handled"` // user records the handler finished with, once each
	Throttles      int64     `json:"throttles"`
	Timeouts       int64     `json:"timeouts"`
	Batches        int64     `json:"batches"`
	Failures       int64     `json:"failures"` // failed handler calls (errors or batchItemFailures)
	GivenUp        int64     `json:"givenUp"`  // records sent to the on-failure destination
	FilteredOut    int64     `json:"filteredOut"`
	FirstRead      time.Time `json:"firstRead,omitzero"`
	LastRead       time.Time `json:"lastRead,omitzero"`
	StoppedBecause string    `json:"stoppedBecause,omitempty"`
	// Parked lists the shards parked when the run stopped: they could not
	// go on and are retried with back-off (or at once after poller resume).
	Parked []ParkedShard `json:"parked,omitempty"`
}

// ParkedShard is a parked shard, as the lease table says.
type ParkedShard struct {
	ShardID string    `json:"shardId"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	RetryAt time.Time `json:"retryAt"`
	Times   int64     `json:"times"`
}

// Summary adds up what this worker did.
func (w *Worker) Summary() Summary {
	w.mu.Lock()
	held := slices.Sorted(slices.Values(w.heldAtStop))
	var parked []ParkedShard
	for k, p := range w.parked {
		parked = append(parked, ParkedShard{ShardID: k, Reason: p.Reason, Since: p.Since, RetryAt: p.Until, Times: p.Count})
	}
	w.mu.Unlock()
	slices.SortFunc(parked, func(a, b ParkedShard) int { return strings.Compare(a.ShardID, b.ShardID) })
	s := Summary{WorkerID: w.cfg.WorkerID, Shards: []string{}, HeldAtStop: append([]string{}, held...), Parked: parked}
	for _, st := range w.Stats() {
		s.Shards = append(s.Shards, st.ShardID)
		s.KinesisRecords += st.KinesisRecords
		s.Records += st.Dispatch.Records
		s.Handled += st.Dispatch.Handled
		s.Throttles += st.Dispatch.Throttles
		s.Timeouts += st.Dispatch.Timeouts
		s.Batches += st.Dispatch.Batches
		s.Failures += st.Dispatch.Failures
		s.GivenUp += st.Dispatch.GivenUp
		s.FilteredOut += st.FilteredOut
		if !st.FirstRead.IsZero() && (s.FirstRead.IsZero() || st.FirstRead.Before(s.FirstRead)) {
			s.FirstRead = st.FirstRead
		}
		if st.LastRead.After(s.LastRead) {
			s.LastRead = st.LastRead
		}
	}
	return s
}

// counters are the worker's own, for Snapshot.
type counters struct {
	takenLeases, lostLeases              atomic.Int64
	checkpointWrites, checkpointFailures atomic.Int64
	unowned                              atomic.Int64 // gauge: leases with no live owner after the last round
	renewAll                             metrics.Hist
}

// countCheckpoint counts a checkpoint write's outcome and returns err.
func (w *Worker) countCheckpoint(err error) error {
	if err == nil {
		w.counters.checkpointWrites.Add(1)
	} else if !errors.Is(err, lease.ErrLeaseLost) {
		w.counters.checkpointFailures.Add(1)
	}
	return err
}

// Snapshot is what a worker did so far, cumulative, for metric backends
// (shared/telemetry): KCL's worker and per-shard metrics and Lambda's
// event source mapping metrics are derived from it.
type Snapshot struct {
	Time       time.Time
	WorkerID   string
	StreamName string
	AppName    string
	Level      metrics.Level
	// Ready is true once the worker has read the lease table and taken its
	// first round of leases; Stopped once Run has returned.
	Ready   bool
	Stopped bool

	CurrentLeases      int64 // gauge
	TakenLeases        int64
	LostLeases         int64 // lost to another worker, or expired
	CheckpointWrites   int64
	CheckpointFailures int64
	ParkedShards       int64 // gauge: parked in the table as last seen
	// UnownedShards is a gauge: readable leases with no live owner after
	// the last round (a worker between rounds, or shards no worker may
	// take: every one at its -max-leases).
	UnownedShards  int64
	RenewAllLeases metrics.HistSnapshot

	Shards []ShardStats // every shard this worker has read, held or not
}

// Snapshot reads the worker's counters. It is safe to call at any time,
// from any goroutine.
func (w *Worker) Snapshot() Snapshot {
	s := Snapshot{
		Time: time.Now(), WorkerID: w.cfg.WorkerID, StreamName: w.cfg.StreamName, AppName: w.cfg.AppName,
		Level: w.cfg.MetricsLevel, Ready: w.ready.Load(), Stopped: w.stopped.Load(),
		TakenLeases: w.counters.takenLeases.Load(), LostLeases: w.counters.lostLeases.Load(), UnownedShards: w.counters.unowned.Load(),
		CheckpointWrites: w.counters.checkpointWrites.Load(), CheckpointFailures: w.counters.checkpointFailures.Load(),
		RenewAllLeases: w.counters.renewAll.Snapshot(),
	}
	w.mu.Lock()
	s.CurrentLeases = int64(len(w.held))
	s.ParkedShards = int64(len(w.parked))
	held := make(map[string]bool, len(w.held))
	for k := range w.held {
		held[k] = true
	}
	w.mu.Unlock()
	s.Shards = w.Stats()
	for i := range s.Shards {
		s.Shards[i].Held = held[s.Shards[i].ShardID]
	}
	return s
}
