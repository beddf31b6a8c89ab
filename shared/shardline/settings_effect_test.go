package shardline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/destination/record"
	"github.com/shardline/shardline/shared/handlers"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lease"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/telemetry/cloudwatch"
	"github.com/shardline/shardline/shared/terminal"
	"github.com/shardline/shardline/shared/terminal/ptytest"
	"github.com/shardline/shardline/shared/testwait"
)

// effectRow is one row of the table of `run`'s settings: a flag, a value
// that is not its default (args, where {app}, {stream}, {kinesis},
// {dynamodb}, {lambda}, {dir}, {ts}, {consumer} and {missing} are the
// group's own), the group
// run it takes part in, and what that value must have done there. A row
// without args checks the default, beside a row that changes it.
type effectRow struct {
	flag  string
	args  []string
	group string
	check func(t *testing.T, r *effectRun)
}

func (row effectRow) name() string {
	if row.args == nil {
		return "-" + row.flag + " (default)"
	}
	return strings.Join(row.args, " ")
}

// Roles the "aws" group assumes, one per service.
const (
	kinesisRole    = "arn:aws:iam::000000000000:role/kinesis-reader"
	dynamoDBRole   = "arn:aws:iam::000000000000:role/lease-table"
	cloudWatchRole = "arn:aws:iam::000000000000:role/metrics-writer"
)

