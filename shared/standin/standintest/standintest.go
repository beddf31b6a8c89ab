// Package standintest gives tests the local AWS stand-ins of package
// standin: one kinesis-mock, one DynamoDB Local and one moto_server (SQS,
// SNS, S3) per test package, each started on first use and stopped (by
// PID) when the package's tests end, plus per-test streams and SDK
// clients.
//
//	func TestMain(m *testing.M) { standintest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		kin, ddb := standintest.Both(t) // or Kinesis(t), DynamoDB(t)
//		stream := standintest.NewStream(t, kin.Endpoint, 2)
//		kc := standintest.KinesisClient(kin.Endpoint)
//		dc := standintest.DynamoDBClient(ddb.Endpoint)
//		table := standintest.UniqueName(t) // e.g. a lease table
//		...
//	}
//
//	func TestDestination(t *testing.T) {
//		moto := standintest.Moto(t) // SQS, SNS and S3 on moto.Endpoint
//		sqsc := standintest.SQSClient(moto.Endpoint)
//		...
//	}
//
// Under -short (make unit) every test that asks for a stand-in is skipped.
// Otherwise, if a stand-in cannot be installed or started (no npm, no
// java, ...), the test that asked for it fails with the reason: never a
// silent skip.
//
// Without Main in TestMain, Kinesis, DynamoDB, Moto and Both still work
// but start a stand-in per test, stopped at the end of that test.
package standintest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/shardline/shardline/shared/standin"
)

// shared holds a package's stand-ins.
type shared struct {
	mu      sync.Mutex
	started bool
	srv     *standin.Server
	err     error
}

var (
	mainMu   sync.Mutex
	inMain   bool
	kinesisS shared
	dynamoS  shared
	motoS    shared
)

// Main runs the tests of a package (m.Run), then stops the stand-ins they
// started and exits with m.Run's code. Call it from TestMain:
//
//	func TestMain(m *testing.M) { standintest.Main(m) }
//
// To do more in TestMain, use Run instead.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the os.Exit: it runs m.Run, stops the shared
// stand-ins and returns m.Run's code.
func Run(m *testing.M) int {
	mainMu.Lock()
	inMain = true
	mainMu.Unlock()
	defer StopShared()
	return m.Run()
}

// StopShared stops the package's shared stand-ins, if any; Main and Run do
// it when the tests end. A later Kinesis, DynamoDB, Moto or Both starts
// anew.
func StopShared() {
	var wg sync.WaitGroup
	for _, s := range []*shared{&kinesisS, &dynamoS, &motoS} {
		wg.Go(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.srv != nil {
				if err := s.srv.Stop(); err != nil {
					fmt.Fprintln(os.Stderr, "standintest:", err)
				}
			}
			s.started, s.srv, s.err = false, nil, nil
		})
	}
	wg.Wait()
}

func underMain() bool {
	mainMu.Lock()
	defer mainMu.Unlock()
	return inMain
}

// get returns the shared server, starting it on first use. A failed start
// is remembered: the package's later tests fail at once with the same
// error instead of waiting again.
func (s *shared) get(start func(context.Context) (*standin.Server, error)) (*standin.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started = true
		s.srv, s.err = start(context.Background())
	}
	return s.srv, s.err
}

func startKinesis(ctx context.Context) (*standin.Server, error) {
	return standin.StartKinesis(ctx, standin.KinesisOptions{})
}

func startDynamoDB(ctx context.Context) (*standin.Server, error) {
	return standin.StartDynamoDB(ctx, standin.DynamoDBOptions{})
}

func startMoto(ctx context.Context) (*standin.Server, error) {
	return standin.StartMoto(ctx, standin.MotoOptions{})
}

// Kinesis returns the package's kinesis-mock, starting it on first use.
func Kinesis(t testing.TB) *standin.Server {
	t.Helper()
	return one(t, &kinesisS, startKinesis)
}

// DynamoDB returns the package's DynamoDB Local, starting it on first use.
func DynamoDB(t testing.TB) *standin.Server {
	t.Helper()
	return one(t, &dynamoS, startDynamoDB)
}

// Moto returns the package's moto_server (SQS, SNS and S3 on one
// endpoint), starting it on first use.
func Moto(t testing.TB) *standin.Server {
	t.Helper()
	return one(t, &motoS, startMoto)
}

func one(t testing.TB, s *shared, start func(context.Context) (*standin.Server, error)) *standin.Server {
	t.Helper()
	skipShort(t)
	var srv *standin.Server
	var err error
	if underMain() {
		srv, err = s.get(start)
	} else {
		srv, err = perTest(t, start)
	}
	if err != nil {
		unavailable(t, err)
	}
	return srv
}

