// Command auditfn is the Lambda function of the coordinator's audit test:
// it asks the test (SHARDLINE_AUDIT_URL) what to do with each batch, by the
// records' data, and does it: succeed, report a partial failure, return
// an error, panic, or outlive its timeout.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type verdict struct {
	Kind   string `json:"kind"`
	FailAt int    `json:"failAt"`
}

func handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	ids := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		ids[i] = string(r.Kinesis.Data)
	}
	body, _ := json.Marshal(ids)
	resp, err := http.Post(os.Getenv("SHARDLINE_AUDIT_URL"), "application/json", bytes.NewReader(body))
	if err != nil {
		return events.KinesisEventResponse{}, err
	}
	defer resp.Body.Close()
	var v verdict
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return events.KinesisEventResponse{}, err
	}
	switch v.Kind {
	case "":
		return events.KinesisEventResponse{}, nil
	case "partial":
		r := ev.Records[v.FailAt]
		id := r.Kinesis.SequenceNumber
		if parts := strings.Split(r.EventID, ":"); len(parts) == 3 {
			if sub, err := strconv.Atoi(parts[2]); err == nil {
				id = fmt.Sprintf("%s:%d", id, sub)
			}
		}
		return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{{ItemIdentifier: id}}}, nil
	case "panic":
		panic("audit: " + ids[v.FailAt])
	case "timeout":
		deadline, _ := ctx.Deadline()
		time.Sleep(time.Until(deadline) + time.Minute) // killed at the timeout
		return events.KinesisEventResponse{}, nil
	}
	return events.KinesisEventResponse{}, errors.New("audit: " + v.Kind)
}

func main() { lambda.Start(handle) }
