package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/balance"
	"github.com/shardline/shardline/shared/fetch"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/stream"
)

// ErrLeaseExpired is the cause a shard is cancelled with when its lease
// could not be renewed for the failover time: another worker may own it.
var ErrLeaseExpired = errors.New("lease not renewed within the failover time")

// DuplicateWorkerError says that another process runs with this worker's
// id: it renews a lease under the same owner name with another process
// nonce. The process that started later stops with it.
type DuplicateWorkerError struct {
	WorkerID string
	ShardID  string // a lease the other process renews
}

func (e *DuplicateWorkerError) Error() string {
	return fmt.Sprintf("another process runs with worker id %q (it renews the lease of %s): give each process its own -worker-id, or leave it unset", e.WorkerID, e.ShardID)
}

// DrainError says that the drain did not finish in time: the handler calls
// on these shards had not returned. Their leases were released at the last
// position done, so the next owner delivers the unfinished batch again.
type DrainError struct {
	Shards  []string
	Timeout time.Duration
}

func (e *DrainError) Error() string {
	return fmt.Sprintf("drain did not finish within %s: the handler call on %s had not returned; released at the last position done (the next owner delivers that batch again)",
		e.Timeout, strings.Join(e.Shards, ", "))
}

// Worker is one lease owner reading a stream. Create it with New and call
// Run once.
// memoKeys is how many partition keys the filters of a worker's shards
// remember together (kpl.Filter: ~80 bytes a key, ~1.3 MB), so that the
// memo stays bounded however many shards are held: 512 a shard up to 32
// shards, fewer past that.
const memoKeys = 16384

type Worker struct {
	cfg       Config
	log       *slog.Logger
	table     *lease.Table
	names     []string      // the streams read (Config.StreamName's list)
	multiMode bool          // a multi-stream application (MultiStream)
	streams   []*streamInfo // in names' order, as Check described them
	checked   bool          // Check succeeded
	observer  *balance.Observer
	started   time.Time
	nonce     string // this process's: start time in ms, then random

	// subscribe starts the fan-out subscriptions.
	subscribe fetch.SubscribeFunc

	reads     fetch.KinesisAPI  // GetShardIterator and GetRecords: over CBOR for an SDK client
	keys      *kpl.KeyBudget    // partition keys the shards' filters may remember together
	badSeen   map[string]string // lease items that do not decode: key -> problem logged
	noted     map[string]string // multi-stream lease keys and handoffs (key -> owners) logged, once each
	dupWarned bool

	// lead is this worker's part in the leadership; pending the leases
	// found under its name and not yet taken (handed off to it, or given
	// it), read until they may be taken; foreign the counters of those
	// under its name with another process's nonce (Run's goroutine).
	lead        leaderState
	pending     map[string]bool
	foreign     map[string]int64
	noIndexSaid bool

	mu    sync.Mutex
	held  map[string]*held
	ended map[string]bool // shards read to their end, never read again
	// listed is the shards of the last stream listing (nil before one):
	// an ended lease without children is cleaned up once its shard is
	// no longer listed (trimmed, or never there).
	listed map[string]bool
	// goneStreams are the streams of the list that ListShards says do not
	// exist (deleted), by stream id: their leases are a former stream's.
	goneStreams map[string]bool
	// heldAtStop lists the shards held when the drain began.
	heldAtStop []string
	stats      map[string]*shardStats
	parked     map[string]lease.Park // parked leases as last seen in the table

	heldCount atomic.Int64 // shards being consumed, for the read budget
	counters  counters
	ready     atomic.Bool // the first lease round is done
	stopped   atomic.Bool // Run has returned
	wg        sync.WaitGroup
	draining  chan struct{}
	syncNow   chan struct{}
	fatal     chan error
}

