package coordinator

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/balance"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/stream"
)

// A worker's part in the lease table, as in KCL 3.x: one worker at a time
// is the leader (it holds the Leader item, a DynamoDB lock client lock,
// and loses it within the failover time if it dies). The leader alone
// scans the table: every failover time it reads the leases (eventually
// consistent), gives unowned and expired leases to the workers with room
// and moves leases from the workers above their share to those below by
// graceful handoff; every ShardSyncInterval, and at once when it sees a
// shard end, it syncs the leases with the stream's shards (a consistent
// Scan, then ListShards). Every worker writes its worker item (so that
// the leader knows it before it holds a lease), Queries the table's
// LeaseOwnerToLeaseKeyIndex for the leases under its name every
// failover/2, and takes those it was given.

// heartbeatEvery is how often a worker rewrites its worker item, in
// failover times; the leader counts a worker whose item has not moved for
// three of these as gone.
const heartbeatEvery = 3

// leaderState is the worker's view of the leadership.
type leaderState struct {
	mu      sync.Mutex
	lock    *lease.LeaderLock // ours while leading; nil otherwise
	renewed time.Time         // the lock's last write that succeeded
	seen    *lease.LeaderLock // another worker's lock as last read
	seenAt  time.Time         // when seen's version was first read

	// The rounds' state, on Run's goroutine only.
	workers  *balance.Observer    // worker items' heartbeats
	handoffs map[string]time.Time // lease -> when its handoff (owner and checkpoint owner) was first seen
	// dead is the last leader, whose lock expired: until deadUntil (the
	// follow-up round) its leases are expired once seen standing still
	// from one round to the next, and it gets none. A process that was
	// only paused comes back as any worker after that.
	dead      string
	deadUntil time.Time
	lastSync  time.Time
	syncDue   bool
	ended     map[string]bool      // ended leases seen
	goneAt    map[string]int64     // workers found gone -> their item's heartbeat then
	former    map[string]time.Time // leases of streams not in the list -> first seen
	// followUp: a round is due failover/5 after the first, to take the
	// last leader's leases once seen standing still.
	followUp bool
}

// leading reports whether this worker holds the leader lock.
func (w *Worker) leading() bool {
	w.lead.mu.Lock()
	defer w.lead.mu.Unlock()
	return w.lead.lock != nil
}

// leaderCheck reads the leader lock and takes it when there is none, or
// when its holder has not renewed it for its lease duration.
func (w *Worker) leaderCheck(ctx context.Context) {
	if w.leading() {
		return
	}
	lock, ok, err := w.table.Leader(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("reading the leader lock failed; will retry", "error", Explain(err))
		}
		return
	}
	now := time.Now()
	var prev *lease.LeaderLock
	if ok {
		s := &w.lead
		if s.seen == nil || s.seen.Version != lock.Version || s.seen.Owner != lock.Owner {
			s.seen, s.seenAt = &lock, now
			return
		}
		wait := lock.Duration
		if wait <= 0 {
			wait = w.cfg.FailoverTime
		}
		if now.Sub(s.seenAt) < wait-wait/10 { // a tenth: the checks' jitter
			return
		}
		prev = &lock
	}
	got, err := w.table.AcquireLeader(ctx, w.cfg.WorkerID, w.cfg.FailoverTime, prev)
	if errors.Is(err, lease.ErrNotLeader) {
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("taking the leader lock failed; will retry", "error", Explain(err))
		}
		return
	}
	w.lead.mu.Lock()
	w.lead.lock, w.lead.renewed = &got, now
	w.lead.mu.Unlock()
	w.lead.seen = nil
	w.lead.workers = balance.NewObserver()
	w.lead.handoffs = map[string]time.Time{}
	w.lead.goneAt = nil
	w.lead.ended = nil
	w.lead.lastSync = time.Time{}
	w.observer = balance.NewObserver()
	w.lead.dead = ""
	if prev != nil && prev.Owner != w.cfg.WorkerID {
		w.lead.dead, w.lead.deadUntil = prev.Owner, now.Add(w.cfg.FailoverTime)
	}
	w.lead.followUp = prev != nil
	w.log.Info("leader: this worker assigns the leases", "previous", prevOwner(prev))
}

func prevOwner(l *lease.LeaderLock) string {
	if l == nil {
		return "none"
	}
	return l.Owner + " (lock expired)"
}