// effectRows: every flag of `run`, each with the effect of a value that is
// not its default, as a binary built on shardline.Start runs it. The
// groups are in effectGroups; TestEverySettingHasARow fails for a flag
// with no row.
var effectRows = []effectRow{
	// basic: one shard, 20 records kept by the filter and 10 dropped, all
	// put before the start; the first delivery of keep-3 is reported failed.
	{"app-name", []string{"-app-name", "{app}"}, "basic", func(t *testing.T, r *effectRun) {
		if len(r.leasesRunning) != 1 {
			t.Fatalf("lease table %s (the app name) held %d leases while the worker ran, want 1", r.app, len(r.leasesRunning))
		}
	}},
	{"stream-name", []string{"-stream-name", "{stream}"}, "basic", func(t *testing.T, r *effectRun) {
		for _, c := range r.calls() {
			for _, rec := range c.records {
				if !strings.HasSuffix(rec.EventSourceArn, ":stream/"+r.stream) {
					t.Fatalf("a record from %s, want stream %s", rec.EventSourceArn, r.stream)
				}
			}
		}
		if n := len(r.delivered("keep-")); n != 20 {
			t.Errorf("%d of the 20 records put to %s handled", n, r.stream)
		}
	}},
	{"kinesis-endpoint", []string{"-kinesis-endpoint", "{kinesis}"}, "basic", func(t *testing.T, r *effectRun) {
		// No AWS_ENDPOINT_URL*: the flag is the only way to kinesis-mock.
		if n := len(r.delivered("keep-")); n != 20 {
			t.Errorf("%d of the 20 records read from kinesis-mock at %s", n, r.env.kinesis)
		}
	}},
	{"dynamodb-endpoint", []string{"-dynamodb-endpoint", "{dynamodb}"}, "basic", func(t *testing.T, r *effectRun) {
		if _, err := r.ddb().DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(r.app)}); err != nil {
			t.Errorf("lease table %s not in DynamoDB Local at %s: %v", r.app, r.env.dynamodb, err)
		}
	}},
	{"initial-position", []string{"-initial-position", "TRIM_HORIZON"}, "basic", func(t *testing.T, r *effectRun) {
		// LATEST, the default, would skip every record put before the start.
		if n := len(r.delivered("keep-")); n != 20 {
			t.Errorf("%d of the 20 records put before the start handled, want all", n)
		}
	}},
	{"worker-id", []string{"-worker-id", "w-basic"}, "basic", func(t *testing.T, r *effectRun) {
		for _, l := range r.leasesRunning {
			if l.Owner != "w-basic" {
				t.Errorf("lease %s owned by %q while the worker ran, want w-basic", l.Key, l.Owner)
			}
		}
	}},
	{"batch-size", []string{"-batch-size", "7"}, "basic", func(t *testing.T, r *effectRun) {
		most := 0
		for _, c := range r.calls() {
			most = max(most, len(c.records))
		}
		// The default, 100, takes all 20 records waiting in one call.
		if most == 0 || most > 7 {
			t.Errorf("largest batch %d records, want 1–7 (20 records were waiting)", most)
		}
	}},
	{"filter", []string{"-filter", `{"partitionKey":["keep"]}`}, "basic", func(t *testing.T, r *effectRun) {
		if got := r.delivered("drop-"); len(got) > 0 {
			t.Errorf("records the filter drops were handled: %v", got)
		}
	}},
	{"handler-timeout", []string{"-handler-timeout", "7s"}, "basic", func(t *testing.T, r *effectRun) {
		for _, c := range r.calls() {
			if left := c.deadline.Sub(c.at); !c.hasDeadline || left > 7*time.Second || left < 6*time.Second {
				t.Fatalf("a handler call's context deadline is %v after the call (deadline set: %v), want 7s", left, c.hasDeadline)
			}
		}
	}},
	{"checkpoint-interval", []string{"-checkpoint-interval", "1h"}, "basic", func(t *testing.T, r *effectRun) {
		// The default (1s) writes within a second of the records handled;
		// 1h writes only when the lease is released at the drain.
		if r.checkpointedEarly != "" {
			t.Errorf("a checkpoint was written while the worker ran: %s", r.checkpointedEarly)
		}
		if len(r.leasesAfter) != 1 || r.leasesAfter[0].Checkpoint.Seq != r.seq("keep-19") {
			t.Errorf("leases after the drain %v, want the checkpoint at keep-19 (%s)", r.leasesAfter, r.seq("keep-19"))
		}
	}},
	{"report-batch-item-failures", nil, "basic", func(t *testing.T, r *effectRun) {
		if n := r.delivered("keep-")["keep-3"]; n != 2 {
			t.Errorf("keep-3, reported failed once, delivered %d times, want 2 (processing resumes at the failed item)", n)
		}
	}},
	{"log-level", []string{"-log-level", "debug"}, "basic", func(t *testing.T, r *effectRun) {
		if logs := r.logs(); !strings.Contains(logs, "level=DEBUG") && !strings.Contains(logs, `"level":"DEBUG"`) {
			t.Errorf("no DEBUG lines on stderr:\n%s", tail(r.logs(), 2000))
		}
	}},
	{"log-format", []string{"-log-format", "text"}, "basic", func(t *testing.T, r *effectRun) {
		// stderr is not a terminal: auto would write JSON.
		logs := r.logs()
		if !strings.Contains(logs, `level=INFO msg="worker started"`) || strings.Contains(logs, `{"time"`) {
			t.Errorf("stderr is not text lines:\n%s", tail(logs, 2000))
		}
	}},
	{"max-record-age", []string{"-max-record-age", "1h"}, "basic", func(t *testing.T, r *effectRun) {
		// Records an hour old cannot be made on kinesis-mock: the worker's
		// configuration is checked (the default, -1s, is 0: never).
		if got := r.built().MaxRecordAge; got != time.Hour {
			t.Errorf("coordinator MaxRecordAge = %v, want 1h", got)
		}
	}},

	// position: a stream in eu-west-3 with a-0..a-4, then b-0..b-4 put after
	// the timestamp; the first delivery of b-0 is reported failed.
	{"initial-position", []string{"-initial-position", "AT_TIMESTAMP"}, "position", func(t *testing.T, r *effectRun) {
		if got := r.delivered(""); len(got) != 5 || got["b-0"] == 0 || got["b-4"] == 0 {
			t.Errorf("handled %v, want b-0..b-4 (the records after the timestamp)", got)
		}
	}},
	{"initial-timestamp", []string{"-initial-timestamp", "{ts}"}, "position", func(t *testing.T, r *effectRun) {
		if got := r.delivered("a-"); len(got) > 0 {
			t.Errorf("records put before -initial-timestamp were handled: %v", got)
		}
	}},
	{"region", []string{"-region", "eu-west-3"}, "position", func(t *testing.T, r *effectRun) {
		for _, c := range r.calls() {
			for _, rec := range c.records {
				if rec.AwsRegion != "eu-west-3" || !strings.HasPrefix(rec.EventSourceArn, "arn:aws:kinesis:eu-west-3:") {
					t.Fatalf("event record awsRegion %q, eventSourceARN %q: want eu-west-3", rec.AwsRegion, rec.EventSourceArn)
				}
			}
		}
		for name, p := range map[string]*recordingProxy{"Kinesis": r.kinesisProxy, "DynamoDB": r.dynamoProxy} {
			calls := p.seen()
			if len(calls) == 0 {
				t.Errorf("no %s calls", name)
			}
			for _, c := range calls {
				if c.region != "eu-west-3" {
					t.Fatalf("%s %s signed for region %q, want eu-west-3", name, c.op, c.region)
				}
			}
		}
	}},
	{"report-batch-item-failures", []string{"-report-batch-item-failures=false"}, "position", func(t *testing.T, r *effectRun) {
		// Ignored, as Lambda without ReportBatchItemFailures: b-0 is not
		// delivered again, and the checkpoint passed it.
		if n := r.delivered("b-")["b-0"]; n != 1 {
			t.Errorf("b-0, reported failed, delivered %d times, want once", n)
		}
	}},

	// failures: r0..r7 in one batch; the handler fails every batch with r5.
	{"bisect-on-error", []string{"-bisect-on-error"}, "failures", func(t *testing.T, r *effectRun) {
		if got := r.failed(); len(got) != 1 || len(got[0].Records) != 1 || string(got[0].Records[0].Data) != "r5" {
			t.Errorf("given up %v, want r5 alone: the failing batch split down to it", recordData(got))
		}
		if n := len(r.delivered("r")); n != 8 {
			t.Errorf("%d of the 8 records handed to the handler", n)
		}
	}},
	{"max-retry-attempts", []string{"-max-retry-attempts", "2"}, "failures", func(t *testing.T, r *effectRun) {
		alone := 0
		for _, c := range r.calls() {
			if len(c.records) == 1 && string(c.records[0].Kinesis.Data) == "r5" {
				alone++
			}
		}
		if alone != 3 {
			t.Errorf("r5 alone called %d times, want 3 (the attempt and 2 retries)", alone)
		}
		if got := r.failed(); len(got) != 1 || got[0].RequestContext.ApproximateInvokeCount != 3 || got[0].RequestContext.Condition != "RetryAttemptsExhausted" {
			t.Errorf("on-failure records %+v, want one after 3 attempts, RetryAttemptsExhausted", got)
		}
	}},
	{"on-failure", []string{"-on-failure", "file://{dir}/failed.jsonl"}, "failures", func(t *testing.T, r *effectRun) {
		got := r.failed()
		if len(got) != 1 {
			t.Fatalf("%d records in the on-failure file, want 1", len(got))
		}
		b := got[0].KinesisBatchInfo
		if b.StartSequenceNumber != r.seq("r5") || b.EndSequenceNumber != r.seq("r5") || !strings.HasSuffix(b.StreamARN, "/"+r.stream) {
			t.Errorf("on-failure record %+v, want r5 (%s) of %s", b, r.seq("r5"), r.stream)
		}
	}},

	// parallel: two shards, 60 records over 12 keys, batches of 3, on a
	// terminal.
	{"parallelization-factor", []string{"-parallelization-factor", "3"}, "parallel", func(t *testing.T, r *effectRun) {
		if r.mostInFlight < 2 {
			t.Errorf("at most %d handler call in flight for the shard, want 2 or more", r.mostInFlight)
		}
		last := map[string]string{} // partition key → last sequence number
		for _, c := range r.calls() {
			for _, rec := range c.records {
				k := rec.Kinesis.PartitionKey
				if prev, ok := last[k]; ok && !seqAfter(rec.Kinesis.SequenceNumber, prev) {
					t.Fatalf("key %s: %s delivered after %s", k, rec.Kinesis.SequenceNumber, prev)
				}
				last[k] = rec.Kinesis.SequenceNumber
			}
		}
	}},
	{"max-leases", []string{"-max-leases", "1"}, "parallel", func(t *testing.T, r *effectRun) {
		if r.mostOwned != 1 || len(r.leasesRunning) != 2 {
			t.Errorf("the worker held up to %d of %d leases, want 1 of 2", r.mostOwned, len(r.leasesRunning))
		}
		for _, c := range r.calls() {
			if c.shard != r.heldShard {
				t.Fatalf("records of %s handled, want only %s (the lease held)", c.shard, r.heldShard)
			}
		}
	}},
	{"quiet", []string{"-quiet"}, "parallel", func(t *testing.T, r *effectRun) {
		// Everything else the live view needs is there: a terminal for
		// stdout and stderr, text logs (see the print group without -quiet).
		logs := r.logs()
		if !strings.Contains(logs, `level=INFO msg="worker started"`) {
			t.Fatalf("the terminal does not show text logs:\n%s", tail(logs, 2000))
		}
		if strings.Contains(logs, terminal.Erase) || r.ran < 3*liveEvery {
			t.Errorf("on a terminal for %s (the live line is redrawn every %s), the screen has a status line, want none:\n%q", r.ran, liveEvery, tail(logs, 2000))
		}
	}},

	// window: one shard, w-0..w-5, on a terminal; the App has a windowed
	// handler too.
	{"log-format", []string{"-log-format", "json"}, "window", func(t *testing.T, r *effectRun) {
		// On a terminal, auto would write text.
		logs := r.logs()
		if !strings.Contains(logs, `"msg":"worker started"`) || strings.Contains(logs, "level=INFO") {
			t.Errorf("the terminal does not show JSON logs:\n%s", tail(logs, 2000))
		}
	}},
	{"tumbling-window", []string{"-tumbling-window", "1s"}, "window", func(t *testing.T, r *effectRun) {
		if n := len(r.calls()); n > 0 {
			t.Errorf("the plain handler was called %d times, want the windowed one only", n)
		}
		counted := map[time.Time]int{}
		finals := 0
		for _, ev := range r.windowEvents() {
			if d := ev.Window.End.Sub(ev.Window.Start.Time); d != time.Second {
				t.Fatalf("window %s–%s is %s long, want 1s", ev.Window.Start, ev.Window.End, d)
			}
			if !ev.IsFinalInvokeForWindow {
				counted[ev.Window.Start.Time] += len(ev.Records)
				continue
			}
			finals++
			if got := ev.State["count"]; got != strconv.Itoa(counted[ev.Window.Start.Time]) {
				t.Errorf("final call of window %s has state count %q, want %d (the records of its calls)", ev.Window.Start, got, counted[ev.Window.Start.Time])
			}
		}
		if finals == 0 {
			t.Error("no final window call")
		}
	}},

	// aws: roles through a stand-in STS, metrics to moto's CloudWatch;
	// Kinesis and DynamoDB reached through recording proxies.
	{"kinesis-role-arn", []string{"-kinesis-role-arn", kinesisRole}, "aws", func(t *testing.T, r *effectRun) {
		r.checkRole(t, kinesisRole, "Kinesis", r.kinesisProxy.seen())
	}},
	{"dynamodb-role-arn", []string{"-dynamodb-role-arn", dynamoDBRole}, "aws", func(t *testing.T, r *effectRun) {
		r.checkRole(t, dynamoDBRole, "DynamoDB", r.dynamoProxy.seen())
	}},
	{"cloudwatch-role-arn", []string{"-cloudwatch-role-arn", cloudWatchRole}, "aws", func(t *testing.T, r *effectRun) {
		r.checkRole(t, cloudWatchRole, "CloudWatch", r.env.cloudwatch.ops("PutMetricData"))
	}},
	{"metrics-cloudwatch", []string{"-metrics-cloudwatch"}, "aws", func(t *testing.T, r *effectRun) {
		if r.cloudWatchSum != 5 {
			t.Errorf("RecordsProcessed in moto's CloudWatch, namespace %s: %v, want a sum of 5", r.app, r.cloudWatchSum)
		}
	}},

	// reads: one shard behind a proxy that throttles the first 3 GetRecords;
	// 3 records, then 3 more once the first read is answered.
	{"retry-wait-time", []string{"-retry-wait-time", "300ms"}, "reads", func(t *testing.T, r *effectRun) {
		thr := r.kinesisProxy.ops("GetRecords")[:3]
		for i := 1; i < len(thr); i++ {
			if gap := thr[i].at.Sub(thr[i-1].done); gap < 280*time.Millisecond {
				t.Errorf("throttled read %d came %s after the answer to the one before, want 300ms", i+1, gap)
			}
		}
		if line := r.backingOff(t); line["wait"] != "600ms" {
			t.Errorf("back-off after the retries %v, want 600ms (twice the retry wait)", line["wait"])
		}
	}},
	{"retry-max-attempts", []string{"-retry-max-attempts", "2"}, "reads", func(t *testing.T, r *effectRun) {
		// With the default 3, the 3 throttled reads are all retries and the
		// reader never backs off.
		if line := r.backingOff(t); line["attempts"] != 3.0 {
			t.Errorf("backed off after %v throttled reads, want 3 (2 retries)", line["attempts"])
		}
	}},
	{"idle-time-between-reads", []string{"-idle-time-between-reads", "700ms"}, "reads", func(t *testing.T, r *effectRun) {
		if len(r.idleReads) < 3 {
			t.Fatalf("%d reads after the last records", len(r.idleReads))
		}
		for i := 1; i < len(r.idleReads); i++ {
			if gap := r.idleReads[i].at.Sub(r.idleReads[i-1].at); gap < 680*time.Millisecond {
				t.Errorf("a caught-up shard read again after %s, want 700ms", gap)
			}
		}
	}},
	{"max-batching-window", []string{"-max-batching-window", "4s"}, "reads", func(t *testing.T, r *effectRun) {
		calls := r.calls()
		if len(calls) == 0 || len(calls[0].records) != 6 {
			t.Errorf("first batch %d records, want all 6: the 3 put after the first read came within the window", len(calls[0].records))
		}
	}},

	// print: one shard whose lease a dead worker (ghost) holds; on a terminal.
	{"handler", []string{"-handler", "print"}, "print", func(t *testing.T, r *effectRun) {
		lines := r.printed(t)
		var data []string
		for _, l := range lines {
			data = append(data, l.Data)
		}
		if want := []string{"p-0", "p-1", "p-2", "p-3", "p-4"}; !slices.Equal(data, want) {
			t.Errorf("print wrote %v, want %v", data, want)
		}
		if n := len(r.calls()); n > 0 {
			t.Errorf("the App's own handler was called %d times, want none", n)
		}
	}},
	{"failover-time", []string{"-failover-time", "1s"}, "print", func(t *testing.T, r *effectRun) {
		// With the default 10s, the ghost's lease could not be taken for 10s.
		if r.takenAt.IsZero() || r.takenAt.Sub(r.started) >= 10*time.Second || !strings.Contains(r.logs(), `msg="lease taken over`) {
			t.Errorf("the lease of the dead worker taken over %s after the start, want within 10s", r.takenAt.Sub(r.started))
		}
	}},
	{"graceful-handoff-timeout", []string{"-graceful-handoff-timeout", "1s"}, "print", func(t *testing.T, r *effectRun) {
		// The ghost died mid-handoff: with the default 30s, its lease could
		// not be taken for 30s + the failover time.
		if r.takenAt.IsZero() || r.takenAt.Sub(r.started) >= 10*time.Second || !strings.Contains(r.logs(), `msg="lease taken over mid-handoff"`) {
			t.Errorf("the lease of the worker that died mid-handoff taken over %s after the start, want within 10s", r.takenAt.Sub(r.started))
		}
	}},
	{"former-stream-lease-retention", []string{"-former-stream-lease-retention", "1s"}, "streams", func(t *testing.T, r *effectRun) {
		// With the default 1h, the former stream's lease would stay.
		if !r.formerGone {
			t.Errorf("the former stream's lease is still there, want it deleted after 1s")
		}
		if got := r.delivered("m"); len(got) != 4 {
			t.Errorf("delivered %v, want m-0..m-3 of both streams", got)
		}
	}},
	{"quiet", nil, "print", func(t *testing.T, r *effectRun) {
		if !strings.Contains(r.logs(), terminal.Erase+"1 shards | ") {
			t.Errorf("no live status line on the terminal:\n%q", tail(r.logs(), 2000))
		}
	}},

	// target: one shard, t-0..t-3, a Lambda stand-in.
	{"target-function", []string{"-target-function", "shardline-target"}, "target", func(t *testing.T, r *effectRun) {
		n := 0
		for _, inv := range r.lambda.invocations() {
			if inv.function != "shardline-target" {
				t.Errorf("invoked %q, want shardline-target", inv.function)
			}
			n += len(inv.event.Records)
		}
		if n != 4 {
			t.Errorf("%d records sent to the function, want 4", n)
		}
		if n := len(r.calls()); n > 0 {
			t.Errorf("the App's own handler was called %d times, want none", n)
		}
	}},
	{"lambda-endpoint", []string{"-lambda-endpoint", "{lambda}"}, "target", func(t *testing.T, r *effectRun) {
		if len(r.lambda.invocations()) == 0 {
			t.Errorf("no invocation reached %s", r.lambda.URL)
		}
	}},
	{"function-timeout", []string{"-function-timeout", "42s"}, "target", func(t *testing.T, r *effectRun) {
		// An Invoke that runs 42s is too slow for a test: the Lambda
		// client's HTTP timeout is checked (the function's, plus awsconf's
		// 15s for a cold start and the network).
		hc, ok := r.builtClients().Lambda.Options().HTTPClient.(*awshttp.BuildableClient)
		if !ok || hc.GetTimeout() != 57*time.Second {
			t.Errorf("Lambda client HTTP client %T, timeout %v: want 42s + 15s", r.builtClients().Lambda.Options().HTTPClient, hc.GetTimeout())
		}
	}},

	// metrics: one shard, m-0..m-4, /metrics on a free loopback port.
	{"metrics-addr", []string{"-metrics-addr", "127.0.0.1:0"}, "metrics", func(t *testing.T, r *effectRun) {
		if r.metricsPage == "" || r.healthz != http.StatusOK {
			t.Errorf("the endpoint served /metrics %d bytes, /healthz %d", len(r.metricsPage), r.healthz)
		}
	}},
	{"metrics-level", []string{"-metrics-level", "SUMMARY"}, "metrics", func(t *testing.T, r *effectRun) {
		if strings.Contains(r.metricsPage, `shard_id="`) {
			t.Errorf("/metrics has per-shard series at SUMMARY:\n%s", grepLines(r.metricsPage, "shard_id"))
		}
	}},
	{"metrics-dimensions", []string{"-metrics-dimensions", "Operation,ShardId,StreamName"}, "metrics", func(t *testing.T, r *effectRun) {
		want := `shardline_records_processed_total{operation="ProcessTask",stream_name="` + r.stream + `"} 5`
		if !strings.Contains(r.metricsPage, want) || strings.Contains(r.metricsPage, "worker_identifier") {
			t.Errorf("/metrics lacks %s, or has worker_identifier:\n%s", want, grepLines(r.metricsPage, "shardline_records_processed"))
		}
	}},
	// kpl: two shards; one KPL aggregate put on shard 0 whose user records'
	// explicit hash keys are half in shard 1's range.
	{"out-of-range", []string{"-out-of-range", "deliver"}, "kpl", func(t *testing.T, r *effectRun) {
		// The default drops the 5 user records outside shard 0's range.
		if got := r.delivered("u-"); len(got) != 10 {
			t.Errorf("%d of the aggregate's 10 user records delivered, want all 10", len(got))
		}
	}},

	// fanout: one shard, f-0..f-2; a consumer name of the group's own.
	{"consumer-name", []string{"-consumer-name", "{consumer}"}, "fanout", func(t *testing.T, r *effectRun) {
		// The default (polling) registers no consumer.
		name := r.ph["{consumer}"]
		out, err := r.kinesis().DescribeStreamConsumer(context.Background(), &kinesis.DescribeStreamConsumerInput{
			StreamARN: aws.String(r.streamARN()), ConsumerName: aws.String(name)})
		if err != nil {
			t.Fatalf("consumer %s of %s: %v", name, r.stream, err)
		}
		d := out.ConsumerDescription
		if d.ConsumerStatus != ktypes.ConsumerStatusActive {
			t.Errorf("consumer %s is %s, want ACTIVE", name, d.ConsumerStatus)
		}
		if lines := r.jsonLogs("enhanced fan-out consumer ready"); len(lines) != 1 || lines[0]["consumer"] != name || lines[0]["consumerARN"] != aws.ToString(d.ConsumerARN) {
			t.Errorf("lines of the consumer %v, want one naming %s (%s)", lines, name, aws.ToString(d.ConsumerARN))
		}
	}},

	// consumer-arn: one shard; the ARN of a consumer of the stream that
	// does not exist. The run ends at start.
	{"consumer-arn", []string{"-consumer-arn", "{missing}"}, "consumer-arn", func(t *testing.T, r *effectRun) {
		// The default (polling) runs until stopped.
		var ue *config.UsageError
		if want := "cannot start: consumer " + r.ph["{missing}"] + ": does not exist"; r.runErr == nil ||
			!strings.Contains(r.runErr.Error(), want) || errors.As(r.runErr, &ue) {
			t.Errorf("run = %v, want a failure (exit 1) containing %q", r.runErr, want)
		}
		if n := len(r.calls()); n > 0 {
			t.Errorf("the handler was called %d times, want none", n)
		}
	}},
}

