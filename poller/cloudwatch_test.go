package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/telemetry/cloudwatch"
	"github.com/shardline/shardline/shared/testwait"
)

// TestRunMetricsCloudWatch: `poller run -metrics-cloudwatch` sends its
// metrics with PutMetricData to the endpoint of AWS_ENDPOINT_URL_CLOUDWATCH
// (moto_server), in the app's namespace; the last send after SIGINT
// completes the count: RecordsProcessed adds up to the records printed.
func TestRunMetricsCloudWatch(t *testing.T) {
	e := newEnv(t, 1)
	moto := standintest.Moto(t)
	e.put(t, 20)
	start := time.Now().Add(-time.Minute)
	p := e.startPollerEnv(t, []string{"AWS_ENDPOINT_URL_CLOUDWATCH=" + moto.Endpoint},
		"run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-worker-id", "cw-worker", "-metrics-cloudwatch")
	testwait.Until(t, time.Minute, "20 printed records", func() bool { return countLines(p.out.String()) >= 20 })
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("poller exit code %d after SIGINT", code)
	}
	cfg := standin.Config()
	cfg.BaseEndpoint = aws.String(moto.Endpoint)
	out, err := cloudwatch.NewClient(cfg).GetMetricData(context.Background(), &cw.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []types.MetricDataQuery{{Id: aws.String("rp"), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String(e.app), MetricName: aws.String("RecordsProcessed"), Dimensions: []types.Dimension{
				{Name: aws.String("Operation"), Value: aws.String("ProcessTask")},
				{Name: aws.String("ShardId"), Value: aws.String("shardId-000000000000")},
				{Name: aws.String("WorkerIdentifier"), Value: aws.String("cw-worker")},
			}},
			Period: aws.Int32(300), Stat: aws.String("Sum")}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := out.MetricDataResults[0].Values; len(v) != 1 || v[0] != 20 {
		t.Fatalf("RecordsProcessed in CloudWatch: %v, want a sum of 20; poller stderr:\n%s", v, tail(p.errOut.String(), 3000))
	}
}
