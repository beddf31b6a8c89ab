package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/stream"
)

// Version is the invocation record's version, as Lambda writes it.
const Version = "1.0"

// TimeFormat is how the record writes times, as Lambda does: UTC with
// milliseconds ("2019-11-14T00:38:06.021Z").
const TimeFormat = "2006-01-02T15:04:05.000Z"

// ExecutedVersion is the responseContext.executedVersion written: Shardline
// does not learn the version a call ran, and writes what Lambda writes for
// an unqualified function.
const ExecutedVersion = "$LATEST"

// Record is one on-failure record. Its fields up to Payload are Lambda's,
// in Lambda's order; Part, Parts and Records are Shardline's.
type Record struct {
	RequestContext RequestContext `json:"requestContext"`
	// ResponseContext is null when no call was made (Attempts 0: records
	// past their age, or too large, before any call).
	ResponseContext  *ResponseContext `json:"responseContext"`
	Version          string           `json:"version"`
	Timestamp        string           `json:"timestamp"`
	KinesisBatchInfo BatchInfo        `json:"KinesisBatchInfo"`
	// Payload is the invocation event the function was given, as an
	// escaped JSON string (Lambda writes it to S3 destinations only).
	Payload string `json:"payload,omitempty"`
	// Part and Parts number the messages a record too large for one
	// message was split into (1..Parts); absent when it was not split.
	Part  int `json:"part,omitempty"`
	Parts int `json:"parts,omitempty"`
	// Records are the user records given up, in order (all of them, or
	// this message's share when split).
	Records []Item `json:"records"`
}

// RequestContext is Lambda's requestContext.
type RequestContext struct {
	RequestID              string `json:"requestId"`
	FunctionARN            string `json:"functionArn"`
	Condition              string `json:"condition"`
	ApproximateInvokeCount int    `json:"approximateInvokeCount"`
}

// ResponseContext is Lambda's responseContext: the last call's answer.
type ResponseContext struct {
	StatusCode      int    `json:"statusCode"`
	ExecutedVersion string `json:"executedVersion,omitempty"`
	FunctionError   string `json:"functionError,omitempty"`
}

// BatchInfo is Lambda's KinesisBatchInfo: the whole batch given up, also
// in each part of a split record.
type BatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

// Item is one user record given up. Data is base64 in JSON. A record too
// large for a message on its own is carried in chunks: each chunk item
// has the record's other fields, a piece of Data, DataOffset (where the
// piece starts in the record's data) and DataSize (the whole data's
// length); items of whole records have neither.
type Item struct {
	SequenceNumber              string `json:"sequenceNumber"`
	SubSequenceNumber           int64  `json:"subSequenceNumber"`
	PartitionKey                string `json:"partitionKey"`
	ExplicitHashKey             string `json:"explicitHashKey,omitempty"`
	ApproximateArrivalTimestamp string `json:"approximateArrivalTimestamp"`
	Data                        []byte `json:"data"`
	DataOffset                  *int64 `json:"dataOffset,omitempty"`
	DataSize                    *int64 `json:"dataSize,omitempty"`
}