// New validates cfg, fills its defaults and returns a worker.
func New(cfg Config) (*Worker, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	started := time.Now()
	nonce := fmt.Sprintf("%d-%s", started.UnixMilli(), randomHex(4))
	log := cfg.Logger.With("worker", cfg.WorkerID)
	// GetRecords in CBOR, or in JSON for an endpoint that refuses CBOR
	// (found out once for the worker) or with AWS_CBOR_DISABLE=true.
	var reads fetch.KinesisAPI = cfg.Kinesis
	subscribe := cfg.SubscribeFunc
	if c, ok := cfg.Kinesis.(*kinesis.Client); ok {
		cc := fetch.NewClient(c, fetch.ClientConfig{JSON: fetch.CBORDisabled(), Logger: log, SubscribeHTTP: subscribeHTTP(c, cfg.KinesisFanOut),
			Budget: fetch.NewBudget(int64(cfg.ReadBudget))})
		reads = cc
		if subscribe == nil {
			subscribe = cc.Subscribe
		}
	}
	names, _ := StreamNames(cfg.StreamName) // checked by fill
	table := lease.NewTable(cfg.DynamoDB, cfg.AppName).WithNonce(nonce).WithMaxLeases(cfg.MaxLeases).WithReader(readerMode(cfg))
	multi := MultiStream(cfg.StreamName)
	if multi {
		table = table.WithMultiStream()
	}
	streams := make([]*streamInfo, len(names)) // names only, until Check
	for i, n := range names {
		streams[i] = &streamInfo{name: n, source: stream.Source{Region: cfg.Region}}
	}
	return &Worker{
		cfg:         cfg,
		names:       names,
		streams:     streams,
		multiMode:   multi,
		reads:       reads,
		subscribe:   subscribe,
		keys:        kpl.NewKeyBudget(memoKeys),
		log:         log,
		table:       table,
		observer:    balance.NewObserver(),
		started:     started,
		nonce:       nonce,
		badSeen:     map[string]string{},
		noted:       map[string]string{},
		pending:     map[string]bool{},
		foreign:     map[string]int64{},
		parked:      map[string]lease.Park{},
		held:        map[string]*held{},
		ended:       map[string]bool{},
		goneStreams: map[string]bool{},
		stats:       map[string]*shardStats{},
		draining:    make(chan struct{}),
		syncNow:     make(chan struct{}, 1),
		fatal:       make(chan error, 1),
	}, nil
}

// WorkerID is the lease owner name this worker writes.
func (w *Worker) WorkerID() string { return w.cfg.WorkerID }

// readerMode is how the worker reads its shards, as its takes record it.
func readerMode(cfg Config) string {
	if cfg.ConsumerName != "" || cfg.ConsumerARN != "" {
		return fetch.ModeFanOut
	}
	return fetch.ModePolling
}

// subscribeHTTP is the HTTP client of the subscriptions: fanOut's, or c's
// without its overall timeout (a subscription streams for 5 minutes).
func subscribeHTTP(c, fanOut *kinesis.Client) aws.HTTPClient {
	if fanOut != nil {
		return fanOut.Options().HTTPClient
	}
	hc := c.Options().HTTPClient
	if b, ok := hc.(*awshttp.BuildableClient); ok {
		return b.WithTimeout(0)
	}
	return hc
}

// Check verifies that the stream exists and the lease table is ready,
// creating the table if needed, with errors a user can act on. With
// ConsumerName it registers the enhanced fan-out consumer if it is missing
// and waits until it is ACTIVE (up to 10s); with ConsumerARN it checks that
// the consumer is the stream's and ACTIVE. An error then names the
// consumer.
func (w *Worker) Check(ctx context.Context) error {
	if err := w.describeStreams(ctx); err != nil {
		return err
	}
	for _, s := range w.streams {
		if err := w.resolveConsumer(ctx, s); err != nil {
			return err
		}
	}
	if err := w.table.Ensure(ctx); errors.Is(err, lease.ErrNoIndex) {
		w.log.Warn("the lease table has no "+lease.OwnerIndex+" and it could not be added: each worker reads the whole table to find its leases, a Scan every failover/2; add the index (see the README), or allow dynamodb:UpdateTable once",
			"error", Explain(err))
	} else if err != nil {
		return fmt.Errorf("lease table: %w", Explain(err))
	}
	if err := w.checkSingleStream(ctx); err != nil {
		return err
	}
	w.checked = true
	return nil
}

