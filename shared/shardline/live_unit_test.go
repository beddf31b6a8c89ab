package shardline

import (
	"bytes"
	"io"
	"testing"

	"github.com/shardline/shardline/shared/terminal/ptytest"

	"github.com/shardline/shardline/shared/coordinator"
)

func TestLiveText(t *testing.T) {
	tests := []struct {
		p    coordinator.Progress
		want string
	}{
		{coordinator.Progress{MaxLag: -1}, "0 shards | 0 records/s | 0 B/s | max lag - | 0 failures | 0 parked"},
		{coordinator.Progress{Held: 4, RecordsPerSec: 1234.4, BytesPerSec: 58060.8, MaxLag: 1234, AllFailures: 3, Failures: 1, Parked: 1},
			"4 shards | 1234 records/s | 56.7 KiB/s | max lag 1.2s | 3 failures | 1 parked"},
		{coordinator.Progress{Held: 1, BytesPerSec: 3 << 20, MaxLag: 0}, "1 shards | 0 records/s | 3.0 MiB/s | max lag 0s | 0 failures | 0 parked"},
	}
	for _, tt := range tests {
		if got := liveText(tt.p); got != tt.want {
			t.Errorf("liveText(%+v)\n got %q\nwant %q", tt.p, got, tt.want)
		}
	}
}

// TestLiveOn: the live view needs text logs, -quiet off, and stdout and
// stderr both on a terminal.
func TestLiveOn(t *testing.T) {
	tty, _ := ptytest.Open(t)
	var buf bytes.Buffer
	tests := []struct {
		quiet          bool
		stdout, stderr io.Writer
		format         string
		want           bool
	}{
		{false, tty, tty, "text", true},
		{true, tty, tty, "text", false},    // -quiet
		{false, tty, tty, "json", false},   // -log-format json
		{false, &buf, tty, "text", false},  // stdout piped
		{false, tty, &buf, "text", false},  // stderr redirected
		{false, &buf, &buf, "json", false}, // neither
	}
	for i, tt := range tests {
		if got := liveOn(tt.quiet, tt.stdout, tt.stderr, tt.format); got != tt.want {
			t.Errorf("case %d: liveOn = %v, want %v", i, got, tt.want)
		}
	}
}
