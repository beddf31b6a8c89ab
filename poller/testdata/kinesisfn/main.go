// Command kinesisfn is a test Lambda function with the Kinesis handler
// signature. It appends one JSON line per invocation to $RECORD_FILE and
// fails on purpose, once per record: data "fail-item:…" is reported in
// batchItemFailures, data "fail-batch:…" makes the invocation return an
// error (a function error, X-Amz-Function-Error), data "crash:…" makes the
// process exit with status 2 (once per record across processes: a marker
// file beside $RECORD_FILE remembers it).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type attempt struct {
	IDs        []string `json:"ids"`
	FailedFrom int      `json:"failedFrom"` // index of the lowest failed item; -1 none
	Error      bool     `json:"error"`
}

var seen = map[string]bool{}

func handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	a := attempt{FailedFrom: -1}
	var resp events.KinesisEventResponse
	for i, r := range ev.Records {
		data := string(r.Kinesis.Data)
		a.IDs = append(a.IDs, data)
		switch {
		case strings.HasPrefix(data, "fail-batch:") && !seen[data]:
			seen[data] = true
			a.Error = true
		case strings.HasPrefix(data, "crash:"):
			marker := os.Getenv("RECORD_FILE") + "." + strings.TrimPrefix(data, "crash:") + ".crashed"
			if _, err := os.Stat(marker); err != nil {
				_ = os.WriteFile(marker, nil, 0o644)
				a.Error = true
				if f, err := os.OpenFile(os.Getenv("RECORD_FILE"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
					_ = json.NewEncoder(f).Encode(a)
					f.Close()
				}
				os.Exit(2)
			}
		case strings.HasPrefix(data, "fail-item:") && !seen[data]:
			seen[data] = true
			if a.FailedFrom < 0 {
				a.FailedFrom = i
			}
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
		}
	}
	f, err := os.OpenFile(os.Getenv("RECORD_FILE"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return resp, err
	}
	defer f.Close()
	if err := json.NewEncoder(f).Encode(a); err != nil {
		return resp, err
	}
	if a.Error {
		return events.KinesisEventResponse{}, fmt.Errorf("failing the batch on purpose")
	}
	return resp, nil
}

func main() { lambda.Start(handle) }
