package handlers

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/stream"
)

// Deaggregating wraps h for a Lambda function that Lambda's own Kinesis
// event source mapping may invoke: that trigger delivers KPL aggregates as
// they are, so each aggregate in the event is replaced by its user records
// (eventID shardId:seq:sub, their own partition keys) before h sees them.
// Failures h reports for a user record ("seq:sub") are answered to Lambda
// as the aggregate's sequence number, where Lambda resumes. Events from
// Shardline's pollers (already de-aggregated) pass through unchanged.
func Deaggregating(h stream.Handler) stream.Handler {
	return func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		out, expanded := DeaggregateEvent(ev)
		if !expanded {
			return h(ctx, ev)
		}
		resp, err := h(ctx, out)
		if err != nil {
			return resp, err
		}
		for i, f := range resp.BatchItemFailures {
			// "seq:sub" names a user record; Lambda knows its carrier, seq.
			resp.BatchItemFailures[i].ItemIdentifier, _, _ = strings.Cut(f.ItemIdentifier, ":")
		}
		return resp, nil
	}
}

// DeaggregateEvent replaces every KPL aggregate in ev by its user records,
// and reports whether it found any. Damaged aggregates stay as they are.
func DeaggregateEvent(ev events.KinesisEvent) (events.KinesisEvent, bool) {
	var out events.KinesisEvent
	found := false
	var recs []stream.Record
	for _, r := range ev.Records {
		shardID, _, _, _ := stream.ParseEventID(r.EventID) // "" if unreadable
		k := r.Kinesis
		var arrival *time.Time
		if !k.ApproximateArrivalTimestamp.IsZero() {
			t := k.ApproximateArrivalTimestamp.Time
			arrival = &t
		}
		recs, _ = kpl.Deaggregate(recs[:0], shardID, &types.Record{
			Data: k.Data, PartitionKey: aws.String(k.PartitionKey), SequenceNumber: aws.String(k.SequenceNumber),
			ApproximateArrivalTimestamp: arrival, EncryptionType: types.EncryptionType(k.EncryptionType),
		}, kpl.HashRange{})
		if len(recs) == 1 && !recs[0].Aggregated {
			out.Records = append(out.Records, r)
			continue
		}
		found = true
		src := stream.Source{StreamARN: r.EventSourceArn, Region: r.AwsRegion, InvokeIdentityARN: r.InvokeIdentityArn}
		out.Records = append(out.Records, stream.Event(src, recs).Records...)
	}
	return out, found
}

// DeaggregatingWindow is Deaggregating for a windowed handler: Lambda's
// trigger with TumblingWindowInSeconds delivers KPL aggregates as they
// are, so each is replaced by its user records before h sees the window's
// records, and a failure h reports for a user record is answered as its
// aggregate's sequence number.
func DeaggregatingWindow(h stream.WindowHandler) stream.WindowHandler {
	return func(ctx context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
		out, expanded := DeaggregateEvent(ev.KinesisEvent)
		if !expanded {
			return h(ctx, ev)
		}
		ev.KinesisEvent = out
		resp, err := h(ctx, ev)
		if err != nil {
			return resp, err
		}
		for i, f := range resp.BatchItemFailures {
			resp.BatchItemFailures[i].ItemIdentifier, _, _ = strings.Cut(f.ItemIdentifier, ":")
		}
		return resp, nil
	}
}
