package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/fetch"
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

// Enhanced fan-out readers of the shardline-efo modes (config.efo).
const (
	efoOwn = "own" // Shardline's own reader, fetch.Client.Subscribe (the default)
	efoSDK = "sdk" // the SDK's, fetch.SDKSubscribe
)

func shardline(cfg config, c *counter) (*coordinator.Worker, error) {
	kc, err := kinesisClient(cfg)
	if err != nil {
		return nil, err
	}
	cc := coordinator.Config{
		AppName: cfg.app, StreamName: cfg.stream, InitialPosition: stream.TrimHorizon,
		MaxRetryAttempts: -1, BatchSize: 1000,
		Kinesis: kc, DynamoDB: dynamoClient(cfg),
		Handler: func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
			var shard string
			if len(ev.Records) > 0 { // a batch is one shard's; EventID is shardId-…:sequence[:sub]
				shard, _, _ = strings.Cut(ev.Records[0].EventID, ":")
			}
			c.observe(shard, func(i int) []byte { return ev.Records[i].Kinesis.Data }, len(ev.Records))
			return events.KinesisEventResponse{}, nil
		},
	}
	if cfg.efo != "" {
		// Enhanced fan-out: a consumer of the application's name
		// (registered by the worker's Check), its subscriptions over a
		// client like awsconf's KinesisFanOut.
		cc.ConsumerName = cfg.app
		if cc.KinesisFanOut, err = kinesisFanOutClient(cfg); err != nil {
			return nil, err
		}
		if cfg.efo == efoSDK {
			cc.SubscribeFunc = fetch.SDKSubscribe(cc.KinesisFanOut)
		}
	}
	w, err := coordinator.New(cc)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	return w, nil
}