// resolveConsumer finds, registers or checks the enhanced fan-out
// consumer the settings name for stream s, once its ARN is known, and
// logs it.
func (w *Worker) resolveConsumer(ctx context.Context, s *streamInfo) error {
	name, arn := w.cfg.ConsumerName, w.cfg.ConsumerARN
	switch {
	case name != "":
		a, err := fetch.EnsureConsumer(ctx, w.cfg.Kinesis, s.source.StreamARN, name, fetch.ConsumerWait{})
		if err != nil {
			return err
		}
		arn = a
	case arn != "":
		if err := fetch.CheckConsumer(ctx, w.cfg.Kinesis, s.source.StreamARN, arn, fetch.ConsumerWait{}); err != nil {
			return err
		}
		name = arn[strings.LastIndex(arn, "/")+1 : strings.LastIndex(arn, ":")] // …/consumer/NAME:EPOCH, as CheckConsumer parsed it
	default:
		return nil
	}
	if w.subscribe == nil {
		return fmt.Errorf("consumer %s: enhanced fan-out needs an SDK Kinesis client (*kinesis.Client) or Config.SubscribeFunc", name)
	}
	s.consumerARN = arn
	w.log.Info("enhanced fan-out consumer ready", "stream", s.name, "consumer", name, "consumerARN", arn)
	return nil
}

// Run reads the stream until ctx is done, then drains: it stops fetching,
// lets each shard finish the batch in flight, checkpoints and releases its
// leases, and returns. It calls Check first, unless Check was called.
// Handlers run with a context that ctx's cancellation does not reach (only
// the loss of the lease, or their deadline, cancels it). A shard that
// cannot go on is parked and never stops the worker. Run returns an error
// when the stream, the enhanced fan-out consumer or the lease table cannot
// be used, when another process runs with the same worker id
// (*DuplicateWorkerError), or when the drain does not finish within
// DrainTimeout (*DrainError: the shards whose handler call had not
// returned are released at their last position done).
func (w *Worker) Run(ctx context.Context) error {
	if !w.checked {
		if err := w.Check(ctx); err != nil {
			return err
		}
	}
	work := context.WithoutCancel(ctx)
	w.log.Info("worker started", "stream", w.cfg.StreamName, "app", w.cfg.AppName)

	renewCtx, stopRenew := context.WithCancel(work)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		w.renewLoop(renewCtx)
	}()

	stopSummary := w.startSummary(work)

	var runErr error
	w.register(ctx)
	var followUp <-chan time.Time // the new leader's second round
	lead := func() {
		w.leaderCheck(ctx)
		if !w.leading() {
			return
		}
		w.leaderRound(ctx, work)
		if w.lead.followUp {
			w.lead.followUp = false
			followUp = time.After(w.cfg.FailoverTime / 5)
		}
	}
	lead()
	if w.discover(ctx, work) {
		w.ready.Store(true)
	}
	defer w.stopped.Store(true)
	// Every failover time: the leader's round, or a look at whether the
	// leader is alive. Every failover/2: the leases under this worker's
	// name. Every failover/10, while there are any: the leases handed off
	// to it, until their holders pass them on.
	leadTick := time.NewTicker(w.cfg.FailoverTime)
	findTick := time.NewTicker(w.cfg.FailoverTime / 2)
	pendTick := time.NewTicker(max(w.cfg.FailoverTime/10, 50*time.Millisecond))
	beatTick := time.NewTicker(heartbeatEvery * w.cfg.FailoverTime)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-w.fatal:
			runErr = err
			break loop
		case <-leadTick.C:
			lead()
		case <-followUp:
			if w.leading() {
				w.leaderRound(ctx, work)
			}
		case <-w.syncNow:
			if w.leading() {
				w.lead.syncDue = true
				w.leaderRound(ctx, work)
			}
		case <-findTick.C:
			if w.discover(ctx, work) {
				w.ready.Store(true)
			}
		case <-pendTick.C:
			switch {
			case len(w.pending) > 0:
				w.pollPending(ctx, work)
			case w.heldCount.Load() == 0 && time.Since(w.started) < 2*w.cfg.FailoverTime:
				// Joining: the leader gives this worker its share at its
				// next round; look for it every failover/10 until then.
				w.discover(ctx, work)
			}
		case <-beatTick.C:
			if w.heldCount.Load() == 0 {
				w.register(ctx)
			}
		}
	}
	leadTick.Stop()
	findTick.Stop()
	pendTick.Stop()
	beatTick.Stop()
	// Another worker leads at once, while this one drains.
	w.resign(w.briefly(work))

	w.mu.Lock()
	for k, h := range w.held {
		w.heldAtStop = append(w.heldAtStop, k)
		h.stopFetching()
	}
	w.mu.Unlock()
	close(w.draining)
	if err := w.waitDrained(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	stopRenew()
	<-renewDone
	select {
	case err := <-w.fatal:
		runErr = errors.Join(runErr, err)
	default:
	}
	stopSummary() // no summary after the last line
	if err := w.table.DeregisterWorker(w.briefly(work), w.cfg.WorkerID); err != nil {
		w.log.Warn("deleting the worker item failed; the leader deletes it once it is stale", "error", Explain(err))
	}
	t := w.Totals()
	w.log.Info("worker stopped", "handled", t.Handled, "records", t.Records, "batches", t.Batches, "failures", t.Failures, "givenUp", t.GivenUp)
	return runErr
}

