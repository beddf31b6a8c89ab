package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/testwait"
)

// TestWordCountUnderRIE: the built bootstrap under AWS's runtime interface
// emulator (what runs inside `sam local invoke`) answers every events/*.json
// file: each Kinesis file with success, no failures and the counts in its
// log (de-aggregating the KPL file itself), any other event with an answer.
func TestWordCountUnderRIE(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function and runs the emulator")
	}
	ctx := context.Background()
	bin, err := lambdaemu.Build(ctx, t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../../events/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no events: %v", err)
	}
	want := map[string][]string{ // lines of the printed counts
		"kinesis.json":            {"word counts: 8 words, 5 distinct, 1 batches", "3 3", "9 2"},
		"kinesis-aggregated.json": aggregatedWant(t),
	}
	for _, f := range files {
		name := filepath.Base(f)
		if name == "env.json" {
			continue // environment overrides, not an event
		}
		t.Run(name, func(t *testing.T) {
			// One emulator per file: the counts are printed at most once
			// per SHARDLINE_CHECKPOINT_INTERVAL per process.
			out := &testwait.Buffer{}
			rie, err := standin.StartRIE(ctx, standin.RIEConfig{Bootstrap: bin, Name: "HandlerFunction", Timeout: 5 * time.Second, Log: out})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rie.Stop() })
			ev, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			status, body := rieInvoke(t, rie.Endpoint, ev)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d %s\nlog:\n%s", status, body, out.String())
			}
			var answer struct {
				ErrorType         string            `json:"errorType"`
				BatchItemFailures []json.RawMessage `json:"batchItemFailures"`
			}
			if err := json.Unmarshal(body, &answer); err != nil && strings.TrimSpace(string(body)) != "null" {
				t.Fatalf("answer %q: %v", body, err)
			}
			if _, isKinesis := want[name]; !isKinesis {
				// Not a Kinesis event: whatever the function makes of it,
				// it answers (an error is 200 with errorType, no header).
				t.Logf("%s answered %s", name, body)
				return
			}
			if answer.ErrorType != "" || len(answer.BatchItemFailures) > 0 {
				t.Fatalf("answer %s: want success with no failures\nlog:\n%s", body, out.String())
			}
			// The emulator writes its REPORT line after it has answered.
			testwait.Until(t, 5*time.Second, "the counts and the REPORT line in the log", func() bool {
				return strings.Contains(out.String(), want[name][0]) && strings.Contains(out.String(), "REPORT RequestId")
			})
			for _, w := range want[name] {
				if !strings.Contains(out.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "\xf3\x89\x9a\xc2") {
				t.Error("a KPL aggregate was counted as words")
			}
			if !strings.Contains(out.String(), "REPORT RequestId") {
				t.Errorf("no REPORT line in the log:\n%s", out.String())
			}
		})
	}
}

// rieInvoke posts one event to the emulator's Invoke path.
func rieInvoke(t *testing.T, endpoint string, ev []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(endpoint+standin.RIEInvokePath, "application/json", bytes.NewReader(ev))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}
