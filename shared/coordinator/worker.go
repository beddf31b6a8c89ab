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
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/balance"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/stream"
)

// ErrLeaseExpired is the cause a shard is cancelled with when its lease
// could not be renewed for the failover time: another worker may own it.
var ErrLeaseExpired = errors.New("lease not renewed within the failover time")

// Worker is one lease owner reading a stream. Create it with New and call
// Run once.
type Worker struct {
	cfg      Config
	log      *slog.Logger
	table    *lease.Table
	source   stream.Source
	observer *balance.Observer

	mu    sync.Mutex
	held  map[string]*held
	ended map[string]bool // shards read to their end, never read again
	// heldAtStop lists the shards held when the drain began.
	heldAtStop []string
	stats      map[string]*shardStats

	wg       sync.WaitGroup
	draining chan struct{}
	syncNow  chan struct{}
	fatal    chan error
}

// New validates cfg, fills its defaults and returns a worker.
func New(cfg Config) (*Worker, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Worker{
		cfg:      cfg,
		log:      cfg.Logger.With("worker", cfg.WorkerID),
		table:    lease.NewTable(cfg.DynamoDB, cfg.AppName),
		observer: balance.NewObserver(),
		held:     map[string]*held{},
		ended:    map[string]bool{},
		stats:    map[string]*shardStats{},
		draining: make(chan struct{}),
		syncNow:  make(chan struct{}, 1),
		fatal:    make(chan error, 1),
	}, nil
}

// WorkerID is the lease owner name this worker writes.
func (w *Worker) WorkerID() string { return w.cfg.WorkerID }

// Check verifies that the stream exists and the lease table is ready,
// creating the table if needed, with errors a user can act on.
func (w *Worker) Check(ctx context.Context) error {
	out, err := w.cfg.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(w.cfg.StreamName)})
	if err != nil {
		return fmt.Errorf("stream %s: %w", w.cfg.StreamName, Explain(err))
	}
	w.source = stream.Source{StreamARN: aws.ToString(out.StreamDescriptionSummary.StreamARN), Region: w.cfg.Region}
	if err := w.table.Ensure(ctx); err != nil {
		return fmt.Errorf("lease table: %w", Explain(err))
	}
	return nil
}

// Run reads the stream until ctx is done, then drains: it stops fetching,
// lets each shard finish the batch in flight, checkpoints and releases its
// leases, and returns. Handlers run with a context that ctx's cancellation
// does not reach (only the loss of the lease cancels it). It returns an
// error when the stream or lease table cannot be used, or when a shard had
// to stop (a batch given up with no on-failure destination, a fatal read
// error); the other shards are drained first.
func (w *Worker) Run(ctx context.Context) error {
	if w.source.StreamARN == "" {
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

	var runErr error
	w.syncShards(ctx)
	w.takeRound(ctx, work)
	syncTick := time.NewTicker(w.cfg.ShardSyncInterval)
	takeTick := time.NewTicker(w.cfg.FailoverTime / 3)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-w.fatal:
			runErr = err
			break loop
		case <-syncTick.C:
			w.syncShards(ctx)
		case <-w.syncNow:
			w.syncShards(ctx)
			w.takeRound(ctx, work)
		case <-takeTick.C:
			w.takeRound(ctx, work)
		}
	}
	syncTick.Stop()
	takeTick.Stop()

	w.mu.Lock()
	for k, h := range w.held {
		w.heldAtStop = append(w.heldAtStop, k)
		h.stopFetching()
	}
	w.mu.Unlock()
	close(w.draining)
	w.wg.Wait()
	stopRenew()
	<-renewDone
	select {
	case err := <-w.fatal:
		runErr = errors.Join(runErr, err)
	default:
	}
	w.log.Info("worker stopped", "records", w.Totals().Records)
	return runErr
}

