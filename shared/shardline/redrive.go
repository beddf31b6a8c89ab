package shardline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/redrive"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/telemetry/prom"
	"github.com/shardline/shardline/shared/terminal"
)

// runRedrive is `redrive`: records given up to an on-failure destination
// delivered again, to the handler or function the settings name.
func (a *App) runRedrive(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var s config.Redrive
	s.Handlers = a.handlerSet()
	fs := a.newFlagSet("redrive", stdout)
	s.Register(fs)
	if err := a.parse(fs, args, getenv); err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	format := s.Format(stderr)
	var live *terminal.Live
	if liveOn(s.Quiet, stdout, stderr, format) {
		live = terminal.NewLive(stderr, terminal.Width(stderr, 80))
		stdout, stderr = live.Writer(stdout), live.Writer(stderr)
	}
	log := a.logTo(&s.Common, stderr, format)
	// A file read into an in-process handler needs no AWS: the clients
	// (and so a region) are loaded only when a record needs the stream.
	clients := &awsconf.Clients{Region: s.Region}
	ranges := &lazyRanges{load: func(ctx context.Context) (redrive.RangeReader, error) {
		c, err := s.Clients(ctx, log)
		if err != nil {
			return nil, err
		}
		return newRangeReader(c, log), nil
	}}
	if s.UsesAWS() {
		c, err := s.Clients(ctx, log)
		if err != nil {
			return err
		}
		clients, ranges.rr = c, newRangeReader(c, log)
	}
	cfg := redrive.Config{
		ParallelizationFactor: s.ParallelizationFactor, StreamName: s.StreamName, Region: clients.Region,
		MaxBytes: int64(s.MaxGatherMB) << 20, DryRun: s.DryRun, Logger: log,
		Ranges: ranges,
	}
	if !s.DryRun {
		h, err := s.NewHandler(clients, stdout, log)
		if err != nil {
			return err
		}
		cfg.Dispatch = s.DispatchConfig(clients, h)
	}
	var err error
	cfg.Source, err = redrive.Open(s.From, s.Sources(clients), redrive.Options{Delete: s.Delete, Visibility: s.VisibilityTimeout})
	if err != nil {
		return config.Usagef("-from %v", err)
	}
	r, err := redrive.New(cfg)
	if err != nil {
		return err
	}
	snap := &redriveSnapshot{r: r, stream: s.StreamName}
	if s.MetricsAddr != "" {
		srv, err := prom.Serve(s.MetricsAddr, snap, metrics.DefaultDimensions, log)
		if err != nil {
			return fmt.Errorf("cannot start: %w", err)
		}
		defer srv.Close()
	}
	if live != nil {
		stop := startRedriveLive(live, r)
		defer stop()
	}
	log.Info("redrive", "from", s.From, "dryRun", s.DryRun)
	sum, err := r.Run(ctx)
	snap.stop()
	var nf *redrive.NotFoundError
	if errors.As(err, &nf) {
		return err
	}
	if live != nil {
		live.Close()
	}
	printRedrive(stdout, sum, s.From, s.OnFailure)
	logRedrive(log, sum)
	return err
}

// lazyRanges builds its range reader (and the AWS clients under it) on
// the first Lambda metadata-only record, so that a redrive that meets
// none needs no AWS configuration.
type lazyRanges struct {
	load func(context.Context) (redrive.RangeReader, error)

	mu  sync.Mutex
	rr  redrive.RangeReader
	err error
}

var _ redrive.RangeReader = (*lazyRanges)(nil)

func (l *lazyRanges) ReadRange(ctx context.Context, streamName, shardID, start, end string) ([]stream.Record, error) {
	l.mu.Lock()
	if l.rr == nil && l.err == nil {
		l.rr, l.err = l.load(ctx)
	}
	rr, err := l.rr, l.err
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return rr.ReadRange(ctx, streamName, shardID, start, end)
}

