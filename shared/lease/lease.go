package lease

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shardline/shardline/shared/stream"
)

// ErrLeaseLost means a conditional write found the lease owned by another
// worker or renewed by someone else since it was read: the caller no longer
// holds it and must stop writing for that shard.
var ErrLeaseLost = errors.New("lease lost")

// ErrLeaseExists means Create found a lease already there.
var ErrLeaseExists = errors.New("lease exists")

// Lease is one row of the lease table: one shard.
type Lease struct {
	Key string // leaseKey: the shard id, or account:stream:creationEpoch:shardId (multi-stream)
	// StreamID and ShardID are a multi-stream lease's streamName (KCL's
	// stream identifier, account:stream:creationEpoch) and shardId; ""
	// for a single-stream lease (see Shard).
	StreamID string
	ShardID  string
	Owner   string // leaseOwner: a worker id; "" when no one holds it
	Counter int64  // incremented by every write
	// CheckpointOwner is KCL 3.x's checkpointOwner, set while a graceful
	// handoff is under way: KCL's leader has named the next owner in
	// Owner, and the worker named here still holds the lease until it has
	// checkpointed and passed it on (Holder). A take removes it.
	CheckpointOwner              string
	Checkpoint                   stream.Position
	OwnerSwitchesSinceCheckpoint int64
	ParentShardIDs               []string
	ChildShardIDs                []string
	StartingHashKey              string
	EndingHashKey                string

	// Shardline's additions (attributes prefixed "shardline", which KCL
	// ignores).

	// Timestamp is the time an AT_TIMESTAMP checkpoint starts at, so that
	// any worker can resume the lease without -initial-timestamp.
	Timestamp time.Time
	// Nonce names the owner's process: two processes given one worker id
	// are told apart by it.
	Nonce string
	// OwnerMaxLeases is the owner's -max-leases as its take wrote it
	// (0: no limit), so that other workers count its capacity.
	OwnerMaxLeases int64
	// Reader is how the owner reads the shard, as its take wrote it:
	// "polling" or "fan-out" (enhanced fan-out); "" when not written.
	Reader string
	// Park is set while the shard is parked: it could not go on, and no
	// worker takes it before Park.Until.
	Park *Park
	// DroppedOutOfRange counts user records dropped because their hash key
	// lies outside the shard's range (aggregates not made by the KPL), over
	// the lease's life.
	DroppedOutOfRange int64
	// RecordsHandled counts user records the handler finished with, over
	// the lease's life, as its owners reported them at their renewals:
	// `poller status -watch` derives records/s from it.
	RecordsHandled int64
	// LastRenewal is the owner's wall-clock time of its last renewal (zero
	// when none was recorded) and MillisBehindLatest how far behind the tip
	// its last read was (-1: no read yet), for `poller status`.
	LastRenewal        time.Time
	MillisBehindLatest int64
	// ThroughputKBps is KCL 3.x's throughputKBps: a moving average of the
	// KB/s the owner's handler got, written with its renewals, which KCL
	// 3.x's lease balancer weighs leases by (0 when not written).
	ThroughputKBps float64
}

// Shard is the lease's shard id.
func (l *Lease) Shard() string {
	if l.ShardID != "" {
		return l.ShardID
	}
	return l.Key
}

// MultiStreamKey is the lease key of a shard of the stream streamID
// (account:stream:creationEpoch) in a multi-stream table.
func MultiStreamKey(streamID, shardID string) string { return streamID + ":" + shardID }

// Holder is the worker that holds the lease: the checkpoint owner while a
// KCL 3.x graceful handoff is under way, else the owner; "" for none.
func (l *Lease) Holder() string {
	if l.CheckpointOwner != "" {
		return l.CheckpointOwner
	}
	return l.Owner
}

// MidHandoff reports whether a KCL 3.x graceful handoff is under way: the
// holder (CheckpointOwner) is to finish, checkpoint and pass the lease to
// Owner, who waits meanwhile.
func (l *Lease) MidHandoff() bool { return l.CheckpointOwner != "" }

// Park is why a shard stopped and when it is tried again. A parked lease
// has no owner; nothing passes its checkpoint until it is retried and
// gets past the records that stopped it, or `poller resume` or `reset`
// clears it.
type Park struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"` // when it was first parked (this time round)
	Until  time.Time `json:"until"` // not taken before this time (the parking worker's clock)
	Count  int64     `json:"times"` // times parked in a row
}

// Parked reports whether the shard is parked and may not be taken at now.
func (l *Lease) Parked(now time.Time) bool { return l.Park != nil && now.Before(l.Park.Until) }

// Progress is what a renewal records besides moving the counter.
type Progress struct {
	Time               time.Time
	MillisBehindLatest int64 // -1 when unknown
	// DroppedOutOfRange is added to the lease's count of user records
	// dropped outside the shard's hash range.
	DroppedOutOfRange int64
	// RecordsHandled is added to the lease's count of user records the
	// handler finished with.
	RecordsHandled int64
	// ThroughputKBps is written as the lease's throughputKBps when 0 or
	// more; negative: not measured, the attribute is left as it is.
	ThroughputKBps float64
}

// Ended reports whether the shard was read to its end.
func (l *Lease) Ended() bool { return l.Checkpoint.Seq == stream.ShardEnd }

// Clone returns a deep copy of l.
func (l Lease) Clone() Lease {
	l.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	l.ChildShardIDs = slices.Clone(l.ChildShardIDs)
	if l.Park != nil {
		p := *l.Park
		l.Park = &p
	}
	return l
}

func (l *Lease) String() string {
	owner := l.Holder()
	if owner == "" {
		owner = "-"
	}
	if l.MidHandoff() {
		owner += " (handing off to " + l.Owner + ")"
	}
	return fmt.Sprintf("%s owner=%s counter=%d checkpoint=%s", l.Key, owner, l.Counter, l.Checkpoint)
}
