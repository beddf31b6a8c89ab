package standin_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/shardline/shardline/shared/standin"
)

// TestStartMotoHealthStop starts a moto_server of its own: it answers SQS,
// SNS and S3 on one loopback port, is known by IsStandin, and Stop ends it
// by PID.
func TestStartMotoHealthStop(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped under -short: needs moto_server")
	}
	ctx := context.Background()
	began := time.Now()
	m, err := standin.StartMoto(ctx, standin.MotoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	t.Logf("%v up in %v, %s resident", m, time.Since(began).Round(time.Millisecond), rss(m.PID))
	if name, ok := standin.IsStandin(m.PID); !ok || name != standin.MotoName {
		t.Errorf("IsStandin(moto pid) = %q, %v", name, ok)
	}
	q, err := standin.SQSClient(m.Endpoint).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q")})
	if err != nil {
		t.Fatalf("SQS: %v", err)
	}
	t.Logf("queue URL %s", aws.ToString(q.QueueUrl))
	topic, err := standin.SNSClient(m.Endpoint).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("t")})
	if err != nil {
		t.Fatalf("SNS: %v", err)
	}
	if want := "arn:aws:sns:us-east-1:" + standin.MotoAccountID + ":t"; aws.ToString(topic.TopicArn) != want {
		t.Errorf("topic ARN %s, want %s", aws.ToString(topic.TopicArn), want)
	}
	if _, err := standin.S3Client(m.Endpoint).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bucket")}); err != nil {
		t.Fatalf("S3: %v", err)
	}
	for _, l := range listeners(t, m.Port) {
		host, _, _ := net.SplitHostPort(l)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			t.Errorf("moto listens on %s, want loopback only", l)
		}
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if !gone(m.PID) {
		t.Errorf("moto pid %d still exists after Stop", m.PID)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.Port), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still accepts connections after Stop", m.Port)
	}
}

func TestMotoEnv(t *testing.T) {
	got := strings.Join(standin.MotoEnv("http://127.0.0.1:9"), " ")
	for _, s := range []string{"SQS", "SNS", "S3"} {
		if !strings.Contains(got, "AWS_ENDPOINT_URL_"+s+"=http://127.0.0.1:9") {
			t.Errorf("MotoEnv lacks AWS_ENDPOINT_URL_%s: %s", s, got)
		}
	}
}
