package handlers

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func loadEvent(t *testing.T, name string) events.KinesisEvent {
	t.Helper()
	b, err := os.ReadFile("../../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestDeaggregatingAggregatedEvent: the KPL-aggregated event (as Lambda's
// native trigger delivers it) reaches the handler as user records, and a
// failure of a user record is answered as its carrier's sequence number.
func TestDeaggregatingAggregatedEvent(t *testing.T) {
	ev := loadEvent(t, "kinesis-aggregated.json")
	var seen events.KinesisEvent
	h := Deaggregating(func(ctx context.Context, e events.KinesisEvent) (events.KinesisEventResponse, error) {
		seen = e
		last := e.Records[len(e.Records)-1]
		_, id, _ := strings.Cut(last.EventID, ":")
		return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{{ItemIdentifier: id}}}, nil
	})
	resp, err := h(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen.Records) <= len(ev.Records) {
		t.Fatalf("handler saw %d records for %d aggregates, want more", len(seen.Records), len(ev.Records))
	}
	for _, r := range seen.Records {
		if strings.Count(r.EventID, ":") != 2 {
			t.Errorf("eventID %q: want shardId:seq:sub", r.EventID)
		}
		if r.EventSourceArn != ev.Records[0].EventSourceArn || r.AwsRegion != ev.Records[0].AwsRegion {
			t.Errorf("record lost its source: %+v", r)
		}
		if strings.HasPrefix(string(r.Kinesis.Data), "\xf3\x89\x9a\xc2") {
			t.Errorf("record %s is still an aggregate", r.EventID)
		}
	}
	want := ev.Records[len(ev.Records)-1].Kinesis.SequenceNumber
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != want {
		t.Fatalf("failures = %+v, want the carrier's sequence number %s", resp.BatchItemFailures, want)
	}
}

// TestDeaggregatingPlainEvent: a plain event passes through unchanged.
func TestDeaggregatingPlainEvent(t *testing.T) {
	ev := loadEvent(t, "kinesis.json")
	var seen events.KinesisEvent
	h := Deaggregating(func(ctx context.Context, e events.KinesisEvent) (events.KinesisEventResponse, error) {
		seen = e
		return events.KinesisEventResponse{}, nil
	})
	if _, err := h(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(ev)
	b, _ := json.Marshal(seen)
	if string(a) != string(b) {
		t.Fatalf("plain event changed:\n%s\n%s", a, b)
	}
}