// effectGroups are the runs the rows share: each is one `run` of an App
// with its own handler, on a stream and lease table of its own. They run
// in parallel.
var effectGroups = []struct {
	name string
	run  func(r *effectRun)
}{
	{"basic", runBasic},
	{"position", runPosition},
	{"failures", runFailures},
	{"parallel", runParallel},
	{"window", runWindow},
	{"aws", runAWS},
	{"reads", runReads},
	{"print", runPrint},
	{"target", runTarget},
	{"metrics", runMetrics},
	{"kpl", runKPL},
	{"fanout", runFanout},
	{"consumer-arn", runConsumerARN},
	{"streams", runStreams},
}

// runFlags are the flags `run` registers for an App with its own handler.
func runFlags() []string {
	var s Settings
	s.Handlers = New(Handle(func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		return events.KinesisEventResponse{}, nil
	})).handlerSet()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	s.Register(fs)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// TestEverySettingHasARow: every flag of `run` has a row in effectRows
// with a value of its own (a new flag cannot be added without its effect),
// every row names a flag of `run` and gives it, and every row's group runs.
func TestEverySettingHasARow(t *testing.T) {
	flags := runFlags()
	covered := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range effectGroups {
		groups[g.name] = true
	}
	for _, row := range effectRows {
		if !slices.Contains(flags, row.flag) {
			t.Errorf("row %q: run has no flag -%s", row.name(), row.flag)
		}
		if !groups[row.group] {
			t.Errorf("row %q: no group %q", row.name(), row.group)
		}
		if row.args == nil {
			continue // the default, beside a row that changes it
		}
		if a := row.args[0]; a != "-"+row.flag && !strings.HasPrefix(a, "-"+row.flag+"=") {
			t.Errorf("row %q does not give -%s", row.name(), row.flag)
		}
		covered[row.flag] = true
	}
	for _, f := range flags {
		if !covered[f] {
			t.Errorf("-%s has no row in effectRows: add one with a value that is not its default and its effect on a run", f)
		}
	}
}

