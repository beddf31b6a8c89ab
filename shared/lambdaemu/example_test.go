package lambdaemu_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shardline/shardline/shared/lambdaemu"
)

// A test builds its function (go build -tags lambda.norpc -o
// dir/bootstrap ./functions/handler), serves it and calls it with the real
// SDK client.
func Example() {
	ctx := context.Background()
	s, err := lambdaemu.Start(ctx, lambdaemu.Function{
		Name:    "handler",
		Path:    "/tmp/build/handler/bootstrap",
		Env:     []string{"SHARDLINE_LOG_LEVEL=debug"}, // Shardline's settings carry the SHARDLINE_ prefix
		Timeout: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // stops every process by PID

	c := lambda.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		HTTPClient:  awshttp.NewBuildableClient(), // AWS_CA_BUNDLE is set here
	}, func(o *lambda.Options) { o.BaseEndpoint = aws.String(s.Endpoint) })

	out, err := c.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String("handler"), // or s.ARN("handler")
		Payload:      []byte(`{"Records":[]}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	if out.FunctionError != nil { // "Unhandled": the payload is {errorType, errorMessage}
		log.Fatalf("%s: %s", *out.FunctionError, out.Payload)
	}
	fmt.Printf("%s\n", out.Payload)
	for _, inv := range s.Invocations("handler") {
		fmt.Println(inv.RequestID, inv.Status, inv.ColdStart, inv.End.Sub(inv.Start))
	}
}
