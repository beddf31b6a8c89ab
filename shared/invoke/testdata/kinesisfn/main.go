// Command kinesisfn is the Lambda function the invoke tests run through
// shared/lambdaemu: the Kinesis handler signature, and what it does is
// chosen by a record's data: "hold:<url>" GETs the URL before answering
// (the test holds it), "sleep" sleeps past the deadline ignoring it,
// "exit" exits mid-invocation. Every other record succeeds.
package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	for _, r := range ev.Records {
		data := string(r.Kinesis.Data)
		switch {
		case strings.HasPrefix(data, "hold:"):
			resp, err := http.Get(strings.TrimPrefix(data, "hold:"))
			if err != nil {
				return events.KinesisEventResponse{}, err
			}
			_ = resp.Body.Close()
		case data == "sleep":
			deadline, _ := ctx.Deadline()
			time.Sleep(time.Until(deadline) + time.Minute)
		case data == "exit":
			os.Exit(2)
		}
	}
	return events.KinesisEventResponse{}, nil
}

func main() { lambda.Start(handle) }
