package shardline

import (
	"context"
	"io"

	"github.com/shardline/shardline/shared/terminal"
)

// runPoller is `run`: the settings from args and the variables, then a
// Worker with the live view on a terminal.
func (a *App) runPoller(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var s Settings
	s.Handlers = a.handlerSet()
	fs := a.newFlagSet("run", stdout)
	s.Register(fs)
	if err := a.parse(fs, args, getenv); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	// On a terminal, a live status line stays below the logs and the
	// handler's output: both pass above it.
	format := s.Format(stderr)
	var live *terminal.Live
	if liveOn(s.Quiet, stdout, stderr, format) {
		live = terminal.NewLive(stderr, terminal.Width(stderr, 80))
		stdout, stderr = live.Writer(stdout), live.Writer(stderr)
	}
	log := a.logTo(&s.Common, stderr, format)
	for _, u := range unused(given(fs), &s, false) {
		log.Warn(u)
	}
	w, err := a.buildWorker(ctx, &s, stdout, log)
	if err != nil {
		return err
	}
	if live != nil {
		w.live = func() func() { return startLive(live, w.w.Snapshot) }
	}
	return w.Run(ctx)
}
