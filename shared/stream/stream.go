package stream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/aws/aws-lambda-go/events"
)

// Sentinel checkpoint values, as the KCL writes them in the lease table.
const (
	TrimHorizon = "TRIM_HORIZON"
	Latest      = "LATEST"
	AtTimestamp = "AT_TIMESTAMP"
	ShardEnd    = "SHARD_END"
)

// Position is a place in a shard: a Kinesis sequence number and, for user
// records packed in a KPL aggregate, the index of the user record inside it
// (the sub-sequence number). A checkpoint Position means "every user record
// up to and including this one is done". Seq may also hold one of the
// sentinels TrimHorizon, Latest, AtTimestamp or ShardEnd.
type Position struct {
	Seq    string
	SubSeq int64
}

// IsSentinel reports whether p names no record but a sentinel.
func (p Position) IsSentinel() bool { return IsSentinelSeq(p.Seq) }

// IsSentinelSeq reports whether a checkpoint value is a sentinel (or empty)
// rather than a sequence number.
func IsSentinelSeq(seq string) bool {
	switch seq {
	case TrimHorizon, Latest, AtTimestamp, ShardEnd, "":
		return true
	}
	return false
}

// String renders p as "seq" or "seq/sub" when sub is non-zero.
func (p Position) String() string {
	if p.SubSeq == 0 {
		return p.Seq
	}
	return p.Seq + "/" + strconv.FormatInt(p.SubSeq, 10)
}

// After reports whether p is strictly after q. Both must be record
// positions (not sentinels); sequence numbers are compared as decimal
// integers of arbitrary length.
func (p Position) After(q Position) bool {
	if c := CompareSeq(p.Seq, q.Seq); c != 0 {
		return c > 0
	}
	return p.SubSeq > q.SubSeq
}

// CompareSeq compares two decimal sequence numbers of any length: -1, 0 or 1.
func CompareSeq(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return strings.Compare(a, b)
}

// Record is one user record: a plain Kinesis record, or one user record
// taken out of a KPL aggregate (Aggregated true, SubSequenceNumber its index).
type Record struct {
	ShardID                     string
	SequenceNumber              string
	SubSequenceNumber           int64
	Aggregated                  bool
	PartitionKey                string
	ExplicitHashKey             string
	Data                        []byte
	ApproximateArrivalTimestamp time.Time
	EncryptionType              string
}

// Position is where r stands in its shard.
func (r *Record) Position() Position {
	return Position{Seq: r.SequenceNumber, SubSeq: r.SubSequenceNumber}
}

// EventID is the record's eventID in a handler event: "shardId:seq" as
// Lambda writes it, and "shardId:seq:sub" for a user record that came out of
// a KPL aggregate, so that every user record has an identifier of its own.
func (r *Record) EventID() string {
	if !r.Aggregated {
		return r.ShardID + ":" + r.SequenceNumber
	}
	return r.ShardID + ":" + r.SequenceNumber + ":" + strconv.FormatInt(r.SubSequenceNumber, 10)
}

// ItemIdentifier is what a handler returns in batchItemFailures for r: its
// sequence number, with ":sub" for a de-aggregated user record. A bare
// sequence number is accepted too (see dispatch).
func (r *Record) ItemIdentifier() string {
	if !r.Aggregated {
		return r.SequenceNumber
	}
	return r.SequenceNumber + ":" + strconv.FormatInt(r.SubSequenceNumber, 10)
}

// ParseEventID splits an eventID made by Record.EventID (or by Lambda) into
// the shard id and the position.
func ParseEventID(id string) (shardID string, pos Position, aggregated bool, err error) {
	parts := strings.Split(id, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", Position{}, false, fmt.Errorf("eventID %q: want shardId:sequenceNumber[:subSequenceNumber]", id)
	}
	pos.Seq = parts[1]
	if len(parts) == 3 {
		sub, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || sub < 0 {
			return "", Position{}, false, fmt.Errorf("eventID %q: sub-sequence number %q is not a non-negative integer", id, parts[2])
		}
		pos.SubSeq = sub
		aggregated = true
	}
	return parts[0], pos, aggregated, nil
}

// Handler is the AWS Lambda Kinesis handler signature. Shardline calls a
// handler serially within a shard and concurrently across shards.
type Handler func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error)

// WindowHandler is the AWS Lambda signature of a Kinesis handler with a
// tumbling window (TumblingWindowInSeconds): it receives the window, the
// state returned by the previous call for that window and the window's
// records, and returns the new state. A response without state (a nil
// map) is a failed invocation, as on Lambda. Shardline calls it serially
// within a shard and concurrently across shards.
type WindowHandler func(context.Context, events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error)

// Source is what an event says about where its records came from.
type Source struct {
	StreamARN         string // eventSourceARN
	Region            string // awsRegion
	InvokeIdentityARN string // invokeIdentityArn
}

// Event builds the Lambda Kinesis event for recs, field by field as Lambda's
// event source mapping writes it.
func Event(src Source, recs []Record) events.KinesisEvent {
	ev := events.KinesisEvent{Records: make([]events.KinesisEventRecord, len(recs))}
	// The eventIDs share one buffer, sized first so that it never moves:
	// one allocation for the batch instead of one per record.
	size := 0
	for i := range recs {
		size += len(recs[i].ShardID) + 1 + len(recs[i].SequenceNumber)
		if recs[i].Aggregated {
			size += 1 + len("-9223372036854775808")
		}
	}
	ids := make([]byte, 0, size)
	for i := range recs {
		r := &recs[i]
		at := len(ids)
		ids = append(append(append(ids, r.ShardID...), ':'), r.SequenceNumber...)
		if r.Aggregated {
			ids = strconv.AppendInt(append(ids, ':'), r.SubSequenceNumber, 10)
		}
		var id string
		if len(ids) > at {
			id = unsafe.String(&ids[at], len(ids)-at) // ids is never written there again
		}
		// Field by field, in place: a struct literal is built on the stack
		// and copied with a bulk write barrier.
		e := &ev.Records[i]
		e.AwsRegion = src.Region
		e.EventID = id
		e.EventName = "aws:kinesis:record"
		e.EventSource = "aws:kinesis"
		e.EventSourceArn = src.StreamARN
		e.EventVersion = "1.0"
		e.InvokeIdentityArn = src.InvokeIdentityARN
		k := &e.Kinesis
		k.ApproximateArrivalTimestamp.Time = r.ApproximateArrivalTimestamp
		k.Data = r.Data
		k.EncryptionType = r.EncryptionType
		k.PartitionKey = r.PartitionKey
		k.SequenceNumber = r.SequenceNumber
		k.KinesisSchemaVersion = "1.0"
	}
	return ev
}

// OwnData gives ev's records data of their own: one new buffer for the
// batch, each record's Data a capacity-bounded slice of it. The dispatcher
// uses it for the calls of a batch whose Data were read again after a
// failed call (dispatch.Config.Reread): a handler that decodes or decrypts
// Data in place then changes its own copy, never what the next retry, a
// bisected half or the on-failure destination gets.
func OwnData(ev *events.KinesisEvent) {
	n := 0
	for i := range ev.Records {
		n += len(ev.Records[i].Kinesis.Data)
	}
	if n == 0 {
		return
	}
	buf := make([]byte, n)
	for i := range ev.Records {
		k := &ev.Records[i].Kinesis
		if k.Data == nil {
			continue
		}
		m := copy(buf, k.Data)
		k.Data, buf = buf[:m:m], buf[m:]
	}
}
