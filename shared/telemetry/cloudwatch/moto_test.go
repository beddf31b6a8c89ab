package cloudwatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/standin/standintest"
)

func TestMain(m *testing.M) { standintest.Main(m) }

// TestPublishToMoto: the publisher, with the client NewClient builds from
// awsconf (endpoint from AWS_ENDPOINT_URL_CLOUDWATCH), sends a tick's and
// Stop's deltas to moto_server; ListMetrics and GetMetricData read back the
// names, the dimensions and the values.
func TestPublishToMoto(t *testing.T) {
	moto := standintest.Moto(t)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDWATCH", moto.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	clients, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	client := NewClient(awsconf.CloudWatchConfig(clients, awsconf.Options{}))
	ns := standintest.UniqueName(t)
	start := time.Now().Add(-time.Minute)

	s0, s1, s2 := worker(2, 0), worker(2, 30, 4*time.Millisecond, 20*time.Millisecond), worker(2, 50, 4*time.Millisecond, 20*time.Millisecond, 300*time.Millisecond)
	s2.CurrentLeases = 1
	p, ticks, sent := started(t, Config{Client: client, Snapshot: snapshots(s0, s1, s2), Namespace: ns, Dimensions: metrics.DefaultDimensions})
	ticks <- time.Now()
	if err := <-sent; err != nil {
		t.Fatalf("send to moto at the tick: %v", err)
	}
	p.Stop()
	if err := <-sent; err != nil {
		t.Fatalf("last send to moto, at Stop: %v", err)
	}

	ctx := context.Background()
	var listed []string
	pages := cw.NewListMetricsPaginator(client, &cw.ListMetricsInput{Namespace: aws.String(ns)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Metrics {
			var dims []string
			for _, d := range m.Dimensions {
				dims = append(dims, aws.ToString(d.Name)+"="+aws.ToString(d.Value))
			}
			slices.Sort(dims)
			listed = append(listed, aws.ToString(m.MetricName)+" "+strings.Join(dims, ","))
		}
	}
	for _, want := range []string{
		"RecordsProcessed Operation=ProcessTask,ShardId=shardId-000000000001,WorkerIdentifier=worker-1",
		"RecordProcessor.processRecords.Time Operation=ProcessTask,ShardId=shardId-000000000000,WorkerIdentifier=worker-1",
		"IteratorAge Operation=EventSourceMapping,ShardId=shardId-000000000000,WorkerIdentifier=worker-1",
		"CurrentLeases Operation=Worker,WorkerIdentifier=worker-1",
	} {
		if !slices.Contains(listed, want) {
			t.Errorf("ListMetrics lacks %q (has %d metrics)", want, len(listed))
		}
	}

	shard := func(op, id string) []types.Dimension {
		return []types.Dimension{
			{Name: aws.String(metrics.Operation), Value: aws.String(op)},
			{Name: aws.String(metrics.ShardID), Value: aws.String(id)},
			{Name: aws.String(metrics.WorkerIdentifier), Value: aws.String("worker-1")},
		}
	}
	worker := []types.Dimension{{Name: aws.String(metrics.Operation), Value: aws.String("Worker")}, {Name: aws.String(metrics.WorkerIdentifier), Value: aws.String("worker-1")}}
	queries := []struct {
		name, stat string
		dims       []types.Dimension
		want       float64
	}{
		{"RecordsProcessed", "Sum", shard("ProcessTask", "shardId-000000000000"), 50}, // 30 at the tick, 20 at Stop
		{"RecordsProcessed", "SampleCount", shard("ProcessTask", "shardId-000000000000"), 2},
		{"RecordProcessor.processRecords.Time", "SampleCount", shard("ProcessTask", "shardId-000000000001"), 3},
		{"RecordProcessor.processRecords.Time", "Sum", shard("ProcessTask", "shardId-000000000001"), 324},
		{"RecordProcessor.processRecords.Time", "Maximum", shard("ProcessTask", "shardId-000000000001"), 300},
		{"RecordProcessor.processRecords.Time", "Minimum", shard("ProcessTask", "shardId-000000000001"), 2}, // the 2–5ms bucket
		{"IteratorAge", "Maximum", shard("EventSourceMapping", "shardId-000000000000"), 100},
		{"CurrentLeases", "Minimum", worker, 1},
		{"CurrentLeases", "Maximum", worker, 2},
	}
	in := &cw.GetMetricDataInput{StartTime: aws.Time(start), EndTime: aws.Time(time.Now().Add(time.Minute))}
	for i, q := range queries {
		in.MetricDataQueries = append(in.MetricDataQueries, types.MetricDataQuery{
			Id: aws.String(fmt.Sprint("q", i)),
			MetricStat: &types.MetricStat{Metric: &types.Metric{Namespace: aws.String(ns), MetricName: aws.String(q.name), Dimensions: q.dims},
				Period: aws.Int32(300), Stat: aws.String(q.stat)},
		})
	}
	out, err := client.GetMetricData(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]float64{}
	for _, r := range out.MetricDataResults {
		got[aws.ToString(r.Id)] = r.Values
	}
	for i, q := range queries {
		if v := got[fmt.Sprint("q", i)]; len(v) != 1 || v[0] != q.want {
			t.Errorf("%s %s %v = %v, want %v", q.name, q.stat, dimString(q.dims), v, q.want)
		}
	}
}

func dimString(ds []types.Dimension) string {
	var out []string
	for _, d := range ds {
		out = append(out, aws.ToString(d.Value))
	}
	return strings.Join(out, ",")
}
