package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/stream"
)

// runShardline: the coordinator with a handler that only counts, as in
// shared/coordinator's BenchmarkThroughput (BatchSize 1000, no retries).
// The coordinator de-aggregates KPL records itself.
func runShardline(ctx context.Context, cfg config, c *counter) error {
	w, err := coordinator.New(coordinator.Config{
		AppName: cfg.app, StreamName: cfg.stream, InitialPosition: stream.TrimHorizon,
		MaxRetryAttempts: -1, BatchSize: 1000,
		Kinesis: kinesisClient(cfg), DynamoDB: dynamoClient(cfg),
		Handler: func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			c.add(len(ev.Records))
			return events.KinesisEventResponse{}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	return w.Run(ctx)
}
