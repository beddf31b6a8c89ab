package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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

	"github.com/shardline/shardline/shared/awsconf"
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

// kinesisClient is the Kinesis client of harlow's and Shardline's runs:
// the SDK's buildable HTTP client, counting its connections, trusting
// AWS_CA_BUNDLE's certificates for an https:// endpoint (the fake's own,
// for its TLS endpoint) as config.LoadDefaultConfig would, and offering
// HTTP/2 there (the SDK's default transport does).
func kinesisClient(cfg config) (*kinesis.Client, error) {
	return newKinesisClient(cfg, awshttp.NewBuildableClient())
}

// kinesisFanOutClient is the client of Shardline's subscriptions, built
// as awsconf.Load builds KinesisFanOut: no overall timeout (a
// subscription streams for 5 minutes) and each HTTP/2 stream's receive
// buffer bounded by awsconf.FanOutStreamBuffer.
func kinesisFanOutClient(cfg config) (*kinesis.Client, error) {
	return newKinesisClient(cfg, awshttp.NewBuildableClient().WithTimeout(0).WithTransportOptions(func(t *http.Transport) {
		t.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: awsconf.FanOutStreamBuffer}
	}))
}

func newKinesisClient(cfg config, hc *awshttp.BuildableClient) (*kinesis.Client, error) {
	var roots *x509.CertPool
	if path := os.Getenv("AWS_CA_BUNDLE"); path != "" && strings.HasPrefix(cfg.kinesis, "https://") {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("AWS_CA_BUNDLE %s: no certificate", path)
		}
	}
	c := awsConfig(cfg)
	c.HTTPClient = hc.WithTransportOptions(func(t *http.Transport) {
		dial := t.DialContext
		if dial == nil {
			dial = (&net.Dialer{}).DialContext
		}
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			kinesisConns.Add(1)
			return dial(ctx, network, addr)
		}
		if roots != nil {
			if t.TLSClientConfig == nil {
				t.TLSClientConfig = &tls.Config{}
			}
			t.TLSClientConfig.RootCAs = roots
		}
	})
	c.Logger = logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
		if strings.Contains(format, "failed to discard") {
			discardWarnings.Add(1)
		}
		fmt.Fprintf(os.Stderr, "peer: aws sdk: "+format+"\n", v...)
	})
	return kinesis.NewFromConfig(c, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(cfg.kinesis) }), nil
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
