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
	Key                          string // shard id (leaseKey)
	Owner                        string // worker id; "" when no one holds it
	Counter                      int64  // incremented by every write
	Checkpoint                   stream.Position
	OwnerSwitchesSinceCheckpoint int64
	ParentShardIDs               []string
	ChildShardIDs                []string
	StartingHashKey              string
	EndingHashKey                string

	// Shardline's additions, for `poller status` (KCL ignores them): the
	// owner's wall-clock time of its last renewal (zero when none was
	// recorded) and how far behind the tip its last read was (-1: no read
	// yet).
	LastRenewal        time.Time
	MillisBehindLatest int64
}

// Progress is what a renewal records besides moving the counter.
type Progress struct {
	Time               time.Time
	MillisBehindLatest int64 // -1 when unknown
}

// Ended reports whether the shard was read to its end.
func (l *Lease) Ended() bool { return l.Checkpoint.Seq == stream.ShardEnd }

// Clone returns a deep copy of l.
func (l Lease) Clone() Lease {
	l.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	l.ChildShardIDs = slices.Clone(l.ChildShardIDs)
	return l
}

func (l *Lease) String() string {
	owner := l.Owner
	if owner == "" {
		owner = "-"
	}
	return fmt.Sprintf("%s owner=%s counter=%d checkpoint=%s", l.Key, owner, l.Counter, l.Checkpoint)
}