// Both returns the package's kinesis-mock and DynamoDB Local, starting
// whichever is not running yet, concurrently.
func Both(t testing.TB) (kinesisServer, dynamodbServer *standin.Server) {
	t.Helper()
	skipShort(t)
	var kerr, derr error
	var wg sync.WaitGroup
	if underMain() {
		wg.Go(func() { kinesisServer, kerr = kinesisS.get(startKinesis) })
		wg.Go(func() { dynamodbServer, derr = dynamoS.get(startDynamoDB) })
	} else {
		wg.Go(func() { kinesisServer, kerr = perTest(t, startKinesis) })
		wg.Go(func() { dynamodbServer, derr = perTest(t, startDynamoDB) })
	}
	wg.Wait()
	if err := errors.Join(kerr, derr); err != nil {
		unavailable(t, err)
	}
	return kinesisServer, dynamodbServer
}

// perTest starts a stand-in for this test alone.
func perTest(t testing.TB, start func(context.Context) (*standin.Server, error)) (*standin.Server, error) {
	srv, err := start(context.Background())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv, nil
}

// skipShort skips the test under -short.
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: needs the local AWS stand-ins (kinesis-mock, DynamoDB Local, moto_server)")
	}
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	t.Fatalf("the local AWS stand-ins are not available (tests that need them are skipped only under -short): %v", err)
}

// KinesisClient returns an SDK Kinesis client for a stand-in endpoint
// (region us-east-1, dummy credentials).
func KinesisClient(endpoint string, optFns ...func(*kinesis.Options)) *kinesis.Client {
	return standin.KinesisClient(endpoint, optFns...)
}

// DynamoDBClient returns an SDK DynamoDB client for a stand-in endpoint
// (region us-east-1, dummy credentials, DisableValidateResponseChecksum).
func DynamoDBClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return standin.DynamoDBClient(endpoint, optFns...)
}

// SQSClient returns an SDK SQS client for a moto endpoint (region
// us-east-1, dummy credentials).
func SQSClient(endpoint string, optFns ...func(*sqs.Options)) *sqs.Client {
	return standin.SQSClient(endpoint, optFns...)
}

// SNSClient returns an SDK SNS client for a moto endpoint.
func SNSClient(endpoint string, optFns ...func(*sns.Options)) *sns.Client {
	return standin.SNSClient(endpoint, optFns...)
}

// S3Client returns an SDK S3 client for a moto endpoint, with path-style
// addressing.
func S3Client(endpoint string, optFns ...func(*s3.Options)) *s3.Client {
	return standin.S3Client(endpoint, optFns...)
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// UniqueName returns a name unique to this call, made from the test's name
// and a random suffix, usable as a Kinesis stream or DynamoDB table name
// (letters, digits, '_', '.', '-'; at most 100 characters).
func UniqueName(t testing.TB) string {
	name := strings.Trim(unsafeName.ReplaceAllString(t.Name(), "_"), "_.-")
	if len(name) > 80 {
		name = name[:80]
	}
	if name == "" {
		name = "test"
	}
	return fmt.Sprintf("%s-%08x", name, rand.Uint32())
}

// NewStream creates a stream with the given number of shards on the
// kinesis-mock at endpoint, waits until it is ACTIVE and returns its name,
// unique to the test. The stream is deleted when the test ends.
func NewStream(t testing.TB, endpoint string, shards int) string {
	t.Helper()
	name := UniqueName(t)
	c := KinesisClient(endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{
			StreamName: aws.String(name),
			ShardCount: aws.Int32(int32(shards)),
		})
		var inUse *types.ResourceInUseException
		if err == nil || errors.As(err, &inUse) { // in use: an SDK retry of our own call
			break
		}
		// kinesis-mock answers LimitExceeded while 5 streams are CREATING
		// or 5 CreateStream calls run at once; the SDK's retries may not
		// outlast a busy package.
		var limit *types.LimitExceededException
		if !errors.As(err, &limit) || ctx.Err() != nil {
			t.Fatalf("standintest: creating stream %s: %v", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.DeleteStream(ctx, &kinesis.DeleteStreamInput{
			StreamName:              aws.String(name),
			EnforceConsumerDeletion: aws.Bool(true),
		})
	})
	if err := standin.WaitStreamActive(ctx, c, name); err != nil {
		t.Fatalf("standintest: %v", err)
	}
	return name
}
