package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shardline/shardline/shared/testwait"
)

// TestStatusWatch (the table is at most 120 columns wide): `status -watch` off a terminal prints the table again
// at each read, each with its summary row, and a RATE column that shows
// a shard's records/s once its owner has renewed after handling records;
// Ctrl-C (the context) ends it with no error. -watch with -json is a bad
// setting.
func TestStatusWatch(t *testing.T) {
	e := newEnv(t, 1)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_REGION", "us-east-1")
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	runStatus := func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
		return app().Run(ctx, append([]string{"status", "-watch-every", "100ms"}, args...), getenv, stdout, stderr)
	}
	vars := map[string]string{"SHARDLINE_KINESIS_ENDPOINT": e.kinesisEP, "SHARDLINE_DYNAMODB_ENDPOINT": e.dynamoEP,
		"SHARDLINE_APP_NAME": e.app, "SHARDLINE_STREAM_NAME": e.stream}
	if err := runStatus(context.Background(), []string{"-watch", "-json"}, env(vars), &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-watch and -json") {
		t.Fatalf("-watch -json: %v, want a bad setting naming both", err)
	}
	p := e.startPoller(t, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-failover-time", "900ms")
	testwait.Until(t, time.Minute, "the poller started", func() bool { return strings.Contains(p.errOut.String(), "shard started") })

	var out testwait.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runStatus(ctx, []string{"-watch"}, env(vars), &out, &bytes.Buffer{}) }()
	testwait.Until(t, 30*time.Second, "two tables with the shard owned", func() bool {
		return strings.Count(out.String(), "1 shards | 1 owners") >= 2
	})
	e.put(t, 300)
	rate := regexp.MustCompile(`\s[1-9][0-9]*/s\s`)
	testwait.Until(t, time.Minute, "a records/s above 0", func() bool { return rate.MatchString(out.String()) })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("status -watch returned %v after Ctrl-C, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("status -watch did not return after Ctrl-C")
	}
	s := out.String()
	if testing.Verbose() {
		t.Logf("the last tables:\n%s", tail(s, 1500))
	}
	if strings.Contains(s, "\x1b[H\x1b[2J") {
		t.Error("the screen was cleared off a terminal")
	}
	tables := strings.Count(s, "\nSHARD ")
	if tables < 3 || strings.Count(s, " records/s\n") != tables {
		t.Errorf("%d tables and %d summary rows, want several, one each:\n%s", tables, strings.Count(s, " records/s\n"), tail(s, 3000))
	}
	for _, l := range strings.Split(s, "\n") {
		if utf8.RuneCountInString(l) > 120 {
			t.Errorf("line of %d columns: %s", utf8.RuneCountInString(l), l)
		}
	}
}