// dropVar names a flag whose rows' args are left out of their group's
// run, to see the rows fail (a row that passes without its value proves
// nothing): EFFECT_TEST_DROP=batch-size go test -run
// 'TestRunHonoursEverySetting/group/basic$' ./shared/shardline/. Every row
// was checked so; those of a required setting or of the value a group
// waits for fail in the group instead (a bad setting, a timeout).
const dropVar = "EFFECT_TEST_DROP"

// effectEnv are what every group shares: the stand-ins, a stand-in STS
// and a recording proxy in front of moto's CloudWatch.
type effectEnv struct {
	kinesis, dynamodb string
	sts               *fakeSTS
	cloudwatch        *recordingProxy
}

// TestRunHonoursEverySetting: a binary built on the public API (an App
// with its own handler, as Start makes one) honours every setting `run`
// accepts: each row of effectRows gives a flag a value that is not its
// default and checks its effect on a run against kinesis-mock and
// DynamoDB Local (in process, through App.Run), or, where no local
// effect can be seen, the client configuration it produces. Rows share
// runs (effectGroups), which run in parallel.
func TestRunHonoursEverySetting(t *testing.T) {
	awsEnv(t)
	// Nothing but the settings may lead the SDK to the stand-ins. (Unset,
	// not empty: moto_server, started here, fails on an empty AWS_PROFILE.)
	for _, v := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_LAMBDA", "AWS_PROFILE", "AWS_CBOR_DISABLE", "AWS_LAMBDA_FUNCTION_NAME"} {
		unsetenv(t, v)
	}
	k, d := standintest.Both(t)
	env := &effectEnv{kinesis: k.Endpoint, dynamodb: d.Endpoint, sts: newFakeSTS(t), cloudwatch: newRecordingProxy(t, "", 0)}
	// Only the "aws" group assumes roles and sends to CloudWatch.
	t.Setenv("AWS_ENDPOINT_URL_STS", env.sts.URL)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", env.cloudwatch.URL)
	began := time.Now()
	t.Run("group", func(t *testing.T) {
		for _, g := range effectGroups {
			t.Run(g.name, func(t *testing.T) {
				t.Parallel()
				r := newEffectRun(t, env, g.name)
				g.run(r)
				for _, row := range effectRows {
					if row.group == g.name {
						t.Run(row.name(), func(t *testing.T) { row.check(t, r) })
					}
				}
			})
		}
	})
	t.Logf("the groups ran in %s", time.Since(began).Round(time.Millisecond))
}

