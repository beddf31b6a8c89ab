package awserr

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/testwait"
)

func kinesisAt(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:       awshttp.NewBuildableClient(),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 1,
	})
}

func describe(c *kinesis.Client) error {
	_, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("words")})
	return err
}

// server answers every request with status and body.
func server(t *testing.T, status int, body string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// TestExplainSDKErrors: real SDK errors, from real clients against real
// (local) endpoints, come out as one line that says what happened.
func TestExplainSDKErrors(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	refused := testwait.RefusedEndpoint(t)
	html := server(t, 200, "<html>hello</html>")
	notFound := server(t, 404, "404 page not found\n")
	// What DynamoDB Local answers to a Kinesis call.
	otherService := server(t, 400, `{"__type":"com.amazon.coral.service#InvalidAction","Message":"The action or operation requested is invalid."}`)
	missing := server(t, 400, `{"__type":"ResourceNotFoundException","message":"Stream words under account 000000000000 not found."}`)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused", describe(kinesisAt(refused)), "endpoint " + refused + " does not answer (connect: connection refused)"},
		{"plain web server", describe(kinesisAt(html)), "endpoint " + html + " does not answer as Kinesis: its answer to DescribeStreamSummary (HTTP 200) is not a Kinesis answer"},
		{"404", describe(kinesisAt(notFound)), "endpoint " + notFound + " does not answer as Kinesis: its answer to DescribeStreamSummary (HTTP 404)"},
		{"another service", describe(kinesisAt(otherService)), "endpoint " + otherService + " does not answer as Kinesis: it does not know DescribeStreamSummary (InvalidAction)"},
		{"missing stream", describe(kinesisAt(missing)), "does not exist: Stream words under account 000000000000 not found."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil {
				t.Fatal("the call succeeded")
			}
			got := Explain(tt.err)
			if !strings.Contains(got.Error(), tt.want) {
				t.Errorf("Explain = %q, want it to contain %q", got, tt.want)
			}
			if strings.Contains(got.Error(), "\n") || strings.Contains(got.Error(), "operation error") {
				t.Errorf("Explain = %q: want one line without the SDK's wrapping", got)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("Explain(err) does not wrap err")
			}
		})
	}
	var nf *types.ResourceNotFoundException
	if !errors.As(Explain(tests[4].err), &nf) {
		t.Error("errors.As does not find the SDK's ResourceNotFoundException under the explanation")
	}
}

// TestExplainNoCredentials: a call with nothing in the default credential
// chain names the ways to give credentials.
func TestExplainNoCredentials(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithHTTPClient(awshttp.NewBuildableClient()))
	if err != nil {
		t.Fatal(err)
	}
	c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(testwait.RefusedEndpoint(t)) })
	_, err = c.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	if err == nil {
		t.Fatal("ListTables without credentials succeeded")
	}
	got := Explain(err).Error()
	for _, want := range []string{"no AWS credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "role"} {
		if !strings.Contains(got, want) {
			t.Errorf("Explain = %q, want it to name %q", got, want)
		}
	}
}

func TestExplainOthers(t *testing.T) {
	if Explain(nil) != nil {
		t.Error("Explain(nil) != nil")
	}
	plain := errors.New("lease lost")
	if Explain(plain) != plain {
		t.Error("a non-SDK error is not returned as it is")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := kinesisAt(testwait.RefusedEndpoint(t)).ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if !errors.Is(Explain(err), context.Canceled) {
		t.Errorf("Explain(%v) hides context.Canceled", err)
	}
	once := Explain(describe(kinesisAt(testwait.RefusedEndpoint(t))))
	if twice := Explain(once); twice != once {
		t.Errorf("Explain of an explained error = %q, want it unchanged", twice)
	}
}