// briefly bounds a write made on the way out (the leader lock, the worker
// item): a quarter of the drain timeout, at least 500ms. Its cancel runs
// when ctx ends (Run's own).
func (w *Worker) briefly(ctx context.Context) context.Context {
	c, cancel := context.WithTimeout(ctx, max(w.cfg.DrainTimeout/4, 500*time.Millisecond))
	context.AfterFunc(c, cancel)
	return c
}

// waitDrained waits for every consumer to finish, at most DrainTimeout
// (plus the time their final writes take). A consumer still inside a
// handler call then is given up: its lease is released at the last position
// done, and its later writes are refused.
func (w *Worker) waitDrained() error {
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(w.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
	}
	w.mu.Lock()
	stuck := slices.Collect(maps.Values(w.held))
	w.mu.Unlock()
	var keys []string
	var wg sync.WaitGroup
	for _, h := range stuck {
		key := h.snapshot().Key
		keys = append(keys, key)
		wg.Go(func() {
			log := w.log.With("shard", key)
			ctx, cancel := context.WithTimeout(h.ctx, max(w.cfg.DrainTimeout/4, 500*time.Millisecond))
			defer cancel()
			final := h.lastDone()
			switch err := h.release(ctx, w.table, final); {
			case err == nil:
				log.Info("lease released", "checkpoint", releasedAt(h, final), "drainTimedOut", true)
			case h.lost() == nil:
				log.Warn("release after the drain timeout failed; the lease will expire after the failover time", "error", Explain(err))
			}
		})
	}
	wg.Wait()
	if len(keys) == 0 { // they finished meanwhile
		<-done
		return nil
	}
	slices.Sort(keys)
	return &DrainError{Shards: keys, Timeout: w.cfg.DrainTimeout}
}

// syncShards creates the leases the shard listing calls for, given sc, a
// consistent Scan of the table made just before: the listing is never
// older than the table it is compared with, and a shard that a lease names
// as its parent is never created again (a listing made before a split,
// whose parent was read to its end and cleaned up since, must not bring
// it back). It returns the leases it created, and whether it could list
// the shards and create every lease.
func (w *Worker) syncShards(ctx context.Context, sc lease.Scanned) ([]lease.Lease, bool) {
	listed := map[string]bool{}
	var created []lease.Lease
	ok := true
	for _, st := range w.streams {
		c, listedOK := w.syncStream(ctx, st, sc, listed)
		created = append(created, c...)
		ok = ok && listedOK
	}
	if ok {
		w.mu.Lock()
		w.listed = listed
		w.mu.Unlock()
	}
	return created, ok
}

