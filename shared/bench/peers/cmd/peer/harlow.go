package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/awslabs/kinesis-aggregation/go/v2/deaggregator"
	consumer "github.com/harlow/kinesis-consumer"
	"github.com/harlow/kinesis-consumer/store/ddb"
)

// runHarlow: harlow/kinesis-consumer's plain Scan with its DynamoDB
// checkpoint store (table keyed namespace + shard_id, as store/ddb
// expects). The library's defaults otherwise; KPL records are
// de-aggregated in the callback with awslabs' deaggregator (the library's
// own WithAggregation would do the same, before the callback).
func runHarlow(ctx context.Context, cfg config, c *counter) error {
	db := dynamoClient(cfg)
	table := cfg.app + "-checkpoints"
	if err := createTable(ctx, db, table, "namespace", "shard_id"); err != nil {
		return err
	}
	store, err := ddb.New(cfg.app, table, ddb.WithDynamoClient(db))
	if err != nil {
		return fmt.Errorf("ddb store: %w", err)
	}
	kc, err := kinesisClient(cfg)
	if err != nil {
		return err
	}
	cons, err := consumer.New(cfg.stream,
		consumer.WithClient(kc),
		consumer.WithStore(store),
		consumer.WithShardIteratorType(string(types.ShardIteratorTypeTrimHorizon)),
	)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return cons.Scan(ctx, func(r *consumer.Record) error {
		users, err := deaggregator.DeaggregateRecords([]types.Record{r.Record})
		if err != nil {
			return fmt.Errorf("deaggregate: %w", err)
		}
		c.observe(r.ShardID, func(i int) []byte { return users[i].Data }, len(users))
		return nil
	})
}
