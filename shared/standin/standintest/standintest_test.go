package standintest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
)

func TestMain(m *testing.M) { standintest.Main(m) }

func TestSharedOncePerPackage(t *testing.T) {
	k1 := standintest.Kinesis(t)
	d1 := standintest.DynamoDB(t)
	k2, d2 := standintest.Both(t)
	if k1 != k2 || d1 != d2 {
		t.Errorf("second call started anew: kinesis pids %d, %d; dynamodb pids %d, %d", k1.PID, k2.PID, d1.PID, d2.PID)
	}
	if name, ok := standin.IsStandin(k1.PID); !ok || name != standin.KinesisName {
		t.Errorf("kinesis pid %d: IsStandin = %q, %v", k1.PID, name, ok)
	}
	if name, ok := standin.IsStandin(d1.PID); !ok || name != standin.DynamoDBName {
		t.Errorf("dynamodb pid %d: IsStandin = %q, %v", d1.PID, name, ok)
	}
}

func TestNewStream(t *testing.T) {
	kin := standintest.Kinesis(t)
	c := standintest.KinesisClient(kin.Endpoint)
	ctx := context.Background()
	var name string
	t.Run("sub", func(t *testing.T) {
		name = standintest.NewStream(t, kin.Endpoint, 3)
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		s := out.StreamDescriptionSummary
		if s.StreamStatus != types.StreamStatusActive || aws.ToInt32(s.OpenShardCount) != 3 {
			t.Errorf("stream %s: %s with %d shards", name, s.StreamStatus, aws.ToInt32(s.OpenShardCount))
		}
		if !strings.HasPrefix(name, "TestNewStream_sub-") {
			t.Errorf("name %q does not come from the test name", name)
		}
	})
	// Deleted when the subtest ended.
	_, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	var nf *types.ResourceNotFoundException
	if err == nil {
		out, _ := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
		t.Logf("streams: %v", out.StreamNames)
	}
	if err != nil && !errors.As(err, &nf) {
		t.Errorf("after the test: %v", err)
	}
}

func TestManyStreamsInParallel(t *testing.T) {
	kin := standintest.Kinesis(t)
	// More than kinesis-mock's 5 concurrent creations and its default
	// shard limit (50) together.
	for range 12 {
		t.Run("s", func(t *testing.T) {
			t.Parallel()
			standintest.NewStream(t, kin.Endpoint, 8)
		})
	}
}

func TestDynamoDBClient(t *testing.T) {
	ddb := standintest.DynamoDB(t)
	c := standintest.DynamoDBClient(ddb.Endpoint)
	ctx := context.Background()
	table := standintest.UniqueName(t)
	if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddbtypes.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.TableStatus != ddbtypes.TableStatusActive {
		t.Errorf("table %s is %s", table, out.Table.TableStatus)
	}
}

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,100}$`)
	seen := map[string]bool{}
	for range 100 {
		n := standintest.UniqueName(t)
		if !valid.MatchString(n) {
			t.Fatalf("UniqueName = %q: not a valid stream or table name", n)
		}
		if seen[n] {
			t.Fatalf("UniqueName repeated %q", n)
		}
		seen[n] = true
	}
	t.Run("a/b c:d", func(t *testing.T) {
		if n := standintest.UniqueName(t); !valid.MatchString(n) {
			t.Errorf("UniqueName = %q", n)
		}
	})
}

// TestUnavailable runs a test that needs a stand-in in a child process
// whose cache directory cannot be created: it must fail with the reason,
// and be skipped under -short.
func TestUnavailable(t *testing.T) {
	if os.Getenv("STANDINTEST_CHILD") == "1" {
		standintest.Kinesis(t)
		t.Log("got a kinesis-mock")
		return
	}
	for _, short := range []bool{false, true} {
		args := []string{"-test.run=^TestUnavailable$", "-test.v"}
		if short {
			args = append(args, "-test.short")
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "STANDINTEST_CHILD=1", standin.CacheDirEnv+"=/dev/null/cache")
		out, err := cmd.CombinedOutput()
		switch {
		case short && (err != nil || !strings.Contains(string(out), "--- SKIP")):
			t.Errorf("-short: want a skip, got %v:\n%s", err, out)
		case !short && (err == nil || !strings.Contains(string(out), "--- FAIL") || !strings.Contains(string(out), "not available")):
			t.Errorf("want a failure saying why, got %v:\n%s", err, out)
		}
	}
}

func TestMotoSharedOncePerPackage(t *testing.T) {
	m1 := standintest.Moto(t)
	m2 := standintest.Moto(t)
	if m1 != m2 {
		t.Errorf("second call started anew: pids %d, %d", m1.PID, m2.PID)
	}
	if name, ok := standin.IsStandin(m1.PID); !ok || name != standin.MotoName {
		t.Errorf("moto pid %d: IsStandin = %q, %v", m1.PID, name, ok)
	}
	if _, err := standintest.SQSClient(m1.Endpoint).ListQueues(context.Background(), &sqs.ListQueuesInput{}); err != nil {
		t.Errorf("ListQueues: %v", err)
	}
}
