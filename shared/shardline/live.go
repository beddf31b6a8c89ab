package shardline

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/terminal"
)

// liveOn says whether `poller run` keeps its live status line: on a
// terminal (stdout and stderr both), with text logs, unless -quiet.
func liveOn(quiet bool, stdout, stderr io.Writer, format string) bool {
	return !quiet && format == config.FormatText && terminal.Is(stdout) && terminal.Is(stderr)
}

// liveEvery is how often the status line is redrawn; liveSpan is how many
// redraws the rates are averaged over.
const (
	liveEvery = time.Second
	liveSpan  = 5
)

// startLive redraws line every liveEvery from the worker's snapshots until
// stop is called, which erases it.
func startLive(line *terminal.Live, snapshot func() coordinator.Snapshot) (stop func()) {
	recent := []coordinator.Snapshot{snapshot()}
	return redraw(line, func() string {
		cur := snapshot()
		text := liveText(cur.Since(recent[0]))
		if recent = append(recent, cur); len(recent) > liveSpan {
			recent = recent[1:]
		}
		return text
	})
}

// redraw sets line to text() every liveEvery (text is called from one
// goroutine only) until stop is called, which erases it: the live line of
// run, replay and redrive.
func redraw(line *terminal.Live, text func() string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(liveEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			line.Set(text())
		}
	})
	return func() {
		cancel()
		wg.Wait()
		line.Close()
	}
}

// liveText is the status line: shards held, records/s, bytes/s, the
// largest lag, failed handler calls since the start, parked shards.
func liveText(p coordinator.Progress) string {
	lag := "-"
	if p.MaxLag >= 0 {
		lag = (time.Duration(p.MaxLag) * time.Millisecond).Round(100 * time.Millisecond).String()
	}
	return fmt.Sprintf("%d shards | %.0f records/s | %s/s | max lag %s | %d failures | %d parked",
		p.Held, p.RecordsPerSec, byteSize(p.BytesPerSec), lag, p.AllFailures, p.Parked)
}

// byteSize writes n bytes with a binary unit: 950 B, 56.7 KiB, 1.2 MiB.
func byteSize(n float64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%.0f B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KiB", n/1024)
	case n < 1024*1024*1024:
		return fmt.Sprintf("%.1f MiB", n/(1024*1024))
	}
	return fmt.Sprintf("%.1f GiB", n/(1024*1024*1024))
}