// unsetenv unsets v for the test, as t.Setenv sets it.
func unsetenv(t *testing.T, v string) {
	t.Setenv(v, "") // restores the old value at the end
	if err := os.Unsetenv(v); err != nil {
		t.Fatal(err)
	}
}

// effectRun is one group's run and what it saw.
type effectRun struct {
	t      *testing.T
	env    *effectEnv
	group  string
	region string
	app    string
	stream string
	// kinesisEP and dynamoEP are the endpoints the run is given (a proxy
	// of the stand-in in some groups).
	kinesisEP, dynamoEP string
	vars                map[string]string // SHARDLINE_* besides the rows' flags
	ph                  map[string]string // the rows' placeholders
	puts                []putRecord

	stdout, stderr *testwait.Buffer
	tty            *os.File
	screen         *testwait.Buffer // what the terminal shows, with tty

	// respond answers a call of the App's handler (nil: success); during
	// runs in the call before it.
	respond func(events.KinesisEvent) (events.KinesisEventResponse, error)
	during  func(ctx context.Context, ev events.KinesisEvent)

	mu       sync.Mutex
	handled  []effectCall
	windows  []events.KinesisTimeWindowEvent
	cfg      *coordinator.Config
	clients  *awsconf.Clients
	inFlight int

	started time.Time
	ran     time.Duration
	cancel  context.CancelFunc
	done    chan error

	// What the groups observed, for the rows.
	leasesRunning     []lease.Lease
	leasesAfter       []lease.Lease
	checkpointedEarly string
	mostInFlight      int
	mostOwned         int
	heldShard         string
	kinesisProxy      *recordingProxy
	dynamoProxy       *recordingProxy
	lambda            *fakeLambda
	cloudWatchSum     float64
	idleReads         []signedCall
	takenAt           time.Time
	formerGone        bool // streams: the former stream's lease was deleted
	metricsPage       string
	healthz           int
	runErr            error // what a run that ended by itself returned
}

// effectCall is one call of the App's handler.
type effectCall struct {
	at, deadline time.Time
	hasDeadline  bool
	shard        string
	records      []events.KinesisEventRecord
}

// putRecord is a record the test put.
type putRecord struct{ key, data, seq, shard string }

func newEffectRun(t *testing.T, env *effectEnv, group string) *effectRun {
	r := &effectRun{
		t: t, env: env, group: group, region: standin.Region, app: standintest.UniqueName(t),
		kinesisEP: env.kinesis, dynamoEP: env.dynamodb, vars: map[string]string{}, ph: map[string]string{},
		stdout: &testwait.Buffer{}, stderr: &testwait.Buffer{}, done: make(chan error, 1),
	}
	t.Cleanup(func() {
		if r.cancel != nil {
			r.cancel()
			select {
			case <-r.done:
			case <-time.After(time.Minute):
				t.Error("the run did not return within a minute of its context's end")
			}
		}
		if t.Failed() {
			t.Logf("%s's logs:\n%s", group, tail(r.logs(), 6000))
		}
	})
	return r
}

func (r *effectRun) kinesis() *kinesis.Client {
	return standintest.KinesisClient(r.env.kinesis, func(o *kinesis.Options) { o.Region = r.region })
}

func (r *effectRun) ddb() *dynamodb.Client {
	return standintest.DynamoDBClient(r.env.dynamodb, func(o *dynamodb.Options) { o.Region = r.region })
}

// newStream creates the group's stream, in its region.
func (r *effectRun) newStream(shards int) {
	r.t.Helper()
	if r.region == standin.Region {
		r.stream = standintest.NewStream(r.t, r.env.kinesis, shards)
		return
	}
	r.stream = standintest.UniqueName(r.t)
	c := r.kinesis()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(r.stream), ShardCount: aws.Int32(int32(shards))}); err != nil {
		r.t.Fatalf("create stream %s in %s: %v", r.stream, r.region, err)
	}
	r.t.Cleanup(func() {
		_, _ = c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String(r.stream), EnforceConsumerDeletion: aws.Bool(true)})
	})
	if err := standin.WaitStreamActive(ctx, c, r.stream); err != nil {
		r.t.Fatal(err)
	}
}

// keyed makes n records of partition key key, with data key-0, key-1, ...
func keyed(key string, n int) [][2]string {
	var out [][2]string
	for i := range n {
		out = append(out, [2]string{key, fmt.Sprintf("%s-%d", key, i)})
	}
	return out
}

// put puts records (partition key, data) in one call, in order.
func (r *effectRun) put(recs ...[2]string) {
	r.t.Helper()
	var in []ktypes.PutRecordsRequestEntry
	for _, rec := range recs {
		in = append(in, ktypes.PutRecordsRequestEntry{PartitionKey: aws.String(rec[0]), Data: []byte(rec[1])})
	}
	out, err := r.kinesis().PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(r.stream), Records: in})
	if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
		r.t.Fatalf("put %d records: %v (%d failed)", len(recs), err, aws.ToInt32(out.FailedRecordCount))
	}
	for i, e := range out.Records {
		r.puts = append(r.puts, putRecord{recs[i][0], recs[i][1], aws.ToString(e.SequenceNumber), aws.ToString(e.ShardId)})
	}
}

// seq is the sequence number of the record put with data.
func (r *effectRun) seq(data string) string {
	for _, p := range r.puts {
		if p.data == data {
			return p.seq
		}
	}
	r.t.Fatalf("no record %q was put", data)
	return ""
}

func (r *effectRun) handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	c := effectCall{at: time.Now(), records: ev.Records}
	c.deadline, c.hasDeadline = ctx.Deadline()
	if len(ev.Records) > 0 {
		c.shard, _, _, _ = stream.ParseEventID(ev.Records[0].EventID)
	}
	r.mu.Lock()
	r.handled = append(r.handled, c)
	r.mu.Unlock()
	if r.during != nil {
		r.during(ctx, ev)
	}
	if r.respond != nil {
		return r.respond(ev)
	}
	return events.KinesisEventResponse{}, nil
}

// handleWindow counts each window's records in its state.
func (r *effectRun) handleWindow(_ context.Context, ev events.KinesisTimeWindowEvent) (events.KinesisTimeWindowEventResponse, error) {
	r.mu.Lock()
	r.windows = append(r.windows, ev)
	r.mu.Unlock()
	n, _ := strconv.Atoi(ev.State["count"])
	var resp events.KinesisTimeWindowEventResponse
	resp.State = map[string]string{"count": strconv.Itoa(n + len(ev.Records))}
	return resp, nil
}

