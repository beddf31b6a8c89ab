package handlers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

// PrintLine is one line of the print handler's output, one per record, in
// this key order:
//
//	{"shardId":"shardId-000000000006","sequenceNumber":"4959…","subSequenceNumber":0,
//	 "partitionKey":"pk","approximateArrivalTimestamp":1545084650.987,"data":"3 7 1 9"}
//
// ShardID and SubSequenceNumber come from the record's eventID
// (stream.ParseEventID); a record whose eventID does not parse is printed
// all the same, with ShardID "" and SubSequenceNumber 0.
//
// ApproximateArrivalTimestamp is in epoch seconds with a fraction, rounded
// to the millisecond Kinesis keeps, and written as Lambda's event writes it
// (1545084650.987), so a line can be matched with its event; a missing
// timestamp is 0. (It is not written with events.SecondsEpochTime, whose
// float64(UnixNano)/1e9 renders about a quarter of millisecond timestamps
// with noise: 1545084711.1660001.)
//
// Data is the payload as a JSON string when it is valid UTF-8; otherwise it
// is standard base64 and Encoding is "base64" (the key is absent otherwise).
type PrintLine struct {
	ShardID                     string  `json:"shardId"`
	SequenceNumber              string  `json:"sequenceNumber"`
	SubSequenceNumber           int64   `json:"subSequenceNumber"`
	PartitionKey                string  `json:"partitionKey"`
	ApproximateArrivalTimestamp float64 `json:"approximateArrivalTimestamp"`
	Data                        string  `json:"data"`
	Encoding                    string  `json:"encoding,omitempty"`
}

// Printer is the "print" handler: it writes every record of a batch to its
// output as a PrintLine in JSON, one per line. A batch is written with a
// single Write under a lock, so lines (and batches) from concurrent calls
// never interleave. It never drops a record and returns an empty response;
// it fails the batch only if the output cannot be written.
type Printer struct {
	mu  sync.Mutex
	out io.Writer
}

// NewPrinter returns a Printer writing to o.Out (os.Stdout if nil). Only
// Out is used.
func NewPrinter(o Options) *Printer {
	out := o.Out
	if out == nil {
		out = os.Stdout
	}
	return &Printer{out: out}
}

func newPrintHandler(o Options) (stream.Handler, error) { return NewPrinter(o).Handle, nil }

// Handle prints ev's records. It has the stream.Handler signature.
func (p *Printer) Handle(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range ev.Records {
		r := &ev.Records[i]
		if err := enc.Encode(NewPrintLine(r)); err != nil {
			return events.KinesisEventResponse{}, fmt.Errorf("print record %s: %w", r.EventID, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.out.Write(buf.Bytes()); err != nil {
		return events.KinesisEventResponse{}, fmt.Errorf("print %d records: %w", len(ev.Records), err)
	}
	return events.KinesisEventResponse{}, nil
}

// NewPrintLine is the PrintLine for r.
func NewPrintLine(r *events.KinesisEventRecord) PrintLine {
	shardID, pos, _, err := stream.ParseEventID(r.EventID)
	if err != nil {
		shardID, pos = "", stream.Position{}
	}
	l := PrintLine{
		ShardID:                     shardID,
		SequenceNumber:              r.Kinesis.SequenceNumber,
		SubSequenceNumber:           pos.SubSeq,
		PartitionKey:                r.Kinesis.PartitionKey,
		ApproximateArrivalTimestamp: epochSeconds(r.Kinesis.ApproximateArrivalTimestamp.Time),
	}
	if utf8.Valid(r.Kinesis.Data) {
		l.Data = string(r.Kinesis.Data)
	} else {
		l.Data = base64.StdEncoding.EncodeToString(r.Kinesis.Data)
		l.Encoding = "base64"
	}
	return l
}

// epochSeconds is t in epoch seconds rounded to the millisecond, the number
// Lambda writes as a Kinesis record's approximateArrivalTimestamp: encoded
// by encoding/json it reads 1545084650.987. The zero time is 0.
func epochSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	// An integer count of milliseconds is exact in a float64, and one
	// correctly rounded division gives the float64 nearest the decimal
	// value, which encoding/json prints as that decimal.
	return float64(t.Round(time.Millisecond).UnixMilli()) / 1000
}