// New builds the record of f, without Payload.
func New(f dispatch.Failure) Record {
	r := Record{
		RequestContext: RequestContext{
			RequestID: f.RequestID, FunctionARN: f.FunctionARN,
			Condition: f.Condition, ApproximateInvokeCount: f.Attempts,
		},
		Version:   Version,
		Timestamp: formatTime(f.Time),
		KinesisBatchInfo: BatchInfo{
			ShardID: f.ShardID, BatchSize: len(f.Records), StreamARN: f.StreamARN,
		},
		Records: make([]Item, len(f.Records)),
	}
	if r.RequestContext.Condition == "" {
		r.RequestContext.Condition = dispatch.ConditionOf(f.Reason)
	}
	switch {
	case f.NotInvoked && f.StatusCode > 0:
		// The last call was refused by the Invoke API: its status, no
		// function error (the function did not run).
		r.ResponseContext = &ResponseContext{StatusCode: f.StatusCode}
	case f.NotInvoked:
		// The last call got no answer at all (not sent): no response.
	case f.Attempts > 0:
		r.ResponseContext = &ResponseContext{StatusCode: 200, ExecutedVersion: ExecutedVersion, FunctionError: f.FunctionError}
	}
	if n := len(f.Records); n > 0 {
		first, last := &f.Records[0], &f.Records[n-1]
		b := &r.KinesisBatchInfo
		b.StartSequenceNumber, b.EndSequenceNumber = first.SequenceNumber, last.SequenceNumber
		b.ApproximateArrivalOfFirstRecord = formatTime(first.ApproximateArrivalTimestamp)
		b.ApproximateArrivalOfLastRecord = formatTime(last.ApproximateArrivalTimestamp)
		if b.ShardID == "" {
			b.ShardID = first.ShardID
		}
	}
	for i := range f.Records {
		rec := &f.Records[i]
		r.Records[i] = Item{
			SequenceNumber: rec.SequenceNumber, SubSequenceNumber: rec.SubSequenceNumber,
			PartitionKey: rec.PartitionKey, ExplicitHashKey: rec.ExplicitHashKey,
			ApproximateArrivalTimestamp: formatTime(rec.ApproximateArrivalTimestamp),
			Data:                        rec.Data,
		}
		if rec.Data == nil {
			r.Records[i].Data = []byte{} // "", not null
		}
	}
	return r
}

// WithPayload is New with Payload: the Kinesis event of f's records, as
// invoke.Marshal writes it for a function (the region taken from the
// stream ARN), as an escaped JSON string. For S3.
func WithPayload(f dispatch.Failure) (Record, error) {
	r := New(f)
	ev := stream.Event(stream.Source{StreamARN: f.StreamARN, Region: regionOf(f.StreamARN)}, f.Records)
	b, err := invoke.Marshal(ev)
	if err != nil {
		return Record{}, fmt.Errorf("write the payload: %w", err)
	}
	r.Payload = string(b)
	return r, nil
}

// Marshal writes r as one JSON document (no trailing newline). The
// noncharacters U+FFFE and U+FFFF, which SQS refuses in a message, are
// written as \ufffe and \uffff escapes.
func Marshal(r Record) ([]byte, error) {
	if r.Records == nil {
		r.Records = []Item{}
	}
	return encode(r)
}

var (
	escFFFE = []byte(`\ufffe`)
	escFFFF = []byte(`\uffff`)
)

// encode is json.Marshal with U+FFFE and U+FFFF escaped (they can only
// stand inside strings, where the escape means the same).
func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if bytes.Contains(b, []byte("\xef\xbf\xbe")) || bytes.Contains(b, []byte("\xef\xbf\xbf")) {
		b = bytes.ReplaceAll(b, []byte("\xef\xbf\xbe"), escFFFE)
		b = bytes.ReplaceAll(b, []byte("\xef\xbf\xbf"), escFFFF)
	}
	return b, nil
}

// regionOf is the region of an ARN (arn:partition:service:region:...).
func regionOf(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 || parts[0] != "arn" {
		return ""
	}
	return parts[3]
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// DeduplicationID identifies one message of one Send of f, for FIFO
// queues and topics: the same for a message the SDK sends again, another
// for the next Send of the same records (a new Failure.Time). 64 hex
// digits.
func DeduplicationID(f dispatch.Failure, part, parts int) string {
	h := sha256.New()
	first, last := stream.Position{}, stream.Position{}
	if n := len(f.Records); n > 0 {
		first, last = f.Records[0].Position(), f.Records[n-1].Position()
	}
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%d", f.StreamARN, f.ShardID, first, last, f.Time.UnixNano(), part, parts)
	return hex.EncodeToString(h.Sum(nil))
}
