package lambdaemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Build compiles the main package pkg (an import path or ./dir) as Lambda's
// provided.al2023 runtime wants it: a static bootstrap built with
// -tags lambda.norpc, for this machine's architecture, in dir. It returns
// the binary's path.
func Build(ctx context.Context, dir, pkg string) (string, error) {
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// Client returns a Lambda SDK client for the emulator at endpoint (dummy
// credentials, us-east-1, no retries so a failure shows at once).
func Client(endpoint string) *lambda.Client {
	return lambda.NewFromConfig(aws.Config{
		Region:      DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
}
