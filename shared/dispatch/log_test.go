package dispatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

// TestDebugLinePerCall: at DEBUG each handler call is one "handler call"
// line with the shard, records, first and last position, duration and
// outcome; above DEBUG there is none.
func TestDebugLinePerCall(t *testing.T) {
	tests := []struct {
		name    string
		handler stream.Handler
		want    []string // in the first call's line
	}{
		{"ok", func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
			return events.KinesisEventResponse{}, nil
		}, []string{"records=3 first=1000 last=1002 duration=", "outcome=ok"}},
		{"partial failure", func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
			return failures("1001"), nil
		}, []string{"records=3", "failedFrom=1001", `outcome="partial failure"`}},
		{"error", func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
			return events.KinesisEventResponse{}, errors.New("boom")
		}, []string{"records=3", "error=boom", "outcome=error"}},
		{"panic", func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
			panic("oops")
		}, []string{`error="handler panicked: oops"`, "outcome=panic"}},
		{"throttled", throttledOnce(), []string{"outcome=throttled"}},
		{"timeout", func(ctx context.Context, _ events.KinesisEvent) (events.KinesisEventResponse, error) {
			<-ctx.Done()
			return events.KinesisEventResponse{}, ctx.Err()
		}, []string{"outcome=timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, lvl := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
				var buf bytes.Buffer
				log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: lvl})).With("shard", testShard)
				d, err := New(Config{Handler: tt.handler, Logger: log, MaxRetryAttempts: 0, NoTiming: true,
					HandlerTimeout: 50 * time.Millisecond, RetryBackoff: time.Microsecond, MaxRetryBackoff: time.Microsecond})
				if err != nil {
					t.Fatal(err)
				}
				_ = d.Deliver(context.Background(), make(chan struct{}), recs(3), func(stream.Position) {})
				var calls []string
				for _, l := range strings.Split(buf.String(), "\n") {
					if strings.Contains(l, `msg="handler call"`) {
						calls = append(calls, l)
					}
				}
				if lvl == slog.LevelInfo {
					if len(calls) != 0 {
						t.Errorf("at INFO: %q, want no handler call line", calls)
					}
					continue
				}
				if len(calls) == 0 {
					t.Fatalf("no handler call line:\n%s", buf.String())
				}
				for _, w := range append([]string{"level=DEBUG", "shard=" + testShard, "requestId="}, tt.want...) {
					if !strings.Contains(calls[0], w) {
						t.Errorf("line %q lacks %q", calls[0], w)
					}
				}
			}
		})
	}
}

// throttledOnce is throttled at every other call, starting with the first.
func throttledOnce() stream.Handler {
	n := 0
	return func(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
		n++
		if n%2 == 1 {
			return events.KinesisEventResponse{}, fmt.Errorf("429: %w", stream.ErrThrottled)
		}
		return events.KinesisEventResponse{}, nil
	}
}
