package shardline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/testwait"
)

// TestRunOnMoto: a whole `run` against moto_server alone — its Kinesis,
// which answers GetRecords in JSON only (HTTP 500 to CBOR), and its
// DynamoDB for the lease table — with no variable set (no
// AWS_CBOR_DISABLE): the worker finds that CBOR is refused, says so once,
// reads JSON, delivers every record put (plain ones and the user records
// of KPL aggregates) to the in-process handler once, and checkpoints each
// shard at its last record in moto's DynamoDB (issue #17, point 7: it
// logged "read failed; retrying … HTTP500" for ever and delivered nothing).
func TestRunOnMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs moto_server (run without -short)")
	}
	moto := standintest.Moto(t)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CBOR_DISABLE", "")
	os.Unsetenv("AWS_CBOR_DISABLE") // restored by Setenv's cleanup
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	streamName := standintest.NewStream(t, moto.Endpoint, 2)
	app := standintest.UniqueName(t)
	kc := standintest.KinesisClient(moto.Endpoint)
	// What is put: 40 plain records, then 3 KPL aggregates of 20 user
	// records each; last[shard] is the last sequence number put there.
	want := map[string]bool{}
	last := map[string]string{}
	for i := range 40 {
		data := fmt.Sprintf("plain-%d", i)
		out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(streamName), Data: []byte(data), PartitionKey: aws.String(fmt.Sprintf("key-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		want[data] = true
		last[aws.ToString(out.ShardId)] = aws.ToString(out.SequenceNumber)
	}
	for a := range 3 {
		var recs []kpl.UserRecord
		for i := range 20 {
			data := fmt.Sprintf("kpl-%d-%d", a, i)
			// The aggregate's own key: its user records hash into the
			// shard it goes to (others would be dropped, as the KCL drops them).
			recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprintf("agg-%d", a), Data: []byte(data)})
			want[data] = true
		}
		agg, err := kpl.Aggregate(recs)
		if err != nil {
			t.Fatal(err)
		}
		out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(streamName), Data: agg, PartitionKey: aws.String(fmt.Sprintf("agg-%d", a))})
		if err != nil {
			t.Fatal(err)
		}
		last[aws.ToString(out.ShardId)] = aws.ToString(out.SequenceNumber)
	}

	// The handler fails once, on the call holding kpl-1-0, after decoding
	// every record of it in place: the retry must get the bytes as put
	// (read again from moto over JSON).
	var mu sync.Mutex
	got := map[string]int{}
	failedOnce := false
	handle := func(_ context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		fail := false
		for _, r := range ev.Records {
			if string(r.Kinesis.Data) == "kpl-1-0" && !failedOnce {
				fail, failedOnce = true, true
			}
		}
		if fail {
			for _, r := range ev.Records {
				copy(r.Kinesis.Data, "XXXXXXXX")
			}
			return events.KinesisEventResponse{}, errors.New("decoded in place, then failed")
		}
		for _, r := range ev.Records {
			got[string(r.Kinesis.Data)]++
		}
		return events.KinesisEventResponse{}, nil
	}
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	vars := map[string]string{
		"SHARDLINE_KINESIS_ENDPOINT":  moto.Endpoint,
		"SHARDLINE_DYNAMODB_ENDPOINT": moto.Endpoint,
		"SHARDLINE_APP_NAME":          app,
		"SHARDLINE_STREAM_NAME":       streamName,
		"SHARDLINE_LOG_FORMAT":        "text",
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr testwait.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the run's log:\n%s", stderr.String())
		}
	})
	done := make(chan error, 1)
	go func() {
		done <- New(WithName("poller"), Handle(handle)).Run(runCtx, []string{"run", "-initial-position", "TRIM_HORIZON", "-checkpoint-interval", "100ms"},
			func(k string) string { return vars[k] }, &stdout, &stderr)
	}()
	testwait.Until(t, time.Minute, fmt.Sprintf("%d records delivered", len(want)), func() bool {
		select {
		case err := <-done:
			t.Fatalf("run ended before every record came: %v\n%s", err, stderr.String())
		default:
		}
		return delivered() >= len(want)
	})
	stop() // drains: the checkpoints are written before Run returns
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}

	mu.Lock()
	for data := range want {
		if got[data] != 1 {
			t.Errorf("record %q delivered %d times, want 1", data, got[data])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct records delivered, want %d", len(got), len(want))
	}
	mu.Unlock()

	logs := stderr.String()
	if n := strings.Count(logs, "reading it in JSON from now on"); n != 1 {
		t.Errorf("%d lines saying that GetRecords is read in JSON, want 1:\n%s", n, logs)
	}
	if !failedOnce {
		t.Error("the handler never failed: the retry was not tried")
	}
	if n := strings.Count(logs, "level=WARN"); n != 1 || !strings.Contains(logs, "handler failed; retrying") {
		t.Errorf("%d WARN lines, want the one retry's:\n%s", n, logs)
	}
	for _, bad := range []string{"read failed", "level=ERROR", "failed to discard", "could not read a failed batch again", "no longer in the stream"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the run logged %q:\n%s", bad, logs)
		}
	}

	leases, err := lease.NewTable(standintest.DynamoDBClient(moto.Endpoint), app).List(ctx)
	if err != nil {
		t.Fatalf("the lease table in moto's DynamoDB: %v", err)
	}
	if len(leases) != len(last) {
		t.Errorf("%d leases, want %d (%v)", len(leases), len(last), leases)
	}
	for _, l := range leases {
		if want := last[l.Key]; l.Checkpoint.Seq != want {
			t.Errorf("shard %s checkpointed at %q, want its last record %q", l.Key, l.Checkpoint.Seq, want)
		}
	}
}