func (r *effectRun) calls() []effectCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]effectCall(nil), r.handled...)
}

func (r *effectRun) windowEvents() []events.KinesisTimeWindowEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.KinesisTimeWindowEvent(nil), r.windows...)
}

// delivered counts the deliveries of each record whose data starts with
// prefix.
func (r *effectRun) delivered(prefix string) map[string]int {
	got := map[string]int{}
	for _, c := range r.calls() {
		for _, rec := range c.records {
			if d := string(rec.Kinesis.Data); strings.HasPrefix(d, prefix) {
				got[d]++
			}
		}
	}
	return got
}

// built is the coordinator configuration `run` built.
func (r *effectRun) built() coordinator.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg == nil {
		r.t.Fatal("run built no worker")
	}
	return *r.cfg
}

func (r *effectRun) builtClients() *awsconf.Clients {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clients == nil {
		r.t.Fatal("run built no clients")
	}
	return r.clients
}

// useTTY gives the run a terminal for stdout and stderr.
func (r *effectRun) useTTY() { r.tty, r.screen = ptytest.Open(r.t) }

// logs is what the run wrote to stderr (with a terminal, all it showed).
func (r *effectRun) logs() string {
	if r.screen != nil {
		return r.screen.String()
	}
	return r.stderr.String()
}

// start runs the App's `run` with the group's rows' flags; the other
// settings come from SHARDLINE_* variables.
func (r *effectRun) start() {
	r.t.Helper()
	r.ph["{app}"], r.ph["{stream}"] = r.app, r.stream
	r.ph["{kinesis}"], r.ph["{dynamodb}"] = r.kinesisEP, r.dynamoEP
	vars := map[string]string{
		"SHARDLINE_APP_NAME": r.app, "SHARDLINE_STREAM_NAME": r.stream,
		"SHARDLINE_KINESIS_ENDPOINT": r.kinesisEP, "SHARDLINE_DYNAMODB_ENDPOINT": r.dynamoEP,
		"SHARDLINE_INITIAL_POSITION": stream.TrimHorizon,
	}
	for k, v := range r.vars {
		vars[k] = v
	}
	args := []string{"run"}
	for _, row := range effectRows {
		if row.group != r.group || row.args == nil {
			continue
		}
		delete(vars, config.EnvName(row.flag)) // the flag alone gives it
		if os.Getenv(dropVar) == row.flag {
			continue
		}
		for _, a := range row.args {
			for k, v := range r.ph {
				a = strings.ReplaceAll(a, k, v)
			}
			if strings.Contains(a, "{") && !strings.HasPrefix(a, "{\"") {
				r.t.Fatalf("row %q: placeholder left in %q", row.name(), a)
			}
			args = append(args, a)
		}
	}
	var stdout, stderr io.Writer = r.stdout, r.stderr
	if r.tty != nil {
		stdout, stderr = r.tty, r.tty
	}
	seen := func(cfg coordinator.Config, c *awsconf.Clients) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.cfg, r.clients = &cfg, c
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), builtKey{}, seen))
	r.cancel = cancel
	app := New(WithName("app"), Handle(r.handle), HandleWindow(r.handleWindow))
	r.started = time.Now()
	getenv := func(k string) string { return vars[k] } // -log-format auto: JSON off a terminal
	go func() { r.done <- app.Run(ctx, args, getenv, stdout, stderr) }()
}

// stop drains the run (as the first signal does) and fails the test if it
// returned an error.
func (r *effectRun) stop() {
	r.t.Helper()
	r.ran = time.Since(r.started)
	r.cancel()
	select {
	case err := <-r.done:
		r.cancel = nil // called above
		if err != nil {
			r.t.Fatalf("run: %v", err)
		}
	case <-time.After(time.Minute):
		r.t.Fatal("the run did not drain within a minute")
	}
}

// until polls cond; the run ending first fails the test.
func (r *effectRun) until(limit time.Duration, what string, cond func() bool) {
	r.t.Helper()
	testwait.Until(r.t, limit, what, func() bool {
		select {
		case err := <-r.done:
			r.cancel()
			r.cancel = nil
			r.t.Fatalf("the run ended (%v) while waiting for %s", err, what)
		default:
		}
		return cond()
	})
}

// leases reads the group's lease table (nil while it does not exist).
func (r *effectRun) leases() []lease.Lease {
	ls, err := lease.NewTable(r.ddb(), r.app).List(context.Background())
	if err != nil {
		return nil
	}
	return ls
}

