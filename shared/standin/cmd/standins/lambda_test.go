package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/testwait"
)

const repoRoot = "../../../../"

// TestReadTemplate: the functions' variables come from template.yaml with
// !Ref and simple !If resolved on the parameters' defaults.
func TestReadTemplate(t *testing.T) {
	fns, err := readTemplate(repoRoot + "template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, w := fns["PollerFunction"], fns["WordCountFunction"]
	if p == nil || w == nil {
		t.Fatalf("functions %v: want PollerFunction and WordCountFunction", names(fns))
	}
	for k, want := range map[string]string{"SHARDLINE_APP_NAME": "shardline-wordcount", "SHARDLINE_HANDLER": "wordcount", "SHARDLINE_BATCH_SIZE": "100", "SHARDLINE_KINESIS_ENDPOINT": ""} {
		if got, ok := p.Env[k]; !ok || got != want {
			t.Errorf("PollerFunction %s = %q (set %v), want %q", k, got, ok, want)
		}
	}
	if p.Timeout != 60 || p.MemoryMB != 256 || w.Timeout != 30 || w.Env["SHARDLINE_CHECKPOINT_INTERVAL"] != "1s" {
		t.Errorf("poller timeout %d memory %d, wordcount timeout %d env %v", p.Timeout, p.MemoryMB, w.Timeout, w.Env)
	}
}

func lambdaArgs() []string {
	return []string{"-template", repoRoot + "template.yaml", "-env-vars", repoRoot + "events/env.json"}
}

// TestInvoke: `make invoke FN=WordCountFunction EVENT=events/kinesis.json`
// prints the answer on stdout and the function's log on stderr.
func TestInvoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and runs the emulator")
	}
	var stdout, stderr bytes.Buffer
	args := append(lambdaArgs(), "-fn", "WordCountFunction", "-event", repoRoot+"events/kinesis.json")
	if err := run(context.Background(), append([]string{"invoke"}, args...), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != `{"batchItemFailures":null}` {
		t.Errorf("stdout %q, want the function's answer", got)
	}
	for _, w := range []string{"word counts: 8 words, 5 distinct", "REPORT RequestId", "Memory Size: 256 MB"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
		}
	}
}

// TestStartLambdaRouter: the router behind `make start-lambda` serves a
// function by its logical id (name or ARN) through the SDK, runs
// concurrent invocations on emulators of their own, and answers 404 for
// an unknown name.
func TestStartLambdaRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the functions and runs the emulator")
	}
	ctx := context.Background()
	lf := lambdaFlags{template: repoRoot + "template.yaml", envVars: repoRoot + "events/env.json"}
	var warn bytes.Buffer
	fns, err := lf.functions(t.TempDir(), &warn)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := buildFunction(ctx, repoRoot, t.TempDir(), "WordCountFunction")
	if err != nil {
		t.Fatal(err)
	}
	r := &router{fns: map[string]*pool{"WordCountFunction": {fn: fns["WordCountFunction"], bin: bin}}, log: &testwait.Buffer{}}
	t.Cleanup(r.close)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	client := lambdaemu.Client(srv.URL)
	ev := []byte(`{"Records":[]}`)
	var wg sync.WaitGroup
	for i := range 3 {
		name := "WordCountFunction"
		if i == 2 {
			name = "arn:aws:lambda:us-east-1:123456789012:function:WordCountFunction"
		}
		wg.Go(func() {
			out, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: ev})
			if err != nil {
				t.Errorf("invoke %s: %v", name, err)
				return
			}
			var a map[string]any
			if err := json.Unmarshal(out.Payload, &a); err != nil || a["errorType"] != nil {
				t.Errorf("invoke %s: answer %s", name, out.Payload)
			}
		})
	}
	wg.Wait()
	p := r.fns["WordCountFunction"]
	if n := len(p.all); n < 1 || n > 3 {
		t.Errorf("%d emulators for 3 concurrent invocations, want 1 to 3", n)
	}
	t.Logf("%d emulators served 3 concurrent invocations", len(p.all))
	if _, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("Nope"), Payload: ev}); err == nil || !strings.Contains(err.Error(), "ResourceNotFound") {
		t.Errorf("unknown function: %v, want ResourceNotFoundException", err)
	}
}