// renewLeader moves the leader lock on; a lock someone else took, or one
// not renewed for its duration, ends the leadership.
func (w *Worker) renewLeader(ctx context.Context) {
	w.lead.mu.Lock()
	lock, age := w.lead.lock, time.Since(w.lead.renewed)
	w.lead.mu.Unlock()
	// Renewed at an age of failover/2 or more: on renewLoop's ticks
	// (failover/3) every other one, 540 writes an hour. The others take
	// the lock once its version stood still for 0.9 × its duration.
	if lock == nil || age < w.cfg.FailoverTime/2-w.cfg.FailoverTime/20 {
		return
	}
	next, err := w.table.RenewLeader(ctx, *lock)
	w.lead.mu.Lock()
	defer w.lead.mu.Unlock()
	if w.lead.lock != lock {
		return // resigned meanwhile
	}
	switch {
	case err == nil:
		w.lead.lock, w.lead.renewed = &next, time.Now()
	case errors.Is(err, lease.ErrNotLeader):
		w.lead.lock = nil
		w.log.Warn("leader lock taken by another worker; no longer the leader")
	case time.Since(w.lead.renewed) >= lock.Duration && ctx.Err() == nil:
		w.lead.lock = nil
		w.log.Warn("leader lock not renewed within its duration; no longer the leader", "error", Explain(err))
	}
}

// resign gives the leader lock up, so that another worker leads at once.
func (w *Worker) resign(ctx context.Context) {
	w.lead.mu.Lock()
	lock := w.lead.lock
	w.lead.lock = nil
	w.lead.mu.Unlock()
	if lock == nil {
		return
	}
	if err := w.table.ReleaseLeader(ctx, *lock); err != nil {
		w.log.Warn("releasing the leader lock failed; another worker leads once it expires", "error", Explain(err))
	}
}

// register writes the worker item: at start, and every heartbeatEvery
// failover times while the worker holds no lease (with leases, their
// renewals show it alive).
func (w *Worker) register(ctx context.Context) {
	err := w.table.RegisterWorker(ctx, lease.WorkerItem{ID: w.cfg.WorkerID, MaxLeases: int64(w.cfg.MaxLeases), Nonce: w.nonce})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("writing the worker item failed; will retry", "error", Explain(err))
	}
}

