package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lambdaemu"
)

// TestWordCountFunction: the built bootstrap, hosted as Lambda hosts it,
// answers each events/ Kinesis file with success (an empty response) and
// counts the words, de-aggregating the KPL file itself.
func TestWordCountFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function")
	}
	ctx := context.Background()
	bin, err := lambdaemu.Build(ctx, t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file string
		want []string // lines of the printed counts
	}{
		{"kinesis.json", []string{"word counts: 8 words, 5 distinct, 1 batches", "3 3", "9 2"}},
		{"kinesis-aggregated.json", aggregatedWant(t)},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			out := &testwait.Buffer{}
			emu, err := lambdaemu.Start(ctx, lambdaemu.Function{Name: "wordcount", Path: bin, Timeout: 5 * time.Second, Stdout: out, Stderr: out})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := os.ReadFile("../../events/" + c.file)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := lambdaemu.Client(emu.Endpoint).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("wordcount"), Payload: ev})
			if err != nil {
				t.Fatal(err)
			}
			if resp.FunctionError != nil {
				t.Fatalf("function error %s: %s", aws.ToString(resp.FunctionError), resp.Payload)
			}
			if p := strings.TrimSpace(string(resp.Payload)); p != `{"batchItemFailures":null}` && p != "{}" && p != "null" {
				t.Fatalf("answer %s: want success with no failures", p)
			}
			if err := emu.Close(); err != nil { // waits for the output
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			if strings.Contains(out.String(), "\xf3\x89\x9a\xc2") {
				t.Error("a KPL aggregate was counted as words")
			}
		})
	}
}

// aggregatedWant counts the words of the aggregated event file's user
// records independently (kpl.Deaggregate), for the header line.
func aggregatedWant(t *testing.T) []string {
	b, err := os.ReadFile("../../events/kinesis-aggregated.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	words, distinct := 0, map[string]bool{}
	for _, r := range ev.Records {
		recs, st := kpl.Deaggregate(nil, "shardId-000000000000", &types.Record{Data: r.Kinesis.Data, PartitionKey: &r.Kinesis.PartitionKey, SequenceNumber: &r.Kinesis.SequenceNumber}, kpl.HashRange{})
		if st.Aggregates != 1 {
			t.Fatalf("record %s of the aggregated event is not an aggregate", r.Kinesis.SequenceNumber)
		}
		for _, u := range recs {
			for _, w := range strings.Fields(string(u.Data)) {
				words++
				distinct[w] = true
			}
		}
	}
	return []string{fmt.Sprintf("word counts: %d words, %d distinct, 1 batches", words, len(distinct))}
}

// TestSettingVariable: the function reads SHARDLINE_CHECKPOINT_INTERVAL,
// the poller's variable; a bare CHECKPOINT_INTERVAL (anyone's) is not its
// setting.
func TestSettingVariable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function")
	}
	ctx := context.Background()
	bin, err := lambdaemu.Build(ctx, t.TempDir(), ".")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := os.ReadFile("../../events/kinesis.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env     string
		wantErr bool
	}{
		{"CHECKPOINT_INTERVAL=nope", false},
		{"SHARDLINE_CHECKPOINT_INTERVAL=2s", false},
		{"SHARDLINE_CHECKPOINT_INTERVAL=nope", true},
	} {
		out := &testwait.Buffer{}
		emu, err := lambdaemu.Start(ctx, lambdaemu.Function{Name: "wordcount", Path: bin, Timeout: 5 * time.Second, Env: []string{c.env}, Stdout: out, Stderr: out})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := lambdaemu.Client(emu.Endpoint).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("wordcount"), Payload: ev})
		_ = emu.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.FunctionError != nil; got != c.wantErr {
			t.Errorf("%s: function error %v (%s), want an error: %v\nlog:\n%s", c.env, aws.ToString(resp.FunctionError), resp.Payload, c.wantErr, out.String())
		}
		if c.wantErr && !strings.Contains(out.String(), `SHARDLINE_CHECKPOINT_INTERVAL="nope": allowed a positive duration`) {
			t.Errorf("%s: the log does not name the variable:\n%s", c.env, out.String())
		}
	}
}
