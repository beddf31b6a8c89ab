package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"
)

// TestNoCredentialsInLogs: a poller with static keys and a session token,
// at -log-level debug (the SDK logging its retries: DynamoDB answers the
// first two lease writes with a 500), prints its records and logs GetRecords calls, handler
// calls and the SDK's retries as JSON lines, and not one line of stdout
// or stderr holds the key id, the secret or the token.
func TestNoCredentialsInLogs(t *testing.T) {
	const keyID, secret, token = "AKIAIOSFODNN7SHARDLN", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSHARDLINEKEY", "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKENshardline0123456789abcdef"
	e := newEnv(t, 2)
	e.put(t, 20)
	target, err := url.Parse(e.dynamoEP)
	if err != nil {
		t.Fatal(err)
	}
	var faults atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	ddb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A retryable fault, twice: on lease writes, which the SDK tries
		// up to 10 times.
		if r.Header.Get("X-Amz-Target") == "DynamoDB_20120810.UpdateItem" && faults.Add(1) <= 2 {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"try again"}`))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ddb.Close)
	p := e.startPollerEnv(t, []string{"AWS_ACCESS_KEY_ID=" + keyID, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_SESSION_TOKEN=" + token,
		"SHARDLINE_DYNAMODB_ENDPOINT=" + ddb.URL},
		"run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-log-level", "debug")
	testwait.Until(t, time.Minute, "20 records, GetRecords and handler call lines", func() bool {
		errOut := p.errOut.String()
		return countLines(p.out.String()) >= 20 && strings.Contains(errOut, `"msg":"GetRecords"`) && strings.Contains(errOut, `"msg":"handler call"`)
	})
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	stderr := p.errOut.String()
	var retries int
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("stderr line is not JSON: %q", l)
			continue
		}
		if m["component"] == "aws-sdk" && strings.HasPrefix(m["msg"].(string), "retrying request DynamoDB/UpdateItem") && m["level"] == "DEBUG" {
			retries++
		}
	}
	if retries < 2 {
		t.Errorf("%d DEBUG lines of the SDK's retries, want 2 or more", retries)
	}
	for name, out := range map[string]string{"stdout": p.out.String(), "stderr": stderr} {
		for i, l := range strings.Split(out, "\n") {
			for _, secretPart := range []string{keyID, secret, token} {
				if strings.Contains(l, secretPart) {
					t.Errorf("%s line %d holds a credential: %q", name, i+1, l)
				}
			}
		}
	}
}