// leaderRound is one round of the leader: read the table (consistently,
// with a shard sync, when one is due), then assign and balance.
func (w *Worker) leaderRound(ctx, work context.Context) {
	s := &w.lead
	if s.dead != "" && time.Now().After(s.deadUntil) {
		s.dead = ""
	}
	sync := s.syncDue || time.Since(s.lastSync) >= w.cfg.ShardSyncInterval
	var sc lease.Scanned
	var err error
	if sync {
		sc, err = w.table.Scan(ctx)
	} else {
		sc, err = w.table.ScanEventually(ctx)
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("list leases failed; will retry", "error", Explain(err))
		}
		return
	}
	if sync {
		created, ok := w.syncShards(ctx, sc)
		if ok {
			s.lastSync, s.syncDue = time.Now(), false
		}
		sc.Leases = append(sc.Leases, created...)
	}
	w.badItems(ctx, sc.Bad)
	w.multiStream(sc.MultiStream)
	now := time.Now()
	sc.Leases = w.formerStreams(ctx, sc.Leases, now)
	byKey := make(map[string]lease.Lease, len(sc.Leases))
	for _, l := range sc.Leases {
		byKey[l.Key] = l
		w.observer.Observe(l.Key, l.Owner+"\x00"+l.CheckpointOwner, l.Counter, now)
		if l.Ended() && !s.ended[l.Key] {
			if s.ended != nil && !sync {
				s.syncDue = true // a shard ended since the last round: sync next
			}
			if s.ended == nil {
				s.ended = map[string]bool{}
			}
			s.ended[l.Key] = true
		}
		if l.MidHandoff() {
			if _, ok := s.handoffs[l.Key]; !ok {
				s.handoffs[l.Key] = now
			}
		} else {
			delete(s.handoffs, l.Key)
		}
	}
	for _, k := range w.observer.Keys() {
		if _, ok := byKey[k]; !ok {
			w.observer.Forget(k)
			delete(s.handoffs, k)
			delete(s.ended, k)
		}
	}
	if s.syncDue {
		select {
		case w.syncNow <- struct{}{}:
		default:
		}
	}
	w.cleanUp(ctx, byKey)
	w.recordParked(sc.Leases)

	// The workers: those whose item moves, less those with an expired
	// lease (dead with leases), and this one.
	hbWindow := 3 * heartbeatEvery * w.cfg.FailoverTime // three heartbeats missed
	items := map[string]lease.WorkerItem{}
	for _, it := range sc.Workers {
		items[it.ID] = it
		s.workers.Observe(it.ID, it.Nonce, it.Heartbeat, now)
	}
	for _, k := range s.workers.Keys() {
		if _, ok := items[k]; !ok {
			s.workers.Forget(k)
		}
	}
	// A lease is expired when its counter has stood still for the failover
	// time, as this leader saw it (rounds come every failover time: a
	// tenth of it is the rounds' jitter). The last leader's, whose lock
	// expired, once it stood still from one round to the next (the
	// follow-up round after failover/5): it has not renewed its lock for
	// the failover time, and a worker renews its leases with its lock.
	expired := func(l lease.Lease) bool {
		h := l.Holder()
		if h == "" {
			return false
		}
		if h == s.dead {
			return w.observer.Expired(l.Key, now, w.cfg.FailoverTime/5-w.cfg.FailoverTime/50)
		}
		return w.observer.Expired(l.Key, now, w.cfg.FailoverTime-w.cfg.FailoverTime/10)
	}
	gone := map[string]bool{}
	renewing := map[string]bool{} // holds a lease not expired
	owns := map[string]int{}
	for _, l := range sc.Leases {
		if l.Ended() {
			continue
		}
		owns[l.Holder()]++
		switch {
		case l.MidHandoff():
		case expired(l):
			gone[l.Holder()] = true
		default:
			renewing[l.Holder()] = true
		}
	}
	// A worker with leases proves itself alive by renewing them; one
	// without by its item's heartbeat (written only while it holds none).
	// A worker found gone (an expired lease: killed, paused, cut off)
	// stays out until its item's heartbeat moves again: once its leases
	// are given out it holds none, and its item alone (unmoved) would
	// pass it for alive until the heartbeat window ends.
	if s.goneAt == nil {
		s.goneAt = map[string]int64{}
	}
	for id := range gone {
		s.goneAt[id] = items[id].Heartbeat
	}
	if s.dead != "" {
		s.goneAt[s.dead] = items[s.dead].Heartbeat
	}
	for id, hb := range s.goneAt {
		if it, ok := items[id]; !ok || it.Heartbeat != hb || renewing[id] && !gone[id] {
			delete(s.goneAt, id) // deleted, or written or renewing since: alive again
		}
	}
	live := map[string]int{w.cfg.WorkerID: w.cfg.MaxLeases}
	for id, it := range items {
		if id != w.cfg.WorkerID && owns[id] == 0 && s.workers.Expired(id, now, hbWindow) {
			if err := w.table.DeleteWorker(ctx, it); err == nil {
				w.log.Info("worker item of a gone worker deleted", "gone", id)
				delete(s.goneAt, id)
			}
			continue
		}
		if _, out := s.goneAt[id]; out && id != w.cfg.WorkerID || id == s.dead {
			continue
		}
		live[id] = int(it.MaxLeases)
	}

	var slots []balance.Slot
	for _, l := range sc.Leases {
		if l.Ended() || l.Parked(now) || !shards.Ready(l.ParentShardIDs, endedIn(byKey, l)) {
			continue
		}
		holder := l.Holder()
		_, isLive := live[holder]
		slot := balance.Slot{Key: l.Key, Owner: holder}
		switch {
		case l.MidHandoff():
			if now.Sub(s.handoffs[l.Key]) < w.cfg.HandoffTimeout+w.cfg.FailoverTime {
				slot.Owner, slot.Pinned = l.Owner, true // the next owner's, once the holder passes it on
				w.noteHandoff(l)
			} else {
				slot.Free, slot.Prefer = true, l.Owner
				w.log.Warn("graceful handoff not finished in time; the lease is taken (the next owner starts from the last checkpoint)",
					"shard", l.Key, "holder", l.CheckpointOwner, "next", l.Owner, "after", w.cfg.HandoffTimeout+w.cfg.FailoverTime)
			}
		case holder == "" || expired(l) || gone[holder]:
			slot.Free = true
		case !isLive:
			// Held by a worker that takes no part in the assignments (a
			// KCL worker, an earlier Shardline) or one whose item is
			// gone: its until it expires.
			slot.Pinned = true
		}
		slots = append(slots, slot)
	}
	ws := make([]balance.Worker, 0, len(live))
	for _, id := range slices.Sorted(maps.Keys(live)) {
		ws = append(ws, balance.Worker{ID: id, Max: live[id]})
	}
	plan := balance.Assign(ws, slots)
	w.counters.unowned.Store(int64(plan.Unassignable))
	if plan.Unassignable > 0 {
		w.log.Warn("shards with no owner: every worker is at its -max-leases; start a worker, or raise -max-leases",
			"unowned", plan.Unassignable, "maxLeases", w.cfg.MaxLeases)
	}
	for _, m := range plan.Assign {
		if ctx.Err() != nil {
			return
		}
		l := byKey[m.Key]
		if m.To == w.cfg.WorkerID {
			w.takeLease(ctx, work, l, "")
			continue
		}
		if _, err := w.table.Assign(ctx, l, m.To); err != nil {
			if !errors.Is(err, lease.ErrLeaseLost) {
				w.log.Warn("assign lease failed", "shard", m.Key, "to", m.To, "error", Explain(err))
			}
			continue
		}
		w.log.Info("lease assigned", "shard", m.Key, "to", m.To, "from", l.Holder(), "checkpoint", l.Checkpoint.String())
	}
	for _, m := range plan.Handoff {
		if ctx.Err() != nil {
			return
		}
		l := byKey[m.Key]
		if _, err := w.table.RequestHandoff(ctx, l, m.To); err != nil {
			if !errors.Is(err, lease.ErrLeaseLost) {
				w.log.Warn("handoff request failed", "shard", m.Key, "from", m.From, "to", m.To, "error", Explain(err))
			}
			continue
		}
		s.handoffs[m.Key] = now
		w.log.Info("lease handoff requested", "shard", m.Key, "from", m.From, "to", m.To)
		switch w.cfg.WorkerID {
		case m.From:
			w.nudge(m.Key)
		case m.To:
			w.pending[m.Key] = true
		}
	}
}

