package awsconf

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// TestSDKLogsThroughSlog: with a Logger, the SDK's retries are DEBUG lines
// of that logger (component=aws-sdk) when LogRetries is set, and nothing
// at all when it is not; no line holds the credentials.
func TestSDKLogsThroughSlog(t *testing.T) {
	const keyID, secret, token = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789"
	t.Setenv("AWS_ACCESS_KEY_ID", keyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", token)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	for _, retries := range []bool{true, false} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			if calls.Add(1) <= 2 { // a retryable fault, twice
				w.WriteHeader(500)
				_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}`))
				return
			}
			_, _ = w.Write([]byte(`{"TableNames":[]}`))
		}))
		var out bytes.Buffer
		log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c, err := Load(context.Background(), Options{Region: "us-east-1", DynamoDBEndpoint: srv.URL, Logger: log, LogRetries: retries, MaxAttempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.DynamoDB.ListTables(context.Background(), &dynamodb.ListTablesInput{Limit: aws.Int32(1)}); err != nil {
			t.Fatalf("ListTables after two faults: %v", err)
		}
		srv.Close()
		got := out.String()
		lines := strings.Count(got, "retrying request DynamoDB/ListTables")
		switch {
		case retries && (lines != 2 || strings.Count(got, "level=DEBUG msg=\"retrying request DynamoDB/ListTables, attempt") != 2 || !strings.Contains(got, "component="+SDKComponent)):
			t.Errorf("LogRetries: want 2 DEBUG retry lines with component=%s, got:\n%s", SDKComponent, got)
		case !retries && got != "":
			t.Errorf("without LogRetries the SDK logged:\n%s", got)
		}
		for _, s := range []string{keyID, secret, token} {
			if strings.Contains(got, s) {
				t.Errorf("the SDK's lines hold a credential %q:\n%s", s, got)
			}
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"retrying request Kinesis/GetRecords, attempt 2", "retrying request Kinesis/GetRecords, attempt 2"},
		{"POST / HTTP/1.1\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=abc123\nX-Amz-Security-Token: FwoGZXIv\nHost: x",
			"POST / HTTP/1.1\nAuthorization: [redacted]\nX-Amz-Security-Token: [redacted]\nHost: x"},
		{"https://b.s3.amazonaws.com/k?X-Amz-Credential=ASIAXXXXXXXXXXXXXXXX%2F2026&X-Amz-Security-Token=FwoG&X-Amz-Signature=ff",
			"https://b.s3.amazonaws.com/k?X-Amz-Credential=[redacted]&X-Amz-Security-Token=[redacted]&X-Amz-Signature=[redacted]"},
		{`{"SecretAccessKey":"wJalr/K7","SessionToken":"FwoG","AccessKeyId":"ASIAIOSFODNN7EXAMPLE"}`,
			`{"SecretAccessKey":"[redacted]","SessionToken":"[redacted]","AccessKeyId":"[redacted]"}`},
		{"aws_secret_access_key = wJalr/K7", "aws_secret_access_key = [redacted]"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}