// syncStream is syncShards for the stream st; the keys of the shards it
// lists go into listed.
func (w *Worker) syncStream(ctx context.Context, st *streamInfo, sc lease.Scanned, listed map[string]bool) ([]lease.Lease, bool) {
	list, err := shards.List(ctx, w.cfg.Kinesis, st.name)
	if err != nil {
		if isNotFound(err) && w.multi() {
			w.mu.Lock()
			w.goneStreams[st.id] = true
			w.mu.Unlock()
		}
		if ctx.Err() == nil {
			w.log.Warn("shard sync failed; will retry", "stream", st.name, "error", Explain(err))
		}
		return nil, false
	}
	w.mu.Lock()
	delete(w.goneStreams, st.id)
	w.mu.Unlock()
	for _, sh := range list {
		listed[st.keyOf(sh.ID)] = true
	}
	// tracked: this stream's shards by id.
	prefix := ""
	if st.id != "" {
		prefix = st.id + ":"
	}
	tracked := map[string]bool{}
	for _, l := range sc.Leases {
		if w.streamOf(l) != st {
			continue
		}
		tracked[l.Shard()] = true
		for _, p := range l.ParentShardIDs {
			tracked[p] = true
		}
	}
	for _, b := range sc.Bad {
		if id, ok := strings.CutPrefix(b.Key, prefix); ok {
			tracked[id] = true
		}
	}
	w.mu.Lock()
	for k := range w.ended {
		if id, ok := strings.CutPrefix(k, prefix); ok {
			tracked[id] = true
		}
	}
	w.mu.Unlock()
	var created []lease.Lease
	for _, n := range shards.Missing(list, tracked, w.cfg.InitialPosition) {
		l := lease.Lease{
			Key:             st.keyOf(n.Shard.ID),
			Checkpoint:      stream.Position{Seq: n.Start},
			ParentShardIDs:  n.Shard.Parents,
			StartingHashKey: n.Shard.StartingHashKey,
			EndingHashKey:   n.Shard.EndingHashKey,
		}
		if st.id != "" {
			l.StreamID, l.ShardID = st.id, n.Shard.ID
		}
		switch n.Start {
		case stream.Latest:
			// LATEST is fixed at creation as the time this worker started,
			// so that every record written after the application first
			// started is delivered, whoever reads the shard and whenever.
			l.Checkpoint.Seq, l.Timestamp = stream.AtTimestamp, w.started
		case stream.AtTimestamp:
			l.Timestamp = w.cfg.InitialTimestamp
		}
		err := w.table.Create(ctx, l)
		switch {
		case errors.Is(err, lease.ErrLeaseExists):
		case err != nil:
			w.log.Warn("create lease failed; will retry", "shard", l.Key, "error", Explain(err))
			return created, false // parents before children: stop at the first failure
		default:
			created = append(created, l)
			w.log.Info("lease created", "shard", l.Key, "start", describeStart(l.Checkpoint, l.Timestamp), "parents", n.Shard.Parents)
		}
	}
	return created, true
}

// endedIn answers shards.Ready for the parents of l (shard ids, looked up
// as l's stream keys them).
func endedIn(byKey map[string]lease.Lease, l lease.Lease) func(string) (bool, bool) {
	return func(id string) (bool, bool) {
		if l.StreamID != "" {
			id = lease.MultiStreamKey(l.StreamID, id)
		}
		p, ok := byKey[id]
		return ok && p.Ended(), ok
	}
}

