// Command wordcount is the word count of the demo built on the shardline
// package, one binary for every place it runs: on Lambda it is the
// function Lambda's own Kinesis trigger invokes (KPL aggregates
// de-aggregated), the function Shardline's pollers invoke
// (SHARDLINE_TARGET_FUNCTION), and the scheduled poller (the schedule's
// event); on a VM or in a container it is the poller command line with the
// word count in process (`wordcount run -app-name A -stream-name S`). The
// running counts go to stdout at most once per SHARDLINE_CHECKPOINT_INTERVAL
// (default 1s). Build with -tags lambda.norpc as bootstrap for
// provided.al2023.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/shardline/shardline/shared/handlers"
	"github.com/shardline/shardline/shared/shardline"
)

func main() {
	interval := time.Second
	if v := os.Getenv("SHARDLINE_CHECKPOINT_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "wordcount: SHARDLINE_CHECKPOINT_INTERVAL=%q: allowed a positive duration such as 1s\n", v)
			os.Exit(2)
		}
		interval = d
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	o := handlers.Options{Out: os.Stdout, Logger: log, Interval: interval}
	wc, err := handlers.NewWordCount(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(2)
	}
	// The windowed variant, for a tumbling window (-tumbling-window, or a
	// trigger with TumblingWindowInSeconds).
	win, err := handlers.NewWindow("wordcount", o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(2)
	}
	shardline.New(shardline.Handle(wc.Handle), shardline.HandleWindow(win), shardline.WithName("wordcount")).Start()
}