// printRedrive writes the summary: one row per shard, then totals.
func printRedrive(w io.Writer, sum redrive.Summary, from, onFailure string) {
	records, handled, givenUp, left := sum.Totals()
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if sum.DryRun {
		fmt.Fprintln(tw, "SHARD\tRECORDS\tFIRST ARRIVAL\tLAST ARRIVAL\tFIRST SEQUENCE NUMBER\tLAST SEQUENCE NUMBER\tLAMBDA RANGES")
		for _, sh := range sum.Shards {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\n", sh.ShardID, sh.Records, stamp(sh.FirstArrival), stamp(sh.LastArrival), dash(sh.FirstSeq), dash(sh.LastSeq), sh.Ranges)
		}
	} else {
		fmt.Fprintln(tw, "SHARD\tRECORDS\tHANDLED\tGIVEN UP\tLEFT\tFIRST ARRIVAL\tLAST ARRIVAL\tFIRST SEQUENCE NUMBER\tLAST SEQUENCE NUMBER")
		for _, sh := range sum.Shards {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", sh.ShardID, sh.Records, sh.Handled, sh.GivenUp, sh.Left,
				stamp(sh.FirstArrival), stamp(sh.LastArrival), dash(sh.FirstSeq), dash(sh.LastSeq))
		}
	}
	tw.Flush()
	var b strings.Builder
	if sum.DryRun {
		fmt.Fprintf(&b, "dry run: %d records of %d shards in %d messages of %s would be redriven", records, len(sum.Shards), sum.Messages, from)
		if n := ranges(sum); n > 0 {
			fmt.Fprintf(&b, " (%d of Lambda's metadata-only records counted by their batchSize: read back from the stream when redriven)", n)
		}
		b.WriteString("; nothing was delivered or changed")
	} else {
		fmt.Fprintf(&b, "redrive: %d records handled, %d given up again", handled, givenUp)
		if givenUp > 0 && onFailure != "" {
			fmt.Fprintf(&b, " (to %s)", onFailure)
		}
		fmt.Fprintf(&b, ", %d left in the source; %d messages cleaned up, %d kept", left, sum.Cleaned, sum.Kept)
	}
	if sum.Duplicates > 0 {
		fmt.Fprintf(&b, "; %d duplicates", sum.Duplicates)
	}
	if sum.Unreadable > 0 {
		fmt.Fprintf(&b, "; %d messages not on-failure records (kept)", sum.Unreadable)
	}
	if sum.PastRetention > 0 {
		fmt.Fprintf(&b, "; %d of Lambda's records past the stream's retention (kept)", sum.PastRetention)
	}
	if sum.Bounded > 0 && !sum.DryRun {
		fmt.Fprintf(&b, "; delivered in %d rounds (memory bound): in order within each round", sum.Rounds)
	}
	if sum.Unlisted > 0 {
		fmt.Fprintf(&b, "; about %d more messages not listed: a FIFO queue holds a group's next messages back until the earlier ones are deleted", sum.Unlisted)
	}
	if sum.AtReceiveLimit > 0 {
		fmt.Fprintf(&b, "; %d messages now received maxReceiveCount (%d) times: their next receive moves them to the dead-letter queue", sum.AtReceiveLimit, sum.ReceiveLimit)
	}
	fmt.Fprintln(w, b.String())
	_ = records
}

func ranges(sum redrive.Summary) int {
	n := 0
	for _, sh := range sum.Shards {
		n += sh.Ranges
	}
	return n
}

func logRedrive(log *slog.Logger, sum redrive.Summary) {
	records, handled, givenUp, left := sum.Totals()
	log.Info("redrive summary", "dryRun", sum.DryRun, "records", records, "handled", handled, "givenUp", givenUp, "left", left,
		"messages", sum.Messages, "cleaned", sum.Cleaned, "kept", sum.Kept, "duplicates", sum.Duplicates, "rounds", sum.Rounds)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// redriveSnapshot shows a redrive to the metrics endpoint as a worker's
// snapshot: one row per shard with its delivery counts.
type redriveSnapshot struct {
	r       *redrive.Redriver
	stream  string
	mu      sync.Mutex
	stopped bool
}

var _ prom.Worker = (*redriveSnapshot)(nil)

func (s *redriveSnapshot) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

func (s *redriveSnapshot) Snapshot() coordinator.Snapshot {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	snap := coordinator.Snapshot{Time: time.Now(), WorkerID: "redrive", StreamName: s.stream, AppName: "redrive", Level: metrics.Detailed, Ready: true, Stopped: stopped}
	disp := s.r.Dispatch()
	for _, sh := range s.r.Summary().Shards {
		snap.Shards = append(snap.Shards, coordinator.ShardStats{ShardID: sh.ShardID, UserRecords: sh.Records, Dispatch: disp[sh.ShardID], Held: true})
	}
	return snap
}

// startRedriveLive keeps a progress line on the terminal: records handled,
// given up and left so far.
func startRedriveLive(line *terminal.Live, r *redrive.Redriver) (stop func()) {
	began := time.Now()
	return redraw(line, func() string {
		sum := r.Summary()
		records, _, givenUp, left := sum.Totals()
		var handled int64
		for _, d := range r.Dispatch() {
			handled += d.Handled
		}
		secs := max(time.Since(began).Seconds(), 1)
		return fmt.Sprintf("redrive: %d messages, %d records gathered, %d handled (%.0f/s), %d given up, %d left", sum.Messages, records, handled, float64(handled)/secs, givenUp, left)
	})
}