// failed reads the records the on-failure file holds.
func (r *effectRun) failed() []record.Record {
	b, err := os.ReadFile(filepath.Join(r.ph["{dir}"], "failed.jsonl"))
	if err != nil {
		return nil
	}
	var out []record.Record
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec record.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			r.t.Fatalf("on-failure line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

func recordData(recs []record.Record) [][]string {
	var out [][]string
	for _, rec := range recs {
		var d []string
		for _, it := range rec.Records {
			d = append(d, string(it.Data))
		}
		out = append(out, d)
	}
	return out
}

// jsonLogs are the run's JSON log lines with msg.
func (r *effectRun) jsonLogs(msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(r.logs(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(strings.TrimSpace(l)), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// backingOff is the one log line of a read that stayed throttled past
// the retries.
func (r *effectRun) backingOff(t *testing.T) map[string]any {
	t.Helper()
	lines := r.jsonLogs("read still throttled after the retry attempts; backing off")
	if len(lines) != 1 {
		t.Fatalf("%d lines of a read backing off after its retries, want 1", len(lines))
	}
	return lines[0]
}

// checkRole: role was assumed with the app's session name, and every call
// to the service was signed with its credentials.
func (r *effectRun) checkRole(t *testing.T, role, service string, calls []signedCall) {
	t.Helper()
	if s := r.env.sts.sessions(role); len(s) == 0 {
		t.Errorf("%s was never assumed", role)
	}
	if len(calls) == 0 {
		t.Fatalf("no %s calls", service)
	}
	for _, c := range calls {
		if c.key != fakeKey(role) {
			t.Fatalf("%s %s signed by %q, want %q (the credentials of %s)", service, c.op, c.key, fakeKey(role), role)
		}
	}
}

// printed reads the print handler's lines on the terminal.
func (r *effectRun) printed(t *testing.T) []handlers.PrintLine {
	t.Helper()
	var out []handlers.PrintLine
	for _, l := range strings.Split(r.logs(), "\r\n") {
		i := strings.Index(l, `{"shardId"`)
		if i < 0 {
			continue
		}
		var p handlers.PrintLine
		if err := json.Unmarshal([]byte(l[i:]), &p); err != nil {
			t.Fatalf("print line %q: %v", l, err)
		}
		out = append(out, p)
	}
	return out
}

// seqAfter reports whether sequence number a comes after b.
func seqAfter(a, b string) bool {
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// reportOnce reports the first delivery of the record with data failed
// (batchItemFailures), and every other call a success.
func reportOnce(data string) func(events.KinesisEvent) (events.KinesisEventResponse, error) {
	var once sync.Once
	return func(ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		var resp events.KinesisEventResponse
		for _, rec := range ev.Records {
			if string(rec.Kinesis.Data) == data {
				once.Do(func() {
					resp.BatchItemFailures = []events.KinesisBatchItemFailure{{ItemIdentifier: rec.Kinesis.SequenceNumber}}
				})
			}
		}
		return resp, nil
	}
}

func runBasic(r *effectRun) {
	r.newStream(1)
	var recs [][2]string
	for i := range 20 {
		recs = append(recs, [2]string{"keep", fmt.Sprintf("keep-%d", i)})
		if i%2 == 0 {
			recs = append(recs, [2]string{"drop", fmt.Sprintf("drop-%d", i)})
		}
	}
	r.put(recs...) // the last is keep-19
	r.respond = reportOnce("keep-3")
	r.start()
	r.until(time.Minute, "the 20 kept records handled", func() bool {
		d := r.delivered("keep-")
		return len(d) == 20 && d["keep-3"] == 2
	})
	// Twice the default checkpoint interval with every record handled: no
	// checkpoint may be written with -checkpoint-interval 1h.
	from := time.Now()
	r.until(30*time.Second, "2s of watching the checkpoint", func() bool {
		ls := r.leases()
		for _, l := range ls {
			if !l.Checkpoint.IsSentinel() && r.checkpointedEarly == "" {
				r.checkpointedEarly = l.String()
			}
		}
		r.leasesRunning = ls
		return time.Since(from) >= 2*time.Second && len(ls) > 0
	})
	r.stop()
	r.leasesAfter = r.leases()
}

func runPosition(r *effectRun) {
	r.region = "eu-west-3"
	r.kinesisProxy = newRecordingProxy(r.t, r.env.kinesis, 0)
	r.dynamoProxy = newRecordingProxy(r.t, r.env.dynamodb, 0)
	r.kinesisEP, r.dynamoEP = r.kinesisProxy.URL, r.dynamoProxy.URL
	r.newStream(1)
	r.put(keyed("a", 5)...)
	// Kinesis keeps arrival times in milliseconds: the timestamp is the
	// next millisecond after a's, and b is put after it.
	ts := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
	testwait.Until(r.t, time.Second, "the clock past the timestamp", func() bool { return time.Now().After(ts) })
	r.ph["{ts}"] = ts.UTC().Format(time.RFC3339Nano)
	r.put(keyed("b", 5)...)
	r.respond = reportOnce("b-0")
	r.start()
	r.until(time.Minute, "b-4 handled and checkpointed", func() bool {
		ls := r.leases()
		return len(r.delivered("b-")) == 5 && len(ls) == 1 && ls[0].Checkpoint.Seq == r.seq("b-4")
	})
	r.stop()
}

func runFailures(r *effectRun) {
	r.ph["{dir}"] = r.t.TempDir()
	r.newStream(1)
	var recs [][2]string
	for i := range 8 {
		recs = append(recs, [2]string{"k", fmt.Sprintf("r%d", i)})
	}
	r.put(recs...)
	r.respond = func(ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		for _, rec := range ev.Records {
			if string(rec.Kinesis.Data) == "r5" {
				return events.KinesisEventResponse{}, errors.New("r5 is poison")
			}
		}
		return events.KinesisEventResponse{}, nil
	}
	r.start()
	r.until(time.Minute, "r5 given up and r7 handled", func() bool {
		return len(r.failed()) > 0 && r.delivered("r7")["r7"] > 0
	})
	r.stop()
}

func runParallel(r *effectRun) {
	r.useTTY()
	r.vars["SHARDLINE_WORKER_ID"] = "w-par"
	r.vars["SHARDLINE_BATCH_SIZE"] = "3"
	r.newStream(2)
	var recs [][2]string
	for i := range 60 {
		recs = append(recs, [2]string{fmt.Sprintf("k%d", i%12), fmt.Sprintf("k%d:%d", i%12, i/12)})
	}
	r.put(recs...)
	// Each call waits (up to 3s) for a second one of its shard to be in
	// flight, until one has been.
	joined := make(chan struct{})
	var once sync.Once
	r.during = func(ctx context.Context, ev events.KinesisEvent) {
		r.mu.Lock()
		r.inFlight++
		r.mostInFlight = max(r.mostInFlight, r.inFlight)
		if r.inFlight >= 2 {
			once.Do(func() { close(joined) })
		}
		r.mu.Unlock()
		select {
		case <-joined:
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}
	r.start()
	r.until(time.Minute, "every record of the shard held handled, and 3s on the terminal", func() bool {
		ls := r.leases()
		owned := 0
		for _, l := range ls {
			if l.Owner == "w-par" {
				owned++
				r.heldShard = l.Key
			}
		}
		r.mostOwned = max(r.mostOwned, owned)
		r.leasesRunning = ls
		if r.heldShard == "" {
			return false
		}
		d := r.delivered("k")
		for _, p := range r.puts {
			if p.shard == r.heldShard && d[p.data] == 0 {
				return false
			}
		}
		return len(ls) == 2 && time.Since(r.started) >= 3*liveEvery
	})
	r.stop()
}

func runWindow(r *effectRun) {
	r.useTTY()
	r.newStream(1)
	r.put(keyed("w", 6)...)
	r.start()
	r.until(time.Minute, "the final calls of the windows of all 6 records", func() bool {
		final, n := 0, 0
		for _, ev := range r.windowEvents() {
			if ev.IsFinalInvokeForWindow {
				c, _ := strconv.Atoi(ev.State["count"])
				final += c
			}
			n += len(ev.Records)
		}
		return n >= 6 && final == n
	})
	r.stop()
}

func runAWS(r *effectRun) {
	moto := standintest.Moto(r.t)
	r.env.cloudwatch.setTarget(r.t, moto.Endpoint)
	r.kinesisProxy = newRecordingProxy(r.t, r.env.kinesis, 0)
	r.dynamoProxy = newRecordingProxy(r.t, r.env.dynamodb, 0)
	r.kinesisEP, r.dynamoEP = r.kinesisProxy.URL, r.dynamoProxy.URL
	r.vars["SHARDLINE_WORKER_ID"] = "w-aws"
	r.newStream(1)
	r.put(keyed("a", 5)...)
	r.start()
	r.until(time.Minute, "5 records handled and checkpointed", func() bool {
		ls := r.leases()
		return len(r.delivered("a-")) == 5 && len(ls) == 1 && ls[0].Checkpoint.Seq == r.seq("a-4")
	})
	r.stop() // the last CloudWatch send is made as the run ends
	cfg := standin.Config()
	cfg.BaseEndpoint = aws.String(moto.Endpoint)
	out, err := cloudwatch.NewClient(cfg).GetMetricData(context.Background(), &cw.GetMetricDataInput{
		StartTime: aws.Time(r.started.Add(-time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("rp"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String(r.app), MetricName: aws.String("RecordsProcessed"), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("Operation"), Value: aws.String("ProcessTask")},
				{Name: aws.String("ShardId"), Value: aws.String("shardId-000000000000")},
				{Name: aws.String("WorkerIdentifier"), Value: aws.String("w-aws")},
			}},
			Period: aws.Int32(300), Stat: aws.String("Sum")}}},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, v := range out.MetricDataResults[0].Values {
		r.cloudWatchSum += v
	}
}

func runReads(r *effectRun) {
	r.kinesisProxy = newRecordingProxy(r.t, r.env.kinesis, 3)
	r.kinesisEP = r.kinesisProxy.URL
	r.newStream(1)
	r.put(keyed("first", 3)...)
	r.start()
	r.until(time.Minute, "a read answered by Kinesis", func() bool {
		for _, c := range r.kinesisProxy.ops("GetRecords") {
			if c.status == http.StatusOK {
				return true
			}
		}
		return false
	})
	r.put(keyed("second", 3)...)
	r.until(time.Minute, "6 records handled", func() bool { return len(r.delivered("")) == 6 })
	calls := r.calls()
	last := calls[len(calls)-1].at
	r.until(time.Minute, "3 reads after the last records", func() bool {
		r.idleReads = nil
		for _, c := range r.kinesisProxy.ops("GetRecords") {
			if c.at.After(last) {
				r.idleReads = append(r.idleReads, c)
			}
		}
		return len(r.idleReads) >= 3
	})
	r.stop()
}

func runPrint(r *effectRun) {
	r.useTTY()
	r.vars["SHARDLINE_WORKER_ID"] = "w-print"
	r.newStream(1)
	r.put(keyed("p", 5)...)
	// A worker that died holding the shard's lease.
	ctx := context.Background()
	shards, err := r.kinesis().ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(r.stream)})
	if err != nil {
		r.t.Fatal(err)
	}
	sh := shards.Shards[0]
	table := lease.NewTable(r.ddb(), r.app)
	if err := table.Ensure(ctx); err != nil {
		r.t.Fatal(err)
	}
	// It died mid-handoff (KCL 3's graceful handoff): ghost holds the
	// lease, ghost-next was to get it.
	ghost := lease.Lease{Key: aws.ToString(sh.ShardId), Owner: "ghost-next", CheckpointOwner: "ghost", Counter: 3, Checkpoint: stream.Position{Seq: stream.TrimHorizon},
		StartingHashKey: aws.ToString(sh.HashKeyRange.StartingHashKey), EndingHashKey: aws.ToString(sh.HashKeyRange.EndingHashKey)}
	if err := table.Create(ctx, ghost); err != nil {
		r.t.Fatal(err)
	}
	r.start()
	r.until(time.Minute, "5 printed lines, the lease taken from ghost and the live status line", func() bool {
		if ls := r.leases(); r.takenAt.IsZero() && len(ls) == 1 && ls[0].Owner == "w-print" {
			r.takenAt = time.Now()
		}
		return strings.Count(r.logs(), `{"shardId"`) >= 5 && !r.takenAt.IsZero() && strings.Contains(r.logs(), terminal.Erase+"1 shards | ")
	})
	r.stop()
}

// runStreams reads two streams (m-0, m-1 in each) in one application,
// whose table holds the lease of a third stream, no longer in the list.
func runStreams(r *effectRun) {
	r.newStream(1)
	first := r.stream
	r.put(keyed("m", 2)...)
	r.newStream(1)
	r.put([2]string{"m", "m-2"}, [2]string{"m", "m-3"})
	ctx := context.Background()
	table := lease.NewTable(r.ddb(), r.app).WithMultiStream()
	if err := table.Ensure(ctx); err != nil {
		r.t.Fatal(err)
	}
	former := lease.Lease{Key: "000000000000:gone:1767366245:shardId-000000000000", StreamID: "000000000000:gone:1767366245", ShardID: "shardId-000000000000",
		Checkpoint: stream.Position{Seq: stream.TrimHorizon}}
	if err := table.Create(ctx, former); err != nil {
		r.t.Fatal(err)
	}
	r.stream = first + "," + r.stream
	r.start()
	r.until(time.Minute, "m-0..m-3 handled and the former stream's lease deleted", func() bool {
		_, ok, err := table.Get(ctx, former.Key)
		if err == nil && !ok {
			r.formerGone = true
		}
		return len(r.delivered("m")) == 4 && r.formerGone
	})
	r.stop()
}

func runTarget(r *effectRun) {
	r.lambda = newFakeLambda(r.t)
	r.ph["{lambda}"] = r.lambda.URL
	r.newStream(1)
	r.put(keyed("t", 4)...)
	r.start()
	r.until(time.Minute, "4 records sent to the function", func() bool {
		n := 0
		for _, inv := range r.lambda.invocations() {
			n += len(inv.event.Records)
		}
		return n >= 4
	})
	r.stop()
}

var servingMetrics = regexp.MustCompile(`"msg":"serving /metrics, /healthz and /readyz","addr":"(127\.0\.0\.1:\d+)"`)

func runMetrics(r *effectRun) {
	r.newStream(1)
	r.put(keyed("m", 5)...)
	r.start()
	var base string
	r.until(time.Minute, "the run to say where /metrics listens", func() bool {
		m := servingMetrics.FindStringSubmatch(r.logs())
		if m != nil {
			base = "http://" + m[1]
		}
		return m != nil
	})
	r.until(time.Minute, "5 records processed on /metrics", func() bool {
		code, page := get(r.t, base+"/metrics")
		if code == http.StatusOK {
			r.metricsPage = page
		}
		return strings.Contains(page, `shardline_records_processed_total{`) && strings.Contains(grepLines(page, "shardline_records_processed_total{"), "} 5")
	})
	r.healthz, _ = get(r.t, base+"/healthz")
	r.stop()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func runKPL(r *effectRun) {
	r.newStream(2)
	var users []kpl.UserRecord
	for i := range 10 {
		ehk := "1" // shard 0
		if i%2 == 1 {
			ehk = "340282366920938463463374607431768211000" // shard 1
		}
		users = append(users, kpl.UserRecord{PartitionKey: "k", ExplicitHashKey: ehk, Data: []byte(fmt.Sprint("u-", i))})
	}
	data, err := kpl.Aggregate(users)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.kinesis().PutRecord(context.Background(), &kinesis.PutRecordInput{
		StreamName: aws.String(r.stream), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("1"), Data: data,
	}); err != nil {
		r.t.Fatal(err)
	}
	r.start()
	r.until(time.Minute, "the aggregate read and its records done", func() bool {
		for _, l := range r.leases() {
			if l.Key == "shardId-000000000000" && l.Checkpoint.SubSeq == 9 {
				return true
			}
		}
		return false
	})
	r.stop()
}

func runFanout(r *effectRun) {
	r.newStream(1)
	r.ph["{consumer}"] = "efo-" + r.app
	r.put(keyed("f", 3)...)
	r.start()
	r.until(time.Minute, "f-0..f-2 handled", func() bool { return len(r.delivered("f-")) == 3 })
	r.stop()
}

func runConsumerARN(r *effectRun) {
	r.newStream(1)
	r.ph["{missing}"] = r.streamARN() + "/consumer/nope:1700000000"
	r.start()
	testwait.Until(r.t, time.Minute, "the run to end", func() bool {
		select {
		case r.runErr = <-r.done:
			r.cancel()
			r.cancel = nil
			return true
		default:
		}
		if len(r.jsonLogs("worker started")) > 0 {
			r.t.Fatal("the worker started, with the ARN of a consumer that does not exist")
		}
		return false
	})
}

// streamARN is the ARN of the group's stream.
func (r *effectRun) streamARN() string {
	r.t.Helper()
	out, err := r.kinesis().DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(r.stream)})
	if err != nil {
		r.t.Fatal(err)
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN)
}
