package redrive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/stream"
)

// Formats of an on-failure message, in Entry.Format.
const (
	// FormatShardline is Shardline's own record: it carries the records.
	FormatShardline = "shardline"
	// FormatLambda is Lambda's SQS or SNS record: metadata only.
	FormatLambda = "lambda"
	// FormatLambdaS3 is Lambda's S3 object: the event in "payload".
	FormatLambdaS3 = "lambda-s3"
)

// Entry is what one on-failure message holds.
type Entry struct {
	Format    string
	ShardID   string
	StreamARN string
	// Records are whole user records (Shardline's records, or the user
	// records of a Lambda S3 object's payload).
	Records []stream.Record
	// Chunks are pieces of records too large for one message: Record's
	// Data is the piece, at Offset of a record of Size bytes.
	Chunks []Chunk
	// Range is set for Lambda's metadata-only records: the records are
	// read back from the stream.
	Range *Range
}

// Chunk is a piece of one record's data.
type Chunk struct {
	Record       stream.Record
	Offset, Size int64
}

// Range is a batch Lambda gave up, as its SQS and SNS records name it:
// the records Start..End (inclusive) of ShardID.
type Range struct {
	ShardID, StreamARN string
	Start, End         string
	FirstArrival       time.Time
	LastArrival        time.Time
	BatchSize          int
}

// ErrNotOnFailure means a message is not an on-failure record of a
// Kinesis source.
var ErrNotOnFailure = errors.New("not an on-failure record of a Kinesis event source (no KinesisBatchInfo)")

// doc is what Parse reads of a message: the record's fields, and those of
// an SNS envelope.
type doc struct {
	record.Record
	Records *[]record.Item `json:"records"`
	// An SNS notification (an SQS queue subscribed to a topic without raw
	// message delivery) holds the record as a string in Message.
	Type    string `json:"Type"`
	Message string `json:"Message"`
}

// Parse reads one message's body: Shardline's on-failure record, Lambda's
// (metadata only, or an S3 object's payload), either inside an SNS
// notification.
func Parse(body []byte) (Entry, error) {
	var d doc
	if err := json.Unmarshal(bytes.TrimSpace(body), &d); err != nil {
		return Entry{}, fmt.Errorf("not JSON: %w", err)
	}
	if d.Type == "Notification" && d.Message != "" {
		return Parse([]byte(d.Message))
	}
	b := d.KinesisBatchInfo
	if b.ShardID == "" || b.StartSequenceNumber == "" {
		return Entry{}, ErrNotOnFailure
	}
	e := Entry{ShardID: b.ShardID, StreamARN: b.StreamARN}
	switch {
	case d.Records != nil:
		e.Format = FormatShardline
		for _, it := range *d.Records {
			r, err := fromItem(b.ShardID, it)
			if err != nil {
				return Entry{}, err
			}
			if it.DataOffset != nil || it.DataSize != nil {
				if it.DataOffset == nil || it.DataSize == nil || *it.DataOffset < 0 || *it.DataOffset+int64(len(it.Data)) > *it.DataSize {
					return Entry{}, fmt.Errorf("record %s: chunk with dataOffset %v and dataSize %v of %d bytes", r.Position(), it.DataOffset, it.DataSize, len(it.Data))
				}
				e.Chunks = append(e.Chunks, Chunk{Record: r, Offset: *it.DataOffset, Size: *it.DataSize})
				continue
			}
			e.Records = append(e.Records, r)
		}
	case d.Payload != "":
		e.Format = FormatLambdaS3
		recs, err := fromPayload(b.ShardID, d.Payload)
		if err != nil {
			return Entry{}, err
		}
		e.Records = recs
	default:
		e.Format = FormatLambda
		first, _ := time.Parse(time.RFC3339Nano, b.ApproximateArrivalOfFirstRecord)
		last, _ := time.Parse(time.RFC3339Nano, b.ApproximateArrivalOfLastRecord)
		if b.EndSequenceNumber == "" {
			return Entry{}, fmt.Errorf("KinesisBatchInfo of %s has no endSequenceNumber", b.ShardID)
		}
		if stream.CompareSeq(b.StartSequenceNumber, b.EndSequenceNumber) > 0 {
			return Entry{}, fmt.Errorf("KinesisBatchInfo of %s: startSequenceNumber %s is after endSequenceNumber %s", b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber)
		}
		e.Range = &Range{ShardID: b.ShardID, StreamARN: b.StreamARN, Start: b.StartSequenceNumber, End: b.EndSequenceNumber,
			FirstArrival: first, LastArrival: last, BatchSize: b.BatchSize}
	}
	return e, nil
}

func fromItem(shard string, it record.Item) (stream.Record, error) {
	if !isDigits(it.SequenceNumber) || it.SubSequenceNumber < 0 {
		return stream.Record{}, fmt.Errorf("record with sequence number %q and sub-sequence number %d: allowed digits and a number from 0", it.SequenceNumber, it.SubSequenceNumber)
	}
	at, err := time.Parse(time.RFC3339Nano, it.ApproximateArrivalTimestamp)
	if err != nil && it.ApproximateArrivalTimestamp != "" {
		return stream.Record{}, fmt.Errorf("record %s: approximateArrivalTimestamp %q: %w", it.SequenceNumber, it.ApproximateArrivalTimestamp, err)
	}
	data := it.Data
	if data == nil {
		data = []byte{}
	}
	return stream.Record{
		ShardID: shard, SequenceNumber: it.SequenceNumber, SubSequenceNumber: it.SubSequenceNumber,
		Aggregated: it.SubSequenceNumber > 0, PartitionKey: it.PartitionKey, ExplicitHashKey: it.ExplicitHashKey,
		Data: data, ApproximateArrivalTimestamp: at,
	}, nil
}

// fromPayload reads the records of an S3 object's payload, the event the
// function was given: Lambda's own trigger hands KPL aggregates over
// whole, so they are de-aggregated here, as a reader does.
func fromPayload(shard, payload string) ([]stream.Record, error) {
	var ev events.KinesisEvent
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		return nil, fmt.Errorf("payload is not a Kinesis event: %w", err)
	}
	var out []stream.Record
	for _, r := range ev.Records {
		k := r.Kinesis
		s, pos, aggregated, err := stream.ParseEventID(r.EventID)
		if err != nil || s == "" {
			s, pos = shard, stream.Position{Seq: k.SequenceNumber}
		}
		if !isDigits(k.SequenceNumber) {
			return nil, fmt.Errorf("payload record %q: sequence number %q: allowed digits", r.EventID, k.SequenceNumber)
		}
		if aggregated {
			// A user record already (a Shardline poller's event): as is.
			out = append(out, stream.Record{ShardID: s, SequenceNumber: k.SequenceNumber, SubSequenceNumber: pos.SubSeq, Aggregated: true,
				PartitionKey: k.PartitionKey, Data: k.Data, ApproximateArrivalTimestamp: k.ApproximateArrivalTimestamp.Time})
			continue
		}
		kr := types.Record{SequenceNumber: aws.String(k.SequenceNumber), PartitionKey: aws.String(k.PartitionKey), Data: k.Data,
			ApproximateArrivalTimestamp: aws.Time(k.ApproximateArrivalTimestamp.Time)}
		out, _ = kpl.Deaggregate(out, s, &kr, kpl.HashRange{})
	}
	return out, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
