package standin_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
)

func TestMain(m *testing.M) { standintest.Main(m) }

// need skips the test under -short and fails it when the stand-ins
// cannot be installed.
func need(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: needs the local AWS stand-ins")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := standin.Install(ctx, ""); err != nil {
		t.Fatalf("stand-ins not installable: %v", err)
	}
}

// rss returns the resident set size of pid in MiB.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return fmt.Sprintf("%d MiB", kb/1024)
		}
	}
	return "?"
}

// gone reports whether no process pid exists (or only a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// listeners returns the local addresses ("ip:port") of the TCP sockets
// listening on port, from /proc/net/tcp and tcp6.
func listeners(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			hexIP, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseUint(hexPort, 16, 16)
			if err != nil || int(p) != port {
				continue
			}
			raw, err := hex.DecodeString(hexIP)
			if err != nil {
				continue
			}
			// The kernel prints each 32-bit word in host (little-endian) order.
			for i := 0; i+4 <= len(raw); i += 4 {
				raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
			}
			out = append(out, net.JoinHostPort(net.IP(raw).String(), strconv.Itoa(port)))
		}
		f.Close()
	}
	return out
}

func TestStartBothHealthStop(t *testing.T) {
	need(t)
	ctx := context.Background()
	var kin, ddb *standin.Server
	var kerr, derr error
	var ktook, dtook time.Duration
	began := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		kin, kerr = standin.StartKinesis(ctx, standin.KinesisOptions{})
		ktook = time.Since(began)
	})
	wg.Go(func() {
		ddb, derr = standin.StartDynamoDB(ctx, standin.DynamoDBOptions{})
		dtook = time.Since(began)
	})
	wg.Wait()
	for _, s := range []*standin.Server{kin, ddb} {
		if s != nil {
			t.Cleanup(func() { _ = s.Stop() })
		}
	}
	if err := errors.Join(kerr, derr); err != nil {
		t.Fatal(err)
	}
	t.Logf("started concurrently: %s in %v (RSS %s), %s in %v (RSS %s)",
		kin.Name, ktook.Round(time.Millisecond), rss(kin.PID), ddb.Name, dtook.Round(time.Millisecond), rss(ddb.PID))

	if err := standin.CheckKinesis(ctx, kin.Endpoint); err != nil {
		t.Errorf("CheckKinesis: %v", err)
	}
	if err := standin.CheckDynamoDB(ctx, ddb.Endpoint); err != nil {
		t.Errorf("CheckDynamoDB: %v", err)
	}
	if name, ok := standin.IsStandin(kin.PID); !ok || name != standin.KinesisName {
		t.Errorf("IsStandin(kinesis pid) = %q, %v", name, ok)
	}
	if name, ok := standin.IsStandin(ddb.PID); !ok || name != standin.DynamoDBName {
		t.Errorf("IsStandin(dynamodb pid) = %q, %v", name, ok)
	}
	if _, ok := standin.IsStandin(os.Getpid()); ok {
		t.Error("IsStandin(test process) = true")
	}

	// Loopback only: every listening socket of theirs is on 127.0.0.1.
	tlsPort, _ := strconv.Atoi(kin.TLSEndpoint[strings.LastIndexByte(kin.TLSEndpoint, ':')+1:])
	for _, port := range []int{kin.Port, tlsPort, ddb.Port} {
		ls := listeners(t, port)
		if len(ls) == 0 {
			t.Errorf("nothing listens on port %d", port)
		}
		for _, l := range ls {
			host, _, _ := net.SplitHostPort(l)
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				t.Errorf("port %d: listening on %s, want loopback only", port, l)
			}
		}
	}

	// Stop kills the process and its PID goes away.
	for _, s := range []*standin.Server{kin, ddb} {
		began := time.Now()
		if err := s.Stop(); err != nil {
			t.Errorf("%s Stop: %v", s.Name, err)
		}
		t.Logf("%s stopped in %v", s.Name, time.Since(began).Round(time.Millisecond))
		if !gone(s.PID) {
			t.Errorf("%s pid %d still exists after Stop", s.Name, s.PID)
		}
		if exited, _ := s.Exited(); !exited {
			t.Errorf("%s: Exited() = false after Stop", s.Name)
		}
		if err := s.Stop(); err != nil { // idempotent
			t.Errorf("%s second Stop: %v", s.Name, err)
		}
		if _, ok := standin.IsStandin(s.PID); ok {
			t.Errorf("IsStandin(%d) = true after Stop", s.PID)
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second); err == nil {
			c.Close()
			t.Errorf("%s: port %d still accepts connections after Stop", s.Name, s.Port)
		}
	}
}

func TestStartFailureShowsOutput(t *testing.T) {
	need(t)
	ctx := context.Background()
	// A setting kinesis-mock cannot parse makes it exit at once.
	_, err := standin.StartKinesis(ctx, standin.KinesisOptions{Env: []string{"SHARD_LIMIT=lots"}})
	if err == nil {
		t.Fatal("StartKinesis with SHARD_LIMIT=lots succeeded")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "SHARD_LIMIT") {
		t.Errorf("error does not say the process exited and why: %v", err)
	}
}

