package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// awsConfig is a static-credential config for the stand-ins; the endpoint
// is set per client.
func awsConfig(cfg config) aws.Config {
	return aws.Config{
		Region:      cfg.region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
}

func kinesisClient(cfg config) *kinesis.Client {
	return kinesis.NewFromConfig(awsConfig(cfg), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(cfg.kinesis) })
}

func dynamoClient(cfg config) *dynamodb.Client {
	return dynamodb.NewFromConfig(awsConfig(cfg), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(cfg.dynamodb) })
}

// createTable makes a pay-per-request table with the given hash and
// optional range key (strings), and waits for it.
func createTable(ctx context.Context, db *dynamodb.Client, name, hash, rng string) error {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String(hash), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String(hash), KeyType: ddbtypes.KeyTypeHash}},
	}
	if rng != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{AttributeName: aws.String(rng), AttributeType: ddbtypes.ScalarAttributeTypeS})
		in.KeySchema = append(in.KeySchema, ddbtypes.KeySchemaElement{AttributeName: aws.String(rng), KeyType: ddbtypes.KeyTypeRange})
	}
	if _, err := db.CreateTable(ctx, in); err != nil {
		var inUse *ddbtypes.ResourceInUseException
		if !errors.As(err, &inUse) {
			return fmt.Errorf("create table %s: %w", name, err)
		}
	}
	w := dynamodb.NewTableExistsWaiter(db)
	return w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 1e11)
}