// recordParked remembers the parked leases as last read, for Snapshot.
func (w *Worker) recordParked(leases []lease.Lease) {
	parked := map[string]lease.Park{}
	for _, l := range leases {
		if l.Park != nil {
			parked[l.Key] = *l.Park
		}
	}
	w.mu.Lock()
	w.parked = parked
	w.mu.Unlock()
}

// nudge renews a held lease now: a write that finds the lease asked for
// by a handoff starts passing it on (held.write), one that finds it lost
// stops it.
func (w *Worker) nudge(key string) {
	w.mu.Lock()
	h := w.held[key]
	w.mu.Unlock()
	if h == nil {
		return
	}
	go h.renew(h.ctx, w.table, w.cfg.FailoverTime)
}

// takeLease takes l for this worker and starts its consumer.
func (w *Worker) takeLease(ctx, work context.Context, l lease.Lease, how string) bool {
	taken, err := w.table.Take(ctx, l, w.cfg.WorkerID)
	if err != nil {
		if !errors.Is(err, lease.ErrLeaseLost) {
			w.log.Warn("take lease failed", "shard", l.Key, "error", Explain(err))
		}
		return false
	}
	w.counters.takenLeases.Add(1)
	switch {
	case how != "":
	case l.MidHandoff():
		how = "taken over mid-handoff"
	case l.Holder() != "" && l.Holder() != w.cfg.WorkerID:
		how = "taken over"
	default:
		how = "claimed"
	}
	w.log.Info("lease "+how, "shard", l.Key, "from", l.Holder(), "checkpoint", taken.Checkpoint.String())
	w.start(work, taken)
	return true
}

// discover finds the leases under this worker's name that it does not
// hold (given it by the leader, or handed off to it) by a Query of
// LeaseOwnerToLeaseKeyIndex, reads each and takes those it may. A lease
// held but no longer listed is renewed at once, which finds out whether it
// is being handed off or was lost. It reports whether it could read.
func (w *Worker) discover(ctx, work context.Context) bool {
	keys, err := w.table.OwnedKeys(ctx, w.cfg.WorkerID)
	if errors.Is(err, lease.ErrNoIndex) {
		if !w.noIndexSaid {
			w.noIndexSaid = true
			w.log.Info("lease table index "+lease.OwnerIndex+" not ready (being built, or not allowed): reading the table instead until it is", "error", err)
		}
		keys, err = w.scanOwned(ctx)
	}
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("list own leases failed; will retry", "error", Explain(err))
		}
		return false
	}
	w.mu.Lock()
	held := make(map[string]*held, len(w.held))
	maps.Copy(held, w.held)
	w.mu.Unlock()
	listed := make(map[string]bool, len(keys))
	for _, k := range keys {
		listed[k] = true
		if held[k] == nil {
			w.pending[k] = true
		}
	}
	for k, h := range held {
		if l := h.snapshot(); !listed[k] && time.Since(h.taken) > w.cfg.FailoverTime/2 && !l.MidHandoff() {
			// The index lags writes by a moment; a lease held for a while
			// and not listed may be handed off or lost: a renewal tells.
			w.nudge(k)
		}
	}
	if !w.leading() {
		// A shard this worker parked is someone's to retry once its time
		// is up (the leader's rounds read every park).
		now := time.Now()
		w.mu.Lock()
		maps.DeleteFunc(w.parked, func(_ string, p lease.Park) bool { return p.Until.Before(now) })
		w.mu.Unlock()
	}
	w.pollPending(ctx, work)
	return true
}

