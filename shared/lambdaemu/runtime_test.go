package lambdaemu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shardline/shardline/shared/lambdaemu"
)

// rawRuntimeEnv makes the test binary a hand-written runtime that speaks
// the Runtime API over plain HTTP, to check what aws-lambda-go never does:
// wrong request ids, answers out of order, init errors.
const rawRuntimeEnv = "LAMBDAEMU_RAW_RUNTIME"

// rawRuntime is main for the test binary run as a runtime process.
func rawRuntime(mode string) int {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"
	post := func(path, errType, body string) string {
		req, _ := http.NewRequest(http.MethodPost, api+path, strings.NewReader(body))
		if errType != "" {
			req.Header.Set("Lambda-Runtime-Function-Error-Type", errType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var e struct{ ErrorType, Status string }
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return strings.TrimSpace(fmt.Sprintf("%d %s%s", resp.StatusCode, e.ErrorType, e.Status))
	}
	switch mode {
	case "exit-in-init":
		return 2
	case "initerror":
		post("/init/error", "Raw.InitFailed", `{"errorMessage":"cannot start","errorType":"Raw.InitFailed"}`)
		time.Sleep(time.Hour) // until Lambda ends the sandbox
		return 0
	case "ignore-sigterm":
		signal.Ignore(syscall.SIGTERM)
	}
	later := map[string]string{}
	for {
		resp, err := http.Get(api + "/invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next:", err)
			return 1
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		var event struct{ Step string }
		_ = json.Unmarshal(body, &event)
		switch event.Step {
		case "checks":
			deadline, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
			checks := map[string]string{
				"status":      strconv.Itoa(resp.StatusCode),
				"contentType": resp.Header.Get("Content-Type"),
				"requestId":   id,
				"deadline":    fmt.Sprint(err == nil && deadline > time.Now().UnixMilli()),
				"functionArn": resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"),
				"traceId":     resp.Header.Get("Lambda-Runtime-Trace-Id"),
				"wrongId":     post("/invocation/not-"+id+"/response", "", "{}"),
			}
			b, _ := json.Marshal(checks)
			later["response"] = post("/invocation/"+id+"/response", "", string(b))
			later["again"] = post("/invocation/"+id+"/response", "", "{}")
			later["initAfterReady"] = post("/init/error", "", "{}")
		case "report":
			b, _ := json.Marshal(later)
			post("/invocation/"+id+"/response", "", string(b))
		case "plain-error":
			post("/invocation/"+id+"/error", "Raw.Failure", "plain failure")
		case "json-error":
			post("/invocation/"+id+"/error", "Raw.Header", `{"errorMessage":"structured","errorType":"Raw.Structured","stackTrace":["a.go:1"]}`)
		default:
			post("/invocation/"+id+"/response", "", `"ok"`)
		}
	}
}

// rawFunction runs the test binary as a raw runtime in the given mode.
func rawFunction(t *testing.T, name, mode string) lambdaemu.Function {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return lambdaemu.Function{Name: name, Path: self, Env: []string{rawRuntimeEnv + "=" + mode}}
}

func invokeStep(t *testing.T, c *lambda.Client, name, step string) *lambda.InvokeOutput {
	t.Helper()
	out, err := c.Invoke(t.Context(), &lambda.InvokeInput{
		FunctionName: aws.String(name),
		Payload:      []byte(`{"step":"` + step + `"}`),
	})
	if err != nil {
		t.Fatalf("Invoke %s (%s): %v", name, step, err)
	}
	return out
}

func TestRuntimeAPIProtocol(t *testing.T) {
	s := start(t, rawFunction(t, "raw", "protocol"))
	c := client(s.Endpoint)

	checks := decode[map[string]string](t, invokeStep(t, c, "raw", "checks").Payload)
	rec := s.Invocations("raw")[0]
	want := map[string]string{
		"status":      "200",
		"contentType": "application/json",
		"requestId":   rec.RequestID,
		"deadline":    "true",
		"functionArn": s.ARN("raw"),
		"wrongId":     "400 InvalidRequestID",
	}
	for k, v := range want {
		if checks[k] != v {
			t.Errorf("%s = %q, want %q", k, checks[k], v)
		}
	}
	if !strings.HasPrefix(checks["traceId"], "Root=1-") {
		t.Errorf("trace id %q, want Root=1-...", checks["traceId"])
	}

	later := decode[map[string]string](t, invokeStep(t, c, "raw", "report").Payload)
	want = map[string]string{
		"response":       "202 OK",
		"again":          "403 InvalidStateTransition",
		"initAfterReady": "403 InvalidStateTransition",
	}
	for k, v := range want {
		if later[k] != v {
			t.Errorf("%s = %q, want %q", k, later[k], v)
		}
	}

	out := invokeStep(t, c, "raw", "plain-error")
	if got, want := string(out.Payload), `{"errorType":"Raw.Failure","errorMessage":"plain failure"}`; got != want || aws.ToString(out.FunctionError) != "Unhandled" {
		t.Errorf("plain error: %s (%q), want %s (Unhandled)", got, aws.ToString(out.FunctionError), want)
	}
	out = invokeStep(t, c, "raw", "json-error")
	if got, want := string(out.Payload), `{"errorMessage":"structured","errorType":"Raw.Structured","stackTrace":["a.go:1"]}`; got != want {
		t.Errorf("JSON error: %s, want it verbatim: %s", got, want)
	}
	recs := s.Invocations("raw")
	if got := recs[len(recs)-1].ErrorType; got != "Raw.Structured" {
		t.Errorf("record error type %q, want Raw.Structured", got)
	}
	if n := len(s.Processes("raw")); n != 1 {
		t.Errorf("%d processes, want 1 throughout", n)
	}
}

func TestInitError(t *testing.T) {
	s := start(t, rawFunction(t, "initfail", "initerror"))
	out := invokeStep(t, client(s.Endpoint), "initfail", "")
	e := decode[errorPayload](t, out.Payload)
	if aws.ToString(out.FunctionError) != "Unhandled" || e.ErrorType != "Raw.InitFailed" || e.ErrorMessage != "cannot start" {
		t.Errorf("got %q %s, want Unhandled with the init error", aws.ToString(out.FunctionError), out.Payload)
	}
	rec := s.Invocations("initfail")[0]
	if rec.Status != lambdaemu.StatusError || !rec.Start.IsZero() {
		t.Errorf("record %+v, want error, never started", rec)
	}
	if alive(rec.PID) {
		t.Errorf("process %d still exists after its init error", rec.PID)
	}
}

func TestExitDuringInit(t *testing.T) {
	s := start(t, rawFunction(t, "noinit", "exit-in-init"))
	out := invokeStep(t, client(s.Endpoint), "noinit", "")
	e := decode[errorPayload](t, out.Payload)
	rec := s.Invocations("noinit")[0]
	if e.ErrorType != "Runtime.ExitError" || e.ErrorMessage != "RequestId: "+rec.RequestID+" Error: Runtime exited with error: exit status 2" {
		t.Errorf("got %s, want Runtime.ExitError, exit status 2", out.Payload)
	}
	if rec.Status != lambdaemu.StatusExited || !rec.ColdStart || rec.PID == 0 {
		t.Errorf("record %+v, want exited, cold start, with its pid", rec)
	}
}

func TestInvalidEntrypoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(path, []byte("not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := start(t, lambdaemu.Function{Name: "garbage", Path: path})
	out := invokeStep(t, client(s.Endpoint), "garbage", "")
	e := decode[errorPayload](t, out.Payload)
	if e.ErrorType != "Runtime.InvalidEntrypoint" || !strings.Contains(e.ErrorMessage, "exec format error") {
		t.Errorf("got %s, want Runtime.InvalidEntrypoint: exec format error", out.Payload)
	}
	if n := len(s.Processes("garbage")); n != 0 {
		t.Errorf("%d processes recorded, want none", n)
	}
}

func TestCloseKillsWhatIgnoresSIGTERM(t *testing.T) {
	s, err := lambdaemu.Start(context.Background(), rawFunction(t, "stubborn", "ignore-sigterm"))
	if err != nil {
		t.Fatal(err)
	}
	invokeStep(t, client(s.Endpoint), "stubborn", "")
	pid := s.Processes("stubborn")[0].PID
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("process %d still exists", pid)
	}
	if p := s.Processes("stubborn")[0]; p.ExitStatus != "signal: killed" {
		t.Errorf("exit status %q, want signal: killed", p.ExitStatus)
	}
}