func TestPortInUse(t *testing.T) {
	need(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ctx := context.Background()
	// Another DynamoDB Local on the port answers the health check: the
	// start must still fail, as its own process cannot bind.
	other := standintest.DynamoDB(t)
	s, err := standin.StartDynamoDB(ctx, standin.DynamoDBOptions{Port: other.Port})
	if err == nil {
		s.Stop()
		t.Fatal("StartDynamoDB on a port another DynamoDB Local holds succeeded")
	}
	t.Logf("dynamodb error: %v", err)
	if !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "BindException") {
		t.Errorf("error does not say the process exited and why: %v", err)
	}
	_, err = standin.StartKinesis(ctx, standin.KinesisOptions{Port: port})
	if err == nil {
		t.Fatal("StartKinesis on a taken port succeeded")
	}
	t.Logf("kinesis error: %v", err)
	if !strings.Contains(err.Error(), "EADDRINUSE") {
		t.Errorf("error does not show the cause: %v", err)
	}
}

func TestStartCancelled(t *testing.T) {
	need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	s, err := standin.StartDynamoDB(ctx, standin.DynamoDBOptions{})
	if err == nil {
		s.Stop()
		t.Skip("DynamoDB Local came up within 50ms")
	}
	if !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("error = %v, want start-up interrupted", err)
	}
}

func TestNewStreamAndRecords(t *testing.T) {
	kin := standintest.Kinesis(t)
	name := standintest.NewStream(t, kin.Endpoint, 2)
	c := standintest.KinesisClient(kin.Endpoint)
	ctx := context.Background()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(shards.Shards) != 2 {
		t.Fatalf("%d shards, want 2", len(shards.Shards))
	}
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(name), ShardId: put.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 1 || string(got.Records[0].Data) != "hello" {
		t.Fatalf("records = %+v", got.Records)
	}
}

// TestClosedShardQuirks records how kinesis-mock ends a closed shard: the
// GetRecords call that returns the parent's last records (or, for an
// empty parent, the first call) has ChildShards and no NextShardIterator.
func TestClosedShardQuirks(t *testing.T) {
	kin := standintest.Kinesis(t)
	name := standintest.NewStream(t, kin.Endpoint, 1)
	c := standintest.KinesisClient(kin.Endpoint)
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String(strconv.Itoa(i)), Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	parent := "shardId-000000000000"
	began := time.Now()
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(name), ShardToSplit: aws.String(parent),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728"),
	}); err != nil {
		t.Fatal(err)
	}
	if err := standin.WaitStreamActive(ctx, c, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("split shard: ACTIVE again after %v", time.Since(began).Round(time.Millisecond))
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(shards.Shards) != 3 {
		t.Fatalf("%d shards after split, want 3", len(shards.Shards))
	}
	for _, s := range shards.Shards {
		t.Logf("shard %s parent=%s ending seq=%s", aws.ToString(s.ShardId), aws.ToString(s.ParentShardId), aws.ToString(s.SequenceNumberRange.EndingSequenceNumber))
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(name), ShardId: aws.String(parent), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("GetRecords on the closed parent: %d records, %d child shards, next iterator nil: %v",
		len(got.Records), len(got.ChildShards), got.NextShardIterator == nil)
	if len(got.Records) != 3 || len(got.ChildShards) != 2 || got.NextShardIterator != nil {
		t.Errorf("closed shard: got %d records, %d child shards, next %v; want 3, 2, nil",
			len(got.Records), len(got.ChildShards), got.NextShardIterator)
	}
	// With a limit, the end comes on the call that returns the last record.
	it, _ = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(name), ShardId: aws.String(parent), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	next := it.ShardIterator
	var calls, records int
	for next != nil && calls < 10 {
		got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next, Limit: aws.Int32(2)})
		if err != nil {
			t.Fatal(err)
		}
		calls++
		records += len(got.Records)
		next = got.NextShardIterator
	}
	t.Logf("Limit 2: shard end after %d calls, %d records", calls, records)
	if records != 3 || next != nil {
		t.Errorf("Limit 2: %d records, next %v", records, next)
	}
}

func TestDynamoDBConditionalCheckFailed(t *testing.T) {
	ddb := standintest.DynamoDB(t)
	ctx := context.Background()
	table := standintest.UniqueName(t)
	c := standintest.DynamoDBClient(ddb.Endpoint)
	if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddbtypes.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	item := map[string]ddbtypes.AttributeValue{
		"leaseKey":     &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000000"},
		"leaseCounter": &ddbtypes.AttributeValueMemberN{Value: "1"},
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	for _, validate := range []bool{false, true} {
		c := standintest.DynamoDBClient(ddb.Endpoint, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = !validate })
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                           aws.String(table),
			Item:                                item,
			ConditionExpression:                 aws.String("leaseCounter = :c"),
			ExpressionAttributeValues:           map[string]ddbtypes.AttributeValue{":c": &ddbtypes.AttributeValueMemberN{Value: "7"}},
			ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var ccf *ddbtypes.ConditionalCheckFailedException
		t.Logf("validate checksum %v: %T %v", validate, err, err)
		if !validate && !errors.As(err, &ccf) {
			t.Errorf("conditional put: %v, want ConditionalCheckFailedException", err)
		}
		if errors.As(err, &ccf) && len(ccf.Item) == 0 {
			t.Errorf("ConditionalCheckFailedException without the old item")
		}
	}
}

