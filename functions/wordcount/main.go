// Command wordcount is the word-count handler as a Lambda function of its
// own. Shardline's pollers invoke it with de-aggregated batches
// (SHARDLINE_TARGET_FUNCTION); Lambda's own Kinesis trigger can invoke it too, with
// KPL aggregates as they are, which it de-aggregates first. The running
// counts go to the function's log (stdout) at most once per
// SHARDLINE_CHECKPOINT_INTERVAL (default 1s), the poller's variable. Build with -tags lambda.norpc as
// bootstrap for provided.al2023.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/shardline/shardline/shared/handlers"
)

// intervalEnv is config.EnvName("checkpoint-interval"), spelled out: this
// function does not link the poller's settings and the AWS SDK.
const intervalEnv = "SHARDLINE_CHECKPOINT_INTERVAL"

func main() {
	interval := time.Second
	if v := os.Getenv(intervalEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "wordcount: %s=%q: allowed a positive duration such as 1s\n", intervalEnv, v)
			os.Exit(2)
		}
		interval = d
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	wc, err := handlers.NewWordCount(handlers.Options{Out: os.Stdout, Logger: log, Interval: interval})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(2)
	}
	lambda.Start(handlers.Deaggregating(wc.Handle))
}
