package redrive

import (
	"context"
	"errors"
	"fmt"

	"github.com/shardline/shardline/shared/stream"
)

// Message is one message of a source: an SQS message, an S3 object, a
// line of a file.
type Message struct {
	// ID names it in logs and errors: the SQS message id, the S3 key,
	// the file's path and line.
	ID   string
	Body []byte
	// Receives is how many times the message was received, this time
	// included (SQS's ApproximateReceiveCount); 0 where a source does
	// not count.
	Receives int
	ref      any // the source's own handle (receipt handle, key, line)
}

// Source is where an -on-failure destination put records given up. Its
// methods are called from one goroutine at a time, except that Done may
// run beside Next.
type Source interface {
	// String names the source as -from gave it.
	String() string
	// Check makes sure the source exists and can be read; an error is
	// one line naming it.
	Check(ctx context.Context) error
	// Next returns the next messages, at most n; none when the source
	// has no more. Messages returned are held (an SQS message kept
	// invisible) until Done or Release, or Close.
	Next(ctx context.Context, n int) ([]*Message, error)
	// Done cleans up messages whose every record was handled (or given
	// up to -on-failure): SQS deletes them, S3 moves them (or deletes
	// them), a file drops their lines at Close.
	Done(ctx context.Context, msgs []*Message) error
	// Release gives back messages that stay where they are (an SQS
	// message visible again at once).
	Release(ctx context.Context, msgs []*Message) error
	// Close ends the redrive's use of the source: a file is rewritten
	// without the lines of messages done.
	Close(ctx context.Context) error
}

// RangeReader reads records back from a stream, for Lambda's
// metadata-only on-failure records.
type RangeReader interface {
	// ReadRange returns the user records of shard from the Kinesis record
	// start through the Kinesis record end (sequence numbers, both
	// inclusive, with every user record of an aggregate), in order. A
	// range whose start the stream no longer holds (past its retention)
	// is an error wrapping ErrPastRetention.
	ReadRange(ctx context.Context, streamName, shardID, start, end string) ([]stream.Record, error)
}

// ErrPastRetention means records are no longer in the stream: it trimmed
// them after its retention period.
var ErrPastRetention = errors.New("past the stream's retention")

// ErrNoSource means the queue, bucket or file -from names does not exist.
var ErrNoSource = errors.New("does not exist")

// NotFoundError says the source does not exist.
type NotFoundError struct {
	What string // "SQS queue https://…", "S3 bucket b", "file /p"
	Err  error
}

func (e *NotFoundError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s does not exist: %v", e.What, e.Err)
	}
	return e.What + " does not exist"
}

func (e *NotFoundError) Unwrap() error { return ErrNoSource }