// syncShards creates the leases the shard listing calls for.
func (w *Worker) syncShards(ctx context.Context) {
	list, err := shards.List(ctx, w.cfg.Kinesis, w.cfg.StreamName)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("shard sync failed; will retry", "error", Explain(err))
		}
		return
	}
	leases, err := w.table.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("shard sync failed; will retry", "error", Explain(err))
		}
		return
	}
	tracked := make(map[string]bool, len(leases))
	for _, l := range leases {
		tracked[l.Key] = true
	}
	w.mu.Lock()
	for k := range w.ended {
		tracked[k] = true
	}
	w.mu.Unlock()
	for _, n := range shards.Missing(list, tracked, w.cfg.InitialPosition) {
		l := lease.Lease{
			Key:             n.Shard.ID,
			Checkpoint:      stream.Position{Seq: n.Start},
			ParentShardIDs:  n.Shard.Parents,
			StartingHashKey: n.Shard.StartingHashKey,
			EndingHashKey:   n.Shard.EndingHashKey,
		}
		err := w.table.Create(ctx, l)
		switch {
		case errors.Is(err, lease.ErrLeaseExists):
		case err != nil:
			w.log.Warn("create lease failed; will retry", "shard", l.Key, "error", Explain(err))
			return // parents before children: stop at the first failure
		default:
			w.log.Info("lease created", "shard", l.Key, "start", n.Start, "parents", n.Shard.Parents)
		}
	}
}

// takeRound reads the lease table, decides and takes.
func (w *Worker) takeRound(ctx, work context.Context) {
	leases, err := w.table.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("list leases failed; will retry", "error", Explain(err))
		}
		return
	}
	now := time.Now()
	byKey := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		byKey[l.Key] = l
		w.observer.Observe(l.Key, l.Owner, l.Counter, now)
	}
	for _, k := range w.observer.Keys() {
		if _, ok := byKey[k]; !ok {
			w.observer.Forget(k)
		}
	}
	w.cleanUp(ctx, byKey)

	w.mu.Lock()
	heldNow := make(map[string]bool, len(w.held))
	for k := range w.held {
		heldNow[k] = true
	}
	w.mu.Unlock()
	in := balance.Input{Me: w.cfg.WorkerID, Held: heldNow, MaxLeases: w.cfg.MaxLeases}
	for _, l := range leases {
		if l.Ended() || !shards.Ready(l.ParentShardIDs, endedIn(byKey)) {
			continue
		}
		in.Leases = append(in.Leases, balance.Lease{
			Key: l.Key, Owner: l.Owner,
			Expired: l.Owner != "" && w.observer.Expired(l.Key, now, w.cfg.FailoverTime),
		})
	}
	plan := balance.Decide(in)
	keys := plan.Take
	if plan.Steal != "" {
		keys = append(keys, plan.Steal)
	}
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		l := byKey[k]
		taken, err := w.table.Take(ctx, l, w.cfg.WorkerID)
		if err != nil {
			if !errors.Is(err, lease.ErrLeaseLost) {
				w.log.Warn("take lease failed", "shard", k, "error", Explain(err))
			}
			continue
		}
		how := "claimed"
		switch {
		case k == plan.Steal:
			how = "stolen"
		case l.Owner != "":
			how = "taken over"
		}
		w.log.Info("lease "+how, "shard", k, "from", l.Owner, "checkpoint", taken.Checkpoint.String())
		w.start(work, taken)
	}
}

func endedIn(byKey map[string]lease.Lease) func(string) (bool, bool) {
	return func(id string) (bool, bool) {
		l, ok := byKey[id]
		return ok && l.Ended(), ok
	}
}

// cleanUp deletes ended leases once every child has a lease that has
// moved past its start.
func (w *Worker) cleanUp(ctx context.Context, byKey map[string]lease.Lease) {
	for _, l := range byKey {
		if !l.Ended() || len(l.ChildShardIDs) == 0 {
			continue
		}
		started := true
		for _, c := range l.ChildShardIDs {
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
		// Concurrently: one slow lease must not hold the others' renewals
		// past their failover time.
		var wg sync.WaitGroup
		for _, h := range hs {
			wg.Go(func() { h.renew(ctx, w.table, w.cfg.FailoverTime) })
		}
		wg.Wait()
	}
}

// start launches the consumer of a lease just taken.
func (w *Worker) start(work context.Context, l lease.Lease) {
	h := newHeld(work, l)
	w.mu.Lock()
	st := w.stats[l.Key]
	if st == nil {
		st = &shardStats{s: ShardStats{ShardID: l.Key, MillisBehindLatest: -1}}
		w.stats[l.Key] = st
	}
	h.behind = st.behind
	w.held[l.Key] = h
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		res := w.consume(h, st)
		w.mu.Lock()
		delete(w.held, l.Key)
		if res.ended {
			w.ended[l.Key] = true
		}
		w.mu.Unlock()
		switch {
		case res.err != nil:
			select {
			case w.fatal <- res.err:
			default:
			}
		case res.ended:
			select {
			case w.syncNow <- struct{}{}:
			default:
			}
		}
	}()
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
