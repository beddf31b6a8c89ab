package fetch

import "context"

// Publisher hands one shard's records over, whichever way they come:
// polled with GetRecords (Reader) or pushed over SubscribeToShard to an
// enhanced fan-out consumer. KCL calls it a RecordsPublisher. The shard's
// consumer (de-aggregation, filters, dispatch, checkpoints, parking,
// windows, lanes, metrics) sees only this. A Publisher is not safe for
// concurrent use.
type Publisher interface {
	// Next returns the next batch of records, waiting as the read limits
	// require and taking the next records only when called (back-pressure:
	// a slow consumer never makes a Publisher hold a shard's whole
	// stream). Transient faults are handled inside; the errors returned
	// are ctx's cause, ErrShardEnded after a Batch with End, or faults no
	// retry can mend (the stream or shard is gone, access is denied).
	Next(ctx context.Context) (Batch, error)
	// SetTargetBytes bounds what the next batches bring: the worker shares
	// a read budget among the shards it holds.
	SetTargetBytes(n int)
	// Stats returns the counts so far; read it between Next calls.
	Stats() Stats
	// Mode is how records come, as status shows it: ModePolling or
	// ModeFanOut.
	Mode() string
	// Close lets go at once of what the Publisher holds open (a
	// subscription): no record comes after it. It may be called more than
	// once.
	Close() error
}

// Modes of a Publisher.
const (
	ModePolling = "polling"
	ModeFanOut  = "fan-out"
)

var _ Publisher = (*Reader)(nil)

// Mode is ModePolling.
func (r *Reader) Mode() string { return ModePolling }

// Close does nothing: a GetRecords reader holds nothing open.
func (r *Reader) Close() error { return nil }