// createChildren writes the leases of the shards that continue one read
// to its end (from GetRecords' or the subscription's ChildShards), as KCL
// does at a shard's end, so that the leader gives them out at its next
// round without waiting for a shard sync. They start at TRIM_HORIZON.
func (w *Worker) createChildren(ctx context.Context, s *streamInfo, children []types.ChildShard) {
	for _, ch := range children {
		id := aws.ToString(ch.ShardId)
		l := lease.Lease{Key: s.keyOf(id), Checkpoint: stream.Position{Seq: stream.TrimHorizon}, ParentShardIDs: ch.ParentShards}
		if s.id != "" {
			l.StreamID, l.ShardID = s.id, id
		}
		if r := ch.HashKeyRange; r != nil {
			l.StartingHashKey, l.EndingHashKey = aws.ToString(r.StartingHashKey), aws.ToString(r.EndingHashKey)
		}
		if id == "" {
			continue
		}
		err := w.table.Create(ctx, l)
		switch {
		case errors.Is(err, lease.ErrLeaseExists):
		case err != nil:
			w.log.Warn("create child lease failed; the leader's shard sync creates it", "shard", l.Key, "error", Explain(err))
		default:
			w.log.Info("lease created", "shard", l.Key, "start", stream.TrimHorizon, "parents", l.ParentShardIDs)
		}
	}
}

// scanOwned lists this worker's leases with a Scan, while the index
// cannot be read.
func (w *Worker) scanOwned(ctx context.Context) ([]string, error) {
	sc, err := w.table.Scan(ctx)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, l := range sc.Leases {
		if l.Owner == w.cfg.WorkerID {
			keys = append(keys, l.Key)
		}
	}
	return keys, nil
}

// pollPending reads each lease found under this worker's name and not
// held, and takes it once it may: not mid-handoff, and not another
// process's with this worker id.
func (w *Worker) pollPending(ctx, work context.Context) {
	for _, k := range slices.Sorted(maps.Keys(w.pending)) {
		if ctx.Err() != nil {
			return
		}
		w.mu.Lock()
		_, isHeld := w.held[k]
		w.mu.Unlock()
		if isHeld {
			delete(w.pending, k)
			continue
		}
		l, ok, err := w.table.Get(ctx, k)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("read lease failed; will retry", "shard", k, "error", Explain(err))
			}
			continue
		}
		now := time.Now()
		switch {
		case !ok || l.Owner != w.cfg.WorkerID || l.Ended() || l.Parked(now):
			delete(w.pending, k) // not ours (the index lags), or nothing to read
			delete(w.foreign, k)
		case l.MidHandoff():
			// Handed off to this worker: its holder finishes, checkpoints
			// and passes it on; read again until then.
		case l.Nonce != "" && l.Nonce != w.nonce:
			// Under this worker id with another process's nonce: a
			// process that died (the leader gives the lease back once it
			// expires, without a nonce), or one that runs.
			if c, seen := w.foreign[k]; seen && c != l.Counter {
				if err := w.duplicate(l); err != nil {
					select {
					case w.fatal <- err:
					default:
					}
					return
				}
			}
			w.foreign[k] = l.Counter
		default:
			delete(w.pending, k)
			delete(w.foreign, k)
			w.takeLease(ctx, work, l, "")
		}
	}
}

// handoffAsked reads a lease a write found lost: ok when the leader asked
// for it by a graceful handoff from this worker, with nothing else
// written since cur.
func (w *Worker) handoffAsked(ctx context.Context, cur lease.Lease) (lease.Lease, bool) {
	l, ok, err := w.table.Get(ctx, cur.Key)
	if err != nil || !ok {
		return lease.Lease{}, false
	}
	if l.CheckpointOwner != w.cfg.WorkerID || l.Owner == w.cfg.WorkerID || l.Counter != cur.Counter {
		return lease.Lease{}, false
	}
	return l, true
}
