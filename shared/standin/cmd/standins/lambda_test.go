package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/standin/samtemplate"
	"github.com/shardline/shardline/shared/testwait"
)

const repoRoot = "../../../../"

// TestMain keeps the record of the last up out of the user's cache
// directory: every test here, and every command they run, uses a file of
// their own.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "standins-test")
	if err != nil {
		panic(err)
	}
	os.Setenv(LastUpEnv, filepath.Join(dir, "last-up"))
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func lambdaArgs() []string {
	return []string{"-template", repoRoot + "template.yaml", "-env-vars", repoRoot + "events/env.json"}
}

// TestInvoke: `make invoke EVENT=events/kinesis.json` (no FN: the
// template has one function) builds the function as sam build does
// (BuildMethod makefile: functions/Makefile's build-HandlerFunction),
// prints the answer on stdout and the function's log on stderr.
func TestInvoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and runs the emulator")
	}
	var stdout, stderr bytes.Buffer
	args := append(lambdaArgs(), "-event", repoRoot+"events/kinesis.json")
	if err := run(context.Background(), append([]string{"invoke"}, args...), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != `{"batchItemFailures":null}` {
		t.Errorf("stdout %q, want the function's answer", got)
	}
	for _, w := range []string{"building HandlerFunction: make --makefile", "build-HandlerFunction (BuildMethod makefile", "word counts: 8 words, 5 distinct", "REPORT RequestId", "Memory Size: 256 MB"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "left unset, not resolvable") {
		t.Errorf("warned about variables of a template whose variables all resolve:\n%s", stderr.String())
	}
}

// TestInvokeUsage: a usage error names what is wrong and what is allowed.
func TestInvokeUsage(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"no event":        {nil, "-event is required"},
		"unknown fn":      {[]string{"-fn", "Nope", "-event", repoRoot + "events/kinesis.json"}, `no function "Nope"`},
		"missing event":   {[]string{"-event", "/nonexistent.json"}, "/nonexistent.json"},
		"no template":     {[]string{"-template", "/nonexistent.yaml", "-event", repoRoot + "events/kinesis.json"}, "-template /nonexistent.yaml: no such file"},
		"bad parameters":  {[]string{"-parameter-overrides", "StreamName", "-event", repoRoot + "events/kinesis.json"}, "want Key=Value pairs"},
		"unknown param":   {[]string{"-parameter-overrides", "Nope=1", "-event", repoRoot + "events/kinesis.json"}, "no parameter Nope"},
		"extra arguments": {[]string{"-event", repoRoot + "events/kinesis.json", "more"}, "no arguments"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"invoke", "-template", repoRoot + "template.yaml"}, c.args...)
		err := run(ctx, args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

func TestParseParams(t *testing.T) {
	got, err := parseParams(`StreamName=words AppName="my app" Empty= Q='x y'`)
	want := map[string]string{"StreamName": "words", "AppName": "my app", "Empty": "", "Q": "x y"}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseParams = %v, %v; want %v", got, err, want)
	}
}

// TestAnswerError: the emulator's answers that are errors (a returned
// error is 200 with errorType, a timeout plain text, a crash 502).
func TestAnswerError(t *testing.T) {
	var fe *functionError
	if err := answerError("F", 200, []byte(`{"errorMessage":"boom","errorType":"refusedError"}`)); !errors.As(err, &fe) || fe.errorType != "refusedError" || !strings.Contains(err.Error(), "errorType refusedError: boom") {
		t.Errorf("returned error: %v", err)
	}
	if err := answerError("F", 200, []byte("Task timed out after 3.00 seconds")); !errors.As(err, &fe) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("timeout: %v", err)
	}
	if err := answerError("F", 502, []byte(`{"errorType":"Runtime.ExitError","errorMessage":"exit status 2"}`)); !errors.As(err, &fe) || fe.errorType != "Runtime.ExitError" {
		t.Errorf("crash: %v", err)
	}
	if err := answerError("F", 500, []byte("no")); err == nil || errors.As(err, &fe) {
		t.Errorf("HTTP 500: %v", err)
	}
	for _, ok := range []string{`{"batchItemFailures":null}`, `null`, `"errorType"`, `{"errorMessage":"only a message is a result"}`} {
		if err := answerError("F", 200, []byte(ok)); err != nil {
			t.Errorf("%s: %v, want a result", ok, err)
		}
	}
}

// TestStartLambdaRouter: the router behind `make start-lambda` serves a
// function by its logical id, its FunctionName and an ARN through the SDK,
// runs concurrent invocations on emulators of their own, and answers 404
// for an unknown name.
func TestStartLambdaRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the functions and runs the emulator")
	}
	ctx := context.Background()
	tpl, err := samtemplate.Read(repoRoot+"template.yaml", samtemplate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fn := tpl.Function("HandlerFunction")
	if fn == nil || fn.FunctionName == "" {
		t.Fatalf("no HandlerFunction with a FunctionName in the template: %v", tpl.Names())
	}
	bin, err := buildFunction(ctx, tpl, fn, t.TempDir(), &testwait.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	p := &pool{name: fn.LogicalID, env: environ(fn.Env), timeout: 10 * time.Second, memoryMB: fn.MemoryMB, bin: bin}
	r := &router{fns: map[string]*pool{fn.LogicalID: p, fn.FunctionName: p}, log: &testwait.Buffer{}}
	t.Cleanup(r.close)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	client := lambdaemu.Client(srv.URL)
	ev, err := os.ReadFile(repoRoot + "events/kinesis.json")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, name := range []string{"HandlerFunction", fn.FunctionName, "arn:aws:lambda:us-east-1:123456789012:function:HandlerFunction"} {
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
	if n := len(p.all); n < 1 || n > 3 {
		t.Errorf("%d emulators for 3 concurrent invocations, want 1 to 3", n)
	}
	t.Logf("%d emulators served 3 concurrent invocations", len(p.all))
	if _, err := client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("Nope"), Payload: ev}); err == nil || !strings.Contains(err.Error(), "ResourceNotFound") {
		t.Errorf("unknown function: %v, want ResourceNotFoundException", err)
	}
}

// TestRouterLimits (issue 17): the router refuses a payload over Lambda's
// 6 MB limit with 413 before reading past it, and past -max-concurrency
// busy emulators answers 429 (a throttle the poller backs off from)
// instead of starting another.
func TestRouterLimits(t *testing.T) {
	p := &pool{name: "HandlerFunction", max: 1, all: []*standin.Server{{}}} // one emulator, busy
	r := &router{fns: map[string]*pool{"HandlerFunction": p}, log: &testwait.Buffer{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	post := func(body io.Reader) (*http.Response, string) {
		resp, err := http.Post(srv.URL+"/2015-03-31/functions/HandlerFunction/invocations", "application/json", body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post(strings.NewReader(strings.Repeat("x", MaxPayload+1)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("X-Amzn-ErrorType") != "RequestEntityTooLargeException" {
		t.Errorf("7 MB payload: HTTP %d %s %q, want 413 RequestEntityTooLargeException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
	resp, body = post(strings.NewReader(`{}`))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("X-Amzn-ErrorType") != "TooManyRequestsException" || !strings.Contains(body, "-max-concurrency") {
		t.Errorf("all emulators busy: HTTP %d %s %q, want 429 TooManyRequestsException naming -max-concurrency", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
	}
	if len(p.all) != 1 {
		t.Errorf("%d emulators, want the 1 allowed", len(p.all))
	}
}
