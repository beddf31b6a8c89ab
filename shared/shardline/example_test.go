package shardline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/shardline"
)

// countKeys counts records per partition key. A record it cannot take is
// reported with ItemFailure: Shardline (and Lambda) retry from it.
func countKeys(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	var resp events.KinesisEventResponse
	counts := map[string]int{}
	for _, r := range ev.Records {
		if len(r.Kinesis.Data) == 0 {
			resp.BatchItemFailures = append(resp.BatchItemFailures, shardline.ItemFailure(r))
			break
		}
		counts[r.Kinesis.PartitionKey]++
	}
	return resp, nil
}

// A main with one call: on Lambda the native trigger's function and the
// scheduled poller, anywhere else the poller's command line.
func ExampleStart() {
	shardline.Start(countKeys, shardline.WithAppName("keycount"))
}

// Several handlers in one binary, chosen with -handler (SHARDLINE_HANDLER).
func ExampleWithHandler() {
	app := shardline.New(
		shardline.Handle(countKeys), // the default
		shardline.WithHandler("audit", func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			log.Printf("%d records", len(ev.Records))
			return events.KinesisEventResponse{}, nil
		}),
	)
	app.Start()
}

// A service that serves HTTP and reads the stream: the worker runs until
// the context ends, then drains (finishes batches in flight, checkpoints,
// releases its leases).
func ExampleNewWorker() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	s, err := shardline.SettingsFromEnv(os.Getenv) // SHARDLINE_* variables, if any
	if err != nil {
		log.Fatal(err)
	}
	s.AppName, s.StreamName = "keycount", "orders"
	w, err := shardline.NewWorker(ctx, s, countKeys)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/progress", func(rw http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(rw).Encode(w.Snapshot())
	})
	go func() { _ = http.ListenAndServe("127.0.0.1:8080", nil) }()
	if err := w.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// Invoke answers an event as the binary does on Lambda, for tests of a
// program's answers without the Lambda runtime.
func ExampleApp_Invoke() {
	app := shardline.New(shardline.Handle(countKeys))
	event := `{"Records":[
	 {"eventSource":"aws:kinesis","eventID":"shardId-000000000000:101","kinesis":{"partitionKey":"a","sequenceNumber":"101","data":"eA=="}},
	 {"eventSource":"aws:kinesis","eventID":"shardId-000000000000:102","kinesis":{"partitionKey":"b","sequenceNumber":"102","data":""}}]}`
	answer, err := app.Invoke(context.Background(), json.RawMessage(event))
	out, _ := json.Marshal(answer)
	fmt.Println(string(out), err)

	_, err = app.Invoke(context.Background(), json.RawMessage(`{"key1":"value1"}`))
	fmt.Println(err)
	// Output:
	// {"batchItemFailures":[{"itemIdentifier":"102"}]} <nil>
	// event not handled: an event with keys [key1]: want a Kinesis event (Records from aws:kinesis), a scheduled event ("source": "aws.events") or {"shardline":"poll"}
}

// ItemFailure names a user record of a KPL aggregate by its sub-sequence
// number too, so that a retry starts at that user record.
func ExampleItemFailure() {
	r := events.KinesisEventRecord{EventID: "shardId-000000000001:49591:3", Kinesis: events.KinesisRecord{SequenceNumber: "49591"}}
	fmt.Println(shardline.ItemFailure(r).ItemIdentifier)
	// Output: 49591:3
}
