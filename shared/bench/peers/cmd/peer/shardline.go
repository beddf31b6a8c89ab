package main

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/stream"
)

// runShardline: the coordinator with a handler that only counts, as in
// shared/coordinator's BenchmarkThroughput (BatchSize 1000, no retries).
// The coordinator de-aggregates KPL records itself.
func runShardline(ctx context.Context, cfg config, c *counter) error {
	w, err := shardline(cfg, c)
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

// ensureShardlineTable creates the lease table the way a worker does at
// start (Worker.Check), for a later run under the same -app whose start-up
// is then timed without the table's creation.
func ensureShardlineTable(ctx context.Context, cfg config) error {
	w, err := shardline(cfg, newCounter(time.Now(), 1))
	if err != nil {
		return err
	}
	return w.Check(ctx)
}

func shardline(cfg config, c *counter) (*coordinator.Worker, error) {
	w, err := coordinator.New(coordinator.Config{
		AppName: cfg.app, StreamName: cfg.stream, InitialPosition: stream.TrimHorizon,
		MaxRetryAttempts: -1, BatchSize: 1000,
		Kinesis: kinesisClient(cfg), DynamoDB: dynamoClient(cfg),
		Handler: func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			c.observe(func(i int) []byte { return ev.Records[i].Kinesis.Data }, len(ev.Records))
			return events.KinesisEventResponse{}, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	return w, nil
}