// cleanUp deletes ended leases once every child has a lease that has
// moved past its start, and ended leases without children once the stream
// no longer lists their shard.
func (w *Worker) cleanUp(ctx context.Context, byKey map[string]lease.Lease) {
	w.mu.Lock()
	listed := w.listed
	w.mu.Unlock()
	for _, l := range byKey {
		if !l.Ended() {
			continue
		}
		if len(l.ChildShardIDs) == 0 {
			// An ended shard without children (one that vanished from the
			// stream) is waited for by no one: its lease goes once the
			// stream no longer lists it.
			if listed != nil && !listed[l.Key] {
				if err := w.table.Delete(ctx, l); err == nil {
					w.log.Info("ended lease cleaned up", "shard", l.Key, "children", "none")
				}
			}
			continue
		}
		started := true
		for _, c := range l.ChildShardIDs {
			if l.StreamID != "" {
				c = lease.MultiStreamKey(l.StreamID, c)
			}
			cl, ok := byKey[c]
			if !ok || cl.Checkpoint.IsSentinel() && !cl.Ended() {
				started = false
				break
			}
		}
		if !started {
			continue
		}
		if err := w.table.Delete(ctx, l); err == nil {
			w.log.Info("ended lease cleaned up", "shard", l.Key, "children", l.ChildShardIDs)
		}
	}
}

// renewLoop renews every held lease each failover-time/3 until ctx ends.
func (w *Worker) renewLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.FailoverTime / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		hs := slices.Collect(maps.Values(w.held))
		w.mu.Unlock()
		w.renewLeader(ctx)
		// Concurrently: one slow lease must not hold the others' renewals
		// past their failover time.
		var began time.Time
		if w.cfg.MetricsLevel != metrics.None {
			began = time.Now()
		}
		var wg sync.WaitGroup
		for _, h := range hs {
			// A lease written moments ago (a checkpoint moves the counter
			// and carries the progress, as a renewal does) is not renewed
			// again: a busy shard checkpointing every second pays for its
			// checkpoints only. An idle one is renewed at an age between
			// failover/6 and failover/2.
			if l := h.snapshot(); h.fresh(w.cfg.FailoverTime/6) || l.MidHandoff() {
				// Mid-handoff the lease is not renewed: its holder drains
				// and passes it on, or the leader takes it after the
				// handoff timeout.
				continue
			}
			wg.Go(func() { h.renew(ctx, w.table, w.cfg.FailoverTime) })
		}
		wg.Wait()
		if w.cfg.MetricsLevel != metrics.None && len(hs) > 0 {
			w.counters.renewAll.Observe(time.Since(began))
		}
	}
}

// start launches the consumer of a lease just taken.
func (w *Worker) start(work context.Context, l lease.Lease) {
	h := newHeld(work, l)
	h.handoff = w.handoffAsked
	h.onHandoff = func() {
		w.log.Info("lease handoff asked by the leader: finishing the batch in flight, then passing the lease on at its checkpoint", "shard", l.Key, "to", h.snapshot().Owner)
		h.stopWith(errHandingOff)
	}
	w.mu.Lock()
	st := w.stats[l.Key]
	if st == nil {
		st = &shardStats{s: ShardStats{ShardID: l.Key, MillisBehindLatest: -1}}
		if s := w.streamOf(l); s != nil && w.multi() {
			st.s.StreamName = s.name
		}
		w.stats[l.Key] = st
	}
	h.behind, h.handled = st.behind, st.handled
	h.reported, h.rate.bytes = st.handled()
	h.rate.at = time.Now()
	w.held[l.Key] = h
	w.mu.Unlock()
	w.wg.Add(1)
	w.heldCount.Add(1)
	go func() {
		defer w.wg.Done()
		defer w.heldCount.Add(-1)
		res := w.consume(h, st)
		if !errors.Is(context.Cause(h.fetchCtx), errStopping) {
			// The lease went (lost, taken, ended, released while the
			// worker goes on): its lag is no longer this worker's to
			// report, or a lag alarm would fire forever after a
			// rebalance. A drain keeps it: the last run's lag is what
			// the scheduled function reports.
			st.update(func(x *ShardStats) { x.MillisBehindLatest = -1 })
		}
		w.mu.Lock()
		if w.held[l.Key] == h {
			delete(w.held, l.Key)
		}
		if res.ended {
			w.ended[l.Key] = true
		}
		w.mu.Unlock()
		if res.ended {
			select {
			case w.syncNow <- struct{}{}:
			default:
			}
		}
	}()
}