// TestKinesisPersistence restarts a persisting kinesis-mock.
func TestKinesisPersistence(t *testing.T) {
	need(t)
	ctx := context.Background()
	dir := t.TempDir()
	// An hour: only the save on Stop (SIGTERM) can have kept the record.
	o := standin.KinesisOptions{PersistDir: dir, PersistInterval: time.Hour, InitializeStreams: "kept:1"}
	k1, err := standin.StartKinesis(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k1.Stop() })
	c := standin.KinesisClient(k1.Endpoint)
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("kept"), PartitionKey: aws.String("k"), Data: []byte("survives")}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := k1.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("persisting kinesis-mock stopped in %v", time.Since(began).Round(time.Millisecond))
	if _, err := os.Stat(dir + "/kinesis-data.json"); err != nil {
		t.Fatal(err)
	}
	o.InitializeStreams = "" // the stream comes from the file
	k2, err := standin.StartKinesis(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k2.Stop() })
	c = standin.KinesisClient(k2.Endpoint)
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String("kept"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 1 || string(got.Records[0].Data) != "survives" {
		t.Fatalf("after restart: records %+v", got.Records)
	}
}

// TestDynamoDBPersistence restarts DynamoDB Local with a DBPath.
func TestDynamoDBPersistence(t *testing.T) {
	need(t)
	ctx := context.Background()
	o := standin.DynamoDBOptions{DBPath: t.TempDir()}
	d1, err := standin.StartDynamoDB(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d1.Stop() })
	c := standin.DynamoDBClient(d1.Endpoint)
	if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String("kept"),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: ddbtypes.KeyTypeHash}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := d1.Stop(); err != nil {
		t.Fatal(err)
	}
	d2, err := standin.StartDynamoDB(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Stop() })
	out, err := standin.DynamoDBClient(d2.Endpoint).ListTables(ctx, &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.TableNames) != 1 || out.TableNames[0] != "kept" {
		t.Fatalf("tables after restart: %v", out.TableNames)
	}
}

// TestInstallRace installs into a fresh directory from two goroutines at
// once: both get the same complete installation.
func TestInstallRace(t *testing.T) {
	need(t) // npm's cache is warm, so this is mostly local work
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]*standin.Installation, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = standin.Install(ctx, dir) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, r := range results[1:] {
		if *r != *results[0] {
			t.Errorf("installations differ: %+v, %+v", r, results[0])
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 { // install.lock and standins-<hash>
		t.Errorf("cache dir holds %v, want the lock and one installation", names)
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv(standin.CacheDirEnv, "")
	d, err := standin.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(d, "/.cache/standins") {
		t.Errorf("DefaultCacheDir() = %s", d)
	}
	root := strings.TrimSuffix(d, "/.cache/standins")
	if _, err := os.Stat(root + "/go.mod"); err != nil {
		t.Errorf("no go.mod in %s: %v", root, err)
	}
	t.Setenv(standin.CacheDirEnv, "/tmp/elsewhere")
	if d, _ := standin.DefaultCacheDir(); d != "/tmp/elsewhere" {
		t.Errorf("with $%s: %s", standin.CacheDirEnv, d)
	}
}

func TestParseStreams(t *testing.T) {
	got, err := standin.ParseStreams("words:4, orders, other:1:eu-west-1,")
	if err != nil {
		t.Fatal(err)
	}
	want := []standin.StreamSpec{{Name: "words", Shards: 4}, {Name: "orders"}, {Name: "other", Shards: 1, Region: "eu-west-1"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{":4", "a:x", "a:0", "a:1:r:x"} {
		if _, err := standin.ParseStreams(bad); err == nil {
			t.Errorf("ParseStreams(%q) succeeded", bad)
		}
	}
}

func TestEnv(t *testing.T) {
	got := strings.Join(standin.Env("http://127.0.0.1:1", "http://127.0.0.1:2"), " ")
	for _, want := range []string{"SHARDLINE_KINESIS_ENDPOINT=http://127.0.0.1:1", "SHARDLINE_DYNAMODB_ENDPOINT=http://127.0.0.1:2", "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local"} {
		if !strings.Contains(got, want) {
			t.Errorf("Env lacks %s: %s", want, got)
		}
	}
}

func TestKillPIDIgnoresOtherProcesses(t *testing.T) {
	// The test process is no stand-in: KillPID must leave it alone.
	if err := standin.KillPID(os.Getpid(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), 0); err != nil {
		t.Fatal(err)
	}
}
