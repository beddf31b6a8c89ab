package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/logging"
)

// awsConfig is a static-credential config for the stand-ins; the endpoint
// is set per client.
func awsConfig(cfg config) aws.Config {
	return aws.Config{
		Region:      cfg.region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
}

// What the Kinesis client's connections did, for the report: TCP
// connections dialled, and the SDK's warnings that it could not read an
// answer to its end ("failed to discard remaining HTTP response body",
// after which the connection is not kept).
var (
	kinesisConns    atomic.Int64
	discardWarnings atomic.Int64
)

func kinesisClient(cfg config) *kinesis.Client {
	c := awsConfig(cfg)
	c.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		dial := t.DialContext
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			kinesisConns.Add(1)
			return dial(ctx, network, addr)
		}
	})
	c.Logger = logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
		if strings.Contains(format, "failed to discard") {
			discardWarnings.Add(1)
		}
		fmt.Fprintf(os.Stderr, "peer: aws sdk: "+format+"\n", v...)
	})
	return kinesis.NewFromConfig(c, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(cfg.kinesis) })
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