// badItems logs each lease item that does not decode once (per problem),
// and repairs a missing counter as the KCL would start one.
func (w *Worker) badItems(ctx context.Context, bad []lease.BadItem) {
	seen := make(map[string]bool, len(bad))
	for _, b := range bad {
		seen[b.Key] = true
		if b.MissingCounter {
			if err := w.table.RepairCounter(ctx, b.Key); err != nil {
				w.log.Warn("lease item without leaseCounter: repair failed; will retry", "shard", b.Key, "error", Explain(err))
			} else {
				w.log.Warn("lease item without leaseCounter repaired (counter 0)", "shard", b.Key)
			}
			continue
		}
		if w.badSeen[b.Key] == b.Problem {
			continue
		}
		w.badSeen[b.Key] = b.Problem
		w.log.Error("lease item cannot be read: its shard is not read until the item is mended (poller status shows it)", "shard", b.Key, "problem", b.Problem)
	}
	for k := range w.badSeen {
		if !seen[k] {
			delete(w.badSeen, k)
		}
	}
}

// multiStream logs each multi-stream lease key once per process: a
// multi-stream application's lease in this single-stream application's
// table, left alone.
func (w *Worker) multiStream(keys []string) {
	for _, k := range keys {
		if _, ok := w.noted["multi-stream "+k]; ok {
			continue
		}
		w.noted["multi-stream "+k] = ""
		w.log.Warn("a multi-stream application's lease (account:stream:epoch:shardId) in this single-stream application's lease table: left alone", "leaseKey", k)
	}
}

// noteHandoff logs once per handoff that a lease mid-handoff is not taken
// before its time.
func (w *Worker) noteHandoff(l lease.Lease) {
	owners := l.CheckpointOwner + "\x00" + l.Owner
	if w.noted["handoff "+l.Key] == owners {
		return
	}
	w.noted["handoff "+l.Key] = owners
	w.log.Info("lease mid-handoff (KCL graceful handoff): left to its holder until the handoff timeout and failover time have passed with no change",
		"shard", l.Key, "holder", l.CheckpointOwner, "next", l.Owner, "wait", w.cfg.HandoffTimeout+w.cfg.FailoverTime)
}

// duplicate handles a lease renewed under this worker's id by another
// process. The process that started later stops (*DuplicateWorkerError);
// the earlier one says so once and leaves that lease alone.
func (w *Worker) duplicate(l lease.Lease) error {
	if nonceTime(l.Nonce) > nonceTime(w.nonce) {
		if !w.dupWarned {
			w.dupWarned = true
			w.log.Error("another process runs with this worker id and renews a lease; it started later and stops", "worker id", w.cfg.WorkerID, "shard", l.Key)
		}
		return nil
	}
	return &DuplicateWorkerError{WorkerID: w.cfg.WorkerID, ShardID: l.Key}
}

// nonceTime is the start time (ms) a nonce begins with; 0 when it has none
// (an owner that wrote no nonce is taken as the earlier process).
func nonceTime(nonce string) int64 {
	ms, _, _ := strings.Cut(nonce, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

// readTarget is the bytes one read of a shard asks for: the read budget
// shared among the shards held, between 32 KiB and 1 MiB.
func (w *Worker) readTarget() int {
	n := max(1, w.heldCount.Load())
	return int(min(max(int64(w.cfg.ReadBudget)/n, 32<<10), 1<<20))
}

// laneAhead is how many bytes of records (as dispatch.RecordCost counts
// them) a shard's lanes may hold not yet done before its reader waits: the
// read budget shared among the shards held, as each read's target is. The
// lanes hold at most that plus one chunk.
func (w *Worker) laneAhead() int {
	n := max(1, w.heldCount.Load())
	return int(int64(w.cfg.ReadBudget) / n)
}

// Draining is closed once Run has told every shard to stop: no batch starts
// after it.
func (w *Worker) Draining() <-chan struct{} { return w.draining }

// Held lists the shards this worker holds now.
func (w *Worker) Held() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := slices.Collect(maps.Keys(w.held))
	slices.Sort(keys)
	return keys
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
