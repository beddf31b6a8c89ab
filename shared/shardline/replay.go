package shardline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/config"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/dispatch"
	"github.com/shardline/shardline/shared/filter"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/metrics"
	"github.com/shardline/shardline/shared/replay"
	"github.com/shardline/shardline/shared/shards"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/telemetry/prom"
	"github.com/shardline/shardline/shared/terminal"
)

// ReplaySettings are the settings of `replay`.
type ReplaySettings = config.Replay

// replayLimits: Kinesis's per-shard read limits, which -read-share shares.
const (
	kinesisReadInterval = 200 * time.Millisecond // 5 GetRecords per second
	// kinesisReadBytes is what one read may bring so that reads at
	// kinesisReadInterval/share stay within share × 2 MB/s.
	kinesisReadBytes = 2 << 20 * kinesisReadInterval / time.Second
)

// runReplay is `replay`: a range of the stream into the handler, with no
// lease table, through the core's reader and dispatchers.
func (a *App) runReplay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var s ReplaySettings
	s.Handlers = a.handlerSet()
	fs := a.newFlagSet("replay", stdout)
	s.Register(fs)
	if err := a.parse(fs, args, getenv); err != nil {
		return err
	}
	began := time.Now()
	if err := s.OneStream("replay"); err != nil {
		return err
	}
	if err := s.Validate(began); err != nil {
		return err
	}
	format := s.Format(stderr)
	var live *terminal.Live
	if liveOn(s.Quiet, stdout, stderr, format) {
		live = terminal.NewLive(stderr, terminal.Width(stderr, 80))
		stdout, stderr = live.Writer(stdout), live.Writer(stderr)
		defer live.Close()
	}
	log := a.logTo(&s.Common, stderr, format)
	clients, err := s.Clients(ctx, log)
	if err != nil {
		return err
	}
	h, err := s.NewHandler(clients, stdout, log)
	if err != nil {
		return err
	}
	rp := &replayer{s: &s, log: log, began: began, handler: h, stats: map[string]*replayShard{}}
	out, err := clients.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.StreamName)})
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.StreamName, explain(err))
	}
	rp.source = stream.Source{StreamARN: aws.ToString(out.StreamDescriptionSummary.StreamARN), Region: clients.Region}
	rp.reads = replay.NewClient(clients.Kinesis, log)
	list, err := shards.List(ctx, clients.Kinesis, s.StreamName)
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.StreamName, explain(err))
	}
	picked, err := replay.Select(list, s.Shards)
	var unknown *replay.UnknownShardError
	if errors.As(err, &unknown) {
		return config.Usagef("-shard %s: not a shard of stream %s: allowed %s", unknown.ID, s.StreamName, shardIDs(list))
	}
	for _, b := range []struct {
		name string
		v    config.Bound
	}{{"from", s.FromBound}, {"until", s.UntilBound}} {
		if !b.v.IsPosition() {
			continue
		}
		var nis *replay.NotInShardError
		if err := replay.CheckSequence(ctx, rp.reads, s.StreamName, picked[0].ID, b.v.Pos.Seq); errors.As(err, &nis) {
			return config.Usagef("-%s %s: %v: allowed a sequence number of shard %s", b.name, b.v.Pos, err, picked[0].ID)
		} else if err != nil {
			return fmt.Errorf("-%s: %w", b.name, explain(err))
		}
	}
	if s.OnFailure != "" {
		rp.dest, err = s.Destination(clients)
		if err != nil {
			return config.Usagef("-on-failure %v", err)
		}
	}
	rp.filter, _ = filter.Parse(s.Filters) // checked by Validate
	rp.limiter = replay.NewLimiter(s.Rate)
	rp.keys = kpl.NewKeyBudget(1 << 16)
	for _, sh := range picked {
		rp.stats[sh.ID] = &replayShard{id: sh.ID}
	}
	rp.order = picked
	if s.MetricsAddr != "" {
		srv, err := prom.Serve(s.MetricsAddr, rp, metrics.Dimensions{}, log)
		if err != nil {
			return fmt.Errorf("cannot start: %w", err)
		}
		defer srv.Close()
	}
	stopLive := func() {}
	if live != nil {
		stopLive = rp.startLive(live)
		defer stopLive()
	}
	log.Info("replay started", "stream", s.StreamName, "shards", len(picked), "from", s.From, "until", rp.untilText())
	rp.sayParentsLeftOut(ctx, list, picked)
	err = replay.Each(ctx, picked, 0, rp.shard)
	err = rp.outcome(ctx, err)
	stopLive() // erased before the summary, not drawn again below it
	rp.summary(err)
	return err
}

// outcome is the replay's error once every shard returned: nil when every
// shard finished; a *ReplayInterruptedError when ctx ended (a signal) with
// shards not finished; a *ReplayGiveUpError naming the other shards not
// finished besides its own.
func (rp *replayer) outcome(ctx context.Context, err error) error {
	rest := rp.resumes()
	var gu *ReplayGiveUpError
	switch {
	case errors.As(err, &gu):
		for _, r := range rest {
			if r.ShardID != gu.ShardID {
				gu.Others = append(gu.Others, r)
			}
		}
		return err
	case ctx.Err() != nil && len(rest) == 0:
		return nil // every shard finished before the signal
	case ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled) || errors.Is(err, dispatch.ErrStopping) || errors.Is(err, context.Cause(ctx))):
		t := rp.totals()
		return &ReplayInterruptedError{Cause: context.Cause(ctx), Handled: t.handled, GivenUp: t.givenUp, Resume: rest}
	}
	return err
}

// sayParentsLeftOut says, in one INFO line each, which shards picked with
// -shard have a parent the stream still lists, not picked, that holds
// records of the range: the shard is read as asked, but the records of a
// key in the parent are not read before that key's records in the child,
// so per-key order across the split or merge is not kept (Lambda and the
// KCL never read a child before its parents). A parent with no record in
// the range (all of it before -from) is not worth a line: one read of it
// tells, from -from, at most until its first record in range.
func (rp *replayer) sayParentsLeftOut(ctx context.Context, list, picked []shards.Shard) {
	if len(rp.s.Shards) == 0 {
		return // every shard is read, in lineage order
	}
	listed := map[string]shards.Shard{}
	for _, sh := range list {
		listed[sh.ID] = sh
	}
	in := map[string]bool{}
	for _, sh := range picked {
		in[sh.ID] = true
	}
	from, until := rp.rangeOf()
	if from.Kind == replay.StartPosition {
		return // a sequence number of the child: every record of its parents is before it
	}
	if until.Kind != replay.StopBeforeTime {
		until = replay.UntilShardEnd() // a position of the child: the parents end before it
	}
	for _, sh := range picked {
		for _, parent := range listed[sh.ID].Parents {
			if in[parent] {
				continue
			}
			if _, ok := listed[parent]; !ok {
				continue // past the stream's retention
			}
			has, err := replay.HasRecords(ctx, rp.reads, replay.Config{StreamName: rp.s.StreamName, ShardID: parent, From: from, Until: until, ReadInterval: -1})
			if err != nil && ctx.Err() == nil {
				rp.log.Debug("cannot tell whether a parent left out holds records of the range", "shard", sh.ID, "parent", parent, "error", err.Error())
				has = true
			}
			if has {
				rp.log.Info("a parent of this shard holds records of the range and is not in the replay: this shard is read as asked, but per-key order across the split or merge is not kept (a key's records in the parent are not read before its records here); add -shard "+parent+" to keep it",
					"shard", sh.ID, "parent", parent)
			}
		}
	}
}

func shardIDs(list []shards.Shard) string {
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	if len(ids) > 8 {
		ids = append(ids[:8], fmt.Sprintf("... (%d shards)", len(list)))
	}
	return fmt.Sprint(ids)
}

// replayer is one replay: its settings, what it delivers with, and its
// counts per shard.
type replayer struct {
	s       *ReplaySettings
	log     *slog.Logger
	began   time.Time
	handler stream.Handler
	source  stream.Source
	reads   replay.KinesisAPI
	dest    dispatch.Destination
	filter  *filter.Filter
	limiter *replay.Limiter
	keys    *kpl.KeyBudget
	order   []shards.Shard

	mu    sync.Mutex
	stats map[string]*replayShard
}

// replayShard is one shard's counts and position.
type replayShard struct {
	id                 string
	started, finished  bool
	records, bytes     int64 // user records read in range
	filtered, dropped  int64
	kinesis            int64
	through            stream.Position // last read
	done               stream.Position // last done (handled or given up)
	arrival            time.Time       // of the last read
	firstArrival       time.Time
	millisBehindLatest int64
	dispatch           dispatch.Stats
	fetch              fetchStats
	// handed are the positions of the records handed to the dispatcher
	// and not yet reported done, in shard order, from handed[head]: the
	// first of them is where a replay stopped midway resumes.
	handed []stream.Position
	head   int
	// pending is the next record the reader read and did not return
	// when it stopped (replay.Reader.Pending).
	pending    stream.Position
	hasPending bool
}

// hand notes the records handed to the dispatcher; rp.mu is held.
func (st *replayShard) hand(recs []stream.Record) {
	if st.head > 0 && st.head == len(st.handed) {
		st.handed, st.head = st.handed[:0], 0
	}
	for i := range recs {
		st.handed = append(st.handed, recs[i].Position())
	}
}

// setDone notes that every record through p is done; rp.mu is held.
func (st *replayShard) setDone(p stream.Position) {
	st.done = p
	for st.head < len(st.handed) && !st.handed[st.head].After(p) {
		st.head++
	}
	if st.head > 1024 && st.head > len(st.handed)/2 {
		n := copy(st.handed, st.handed[st.head:])
		st.handed, st.head = st.handed[:n], 0
	}
}

// resumeAt is where the shard resumes: the first record handed and not
// done; else the first the reader read and did not return; else the
// record after the last one read (all read were done or filtered out) as
// seq:sub+1, the first record at or after it; ok is false when nothing
// was read (the shard resumes at -from).
func (st *replayShard) resumeAt() (p stream.Position, ok bool) {
	if st.head < len(st.handed) {
		return st.handed[st.head], true
	}
	if st.hasPending {
		return st.pending, true
	}
	last := st.through
	if st.done.Seq != "" && (last.Seq == "" || st.done.After(last)) {
		last = st.done
	}
	if last.Seq == "" {
		return stream.Position{}, false
	}
	return stream.Position{Seq: last.Seq, SubSeq: last.SubSeq + 1}, true
}

type fetchStats = struct{ GetRecords, Failed int64 }

func (rp *replayer) untilText() string {
	if rp.s.UntilBound.Sentinel == stream.Latest {
		return "LATEST (" + rp.began.UTC().Format(time.RFC3339) + ")"
	}
	return rp.s.Until
}

// rangeOf is the shard's range from the settings.
func (rp *replayer) rangeOf() (replay.Start, replay.Stop) {
	var from replay.Start
	switch f := rp.s.FromBound; {
	case f.IsTime():
		from = replay.FromTime(f.Time)
	case f.IsPosition():
		from = replay.FromPosition(f.Pos)
	default:
		from = replay.FromTrimHorizon()
	}
	var until replay.Stop
	switch u := rp.s.UntilBound; {
	case u.IsTime():
		until = replay.UntilTime(u.Time)
	case u.IsPosition():
		until = replay.UntilPosition(u.Pos)
	default:
		until = replay.UntilTime(rp.began)
	}
	return from, until
}

// shard replays one shard: its range read by replay.Reader, filtered,
// and delivered by the core's dispatchers.
func (rp *replayer) shard(ctx context.Context, sh shards.Shard) error {
	s := rp.s
	log := rp.log.With("shard", sh.ID)
	st := rp.stats[sh.ID]
	from, until := rp.rangeOf()
	cfg := replay.Config{
		StreamName: s.StreamName, ShardID: sh.ID, From: from, Until: until,
		ChunkSize:     max(1, s.BatchSize) * max(1, s.ParallelizationFactor),
		RetryWaitTime: s.RetryWaitTime, RetryMaxAttempts: s.RetryMaxAttempts,
		Limiter: rp.limiter, Keys: rp.keys, Logger: log,
	}
	if s.Rate > 0 {
		cfg.ChunkSize = min(cfg.ChunkSize, max(1, int(s.Rate))) // at most a second's worth at once
	}
	if s.ReadShare > 0 {
		cfg.ReadInterval = time.Duration(float64(kinesisReadInterval) / s.ReadShare)
		cfg.TargetBytes = int(kinesisReadBytes)
	} else {
		cfg.ReadInterval = -1
	}
	if s.OutOfRange != "deliver" {
		hr, err := kpl.ParseHashRange(sh.StartingHashKey, sh.EndingHashKey)
		if err == nil {
			cfg.HashRange = hr
		}
	}
	r, err := replay.New(rp.reads, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	rp.mu.Lock()
	st.started = true
	rp.mu.Unlock()

	done := func(p stream.Position) {
		rp.mu.Lock()
		st.setDone(p)
		rp.mu.Unlock()
	}
	// ctx ending (a signal, or another shard's failure) stops the reads
	// at once and the deliveries between handler calls: a call in flight
	// finishes (within -handler-timeout), so that what is done is known
	// and the replay can say where each shard resumes.
	dctx, stop := context.WithoutCancel(ctx), ctx.Done()
	dcfg := dispatch.Config{
		Handler: rp.handler, Source: rp.source, FunctionARN: s.TargetFunction,
		BatchSize: s.BatchSize, MaxRetryAttempts: s.MaxRetryAttempts, MaxRecordAge: max(s.MaxRecordAge, 0),
		BisectOnError: s.BisectOnError, OnFailure: rp.dest, Logger: log,
		HandlerTimeout: s.HandlerTimeout, MaxBatchBytes: coordinator.DefaultMaxBatchBytes,
		OversizeAlone: s.TargetFunction == "", IgnoreItemFailures: !s.ReportItemFailures,
	}
	if s.TargetFunction == "" {
		dcfg.Reread = rp.rereader(sh.ID)
	}
	var (
		disp  *dispatch.Dispatcher
		lanes *dispatch.Lanes
	)
	if s.ParallelizationFactor > 1 || s.MaxBatchingWindow > 0 {
		lanes, err = dispatch.NewLanes(dctx, stop, dcfg, dispatch.LanesConfig{
			Factor: s.ParallelizationFactor, Ahead: 8 << 20, MaxBatchingWindow: s.MaxBatchingWindow, Done: done,
		})
	} else {
		disp, err = dispatch.New(dcfg)
	}
	if err != nil {
		return err
	}
	setDispatch := func() {
		var ds dispatch.Stats
		if lanes != nil {
			ds = lanes.Stats()
		} else {
			ds = disp.Stats()
		}
		fs := r.Stats()
		rp.mu.Lock()
		st.dispatch = ds
		st.fetch = fetchStats{GetRecords: fs.GetRecords.Count, Failed: fs.GetRecordsFailed}
		rp.mu.Unlock()
	}
	if lanes != nil {
		// The lanes' calls in flight finish before the shard returns:
		// its counts and position are final then.
		defer func() { _ = lanes.Close(); setDispatch() }()
	}
	for {
		c, err := r.Next(ctx)
		if err != nil {
			rp.mu.Lock()
			st.pending, st.hasPending = r.Pending()
			rp.mu.Unlock()
			return rp.readFailed(sh.ID, err)
		}
		recs := c.Records
		n := int64(len(recs))
		var bytesIn int64
		for i := range recs {
			bytesIn += int64(len(recs[i].Data))
		}
		filtered := int64(0)
		if rp.filter != nil {
			kept := recs[:0]
			for i := range recs {
				if rp.filter.Match(recs[i].PartitionKey, recs[i].Data) {
					kept = append(kept, recs[i])
				}
			}
			filtered = int64(len(recs) - len(kept))
			clear(recs[len(kept):])
			recs = kept
		}
		rp.mu.Lock()
		st.records += n
		st.bytes += bytesIn
		st.filtered += filtered
		st.dropped += int64(c.Dropped)
		if !c.Arrival.IsZero() {
			if st.firstArrival.IsZero() {
				st.firstArrival = c.Arrival
			}
			st.arrival = c.Arrival
		}
		if c.Through.Seq != "" {
			st.through = c.Through
		}
		st.millisBehindLatest = c.MillisBehindLatest
		st.hand(recs)
		rp.mu.Unlock()
		if c.Malformed > 0 {
			log.Warn("malformed KPL aggregates delivered as they are", "count", c.Malformed)
		}
		if lanes != nil {
			err = lanes.Add(recs, stream.Position{})
		} else if len(recs) > 0 {
			err = disp.Deliver(dctx, stop, recs, done)
		}
		setDispatch()
		if err != nil {
			return rp.gaveUp(sh.ID, err)
		}
		if c.Done {
			if lanes != nil {
				err = lanes.Flush()
				setDispatch()
				if err != nil {
					return rp.gaveUp(sh.ID, err)
				}
			}
			rp.mu.Lock()
			st.finished = true
			rp.mu.Unlock()
			log.Debug("shard replayed", "reached", c.Reached, "ended", c.Ended)
			return nil
		}
	}
}

// readFailed is a read error as the replay reports it.
func (rp *replayer) readFailed(shardID string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("read %s: %w", shardID, explain(err))
}

// gaveUp is a delivery's error: a record given up with no -on-failure
// ends the replay, naming it and the -from to resume with.
func (rp *replayer) gaveUp(shardID string, err error) error {
	var gu *dispatch.GiveUpError
	if !errors.As(err, &gu) {
		return err
	}
	from := gu.First.Seq
	if gu.First.SubSeq != 0 {
		from += ":" + strconv.FormatInt(gu.First.SubSeq, 10)
	}
	return &ReplayGiveUpError{ShardID: shardID, Err: gu, Resume: from}
}

// ReplayGiveUpError ends a replay without -on-failure: records it could
// not deliver, and the -from (with -shard) that resumes at the first.
// Others are the other shards the replay stopped before their end (their
// handler calls in flight finished), each with where it resumes.
type ReplayGiveUpError struct {
	ShardID string
	Resume  string
	Err     *dispatch.GiveUpError
	Others  []ReplayResume
}

func (e *ReplayGiveUpError) Error() string {
	msg := fmt.Sprintf("replay stopped: shard %s: gave up on records %s..%s after %d attempts (%s), and no -on-failure destination is set (replay never skips a record); resume with -shard %s -from %s",
		e.ShardID, e.Err.First, e.Err.Last, e.Err.Attempts, e.Err.Reason, e.ShardID, e.Resume)
	if e.Err.Err != nil {
		msg += ": last error: " + e.Err.Err.Error()
	}
	if len(e.Others) > 0 {
		msg += "; other shards stopped before their end, resume each with: " + resumeList(e.Others)
	}
	return msg
}

// ReplayResume is where one shard of a replay stopped before its end
// resumes: the flags to add to the replay's other settings.
type ReplayResume struct {
	ShardID string
	// From is the first record not handled (seq or seq:sub, inclusive:
	// the first record at or after it), or the replay's own -from for a
	// shard not begun.
	From string
	// Until is the replay's end: its -until, or for -until LATEST the
	// time the replay began (records that came after are not in it).
	Until string
	// Begun tells whether the shard was read at all.
	Begun bool
}

// Args are the flags that resume the shard.
func (r ReplayResume) Args() string {
	return "-shard " + r.ShardID + " -from " + r.From + " -until " + r.Until
}

func resumeList(rs []ReplayResume) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.Args())
	}
	return strings.Join(parts, "; ")
}

// ReplayInterruptedError ends a replay stopped by its context (the first
// SIGINT or SIGTERM in Main, which exits with 130 or 143): the reads
// stopped at once, the handler calls in flight finished, and Resume lists
// the shards not finished, in lineage order (a parent before its
// children: resume them in that order to keep each key's order), each
// with the first record it did not handle.
type ReplayInterruptedError struct {
	Cause            error // the context's cause
	Handled, GivenUp int64
	Resume           []ReplayResume
}

func (e *ReplayInterruptedError) Error() string {
	return fmt.Sprintf("replay interrupted: %d records handled, %d given up; %d shards not finished, resume each (in this order) with the same settings and: %s",
		e.Handled, e.GivenUp, len(e.Resume), resumeList(e.Resume))
}

func (e *ReplayInterruptedError) Unwrap() error { return e.Cause }

// LogAttrs are the error's details for a JSON log line.
func (e *ReplayInterruptedError) LogAttrs() []any {
	var rs []any
	for _, r := range e.Resume {
		rs = append(rs, map[string]any{"shard": r.ShardID, "from": r.From, "until": r.Until, "args": r.Args()})
	}
	return []any{"handled", e.Handled, "givenUp", e.GivenUp, "resume", rs}
}

// resumes lists the shards not finished, in lineage order, each with
// where it resumes.
func (rp *replayer) resumes() []ReplayResume {
	until := rp.s.Until
	if rp.s.UntilBound.Sentinel == stream.Latest {
		until = rp.began.UTC().Format(time.RFC3339Nano)
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	var out []ReplayResume
	for _, sh := range rp.order {
		st := rp.stats[sh.ID]
		if st.finished {
			continue
		}
		r := ReplayResume{ShardID: sh.ID, From: rp.s.From, Until: until}
		if p, ok := st.resumeAt(); ok {
			r.From, r.Begun = positionArg(p), true
		}
		out = append(out, r)
	}
	return out
}

// positionArg is p as -from takes it: seq, or seq:sub.
func positionArg(p stream.Position) string {
	if p.SubSeq == 0 {
		return p.Seq
	}
	return p.Seq + ":" + strconv.FormatInt(p.SubSeq, 10)
}

func (e *ReplayGiveUpError) Unwrap() error { return e.Err }

// rereader is dispatch.Config.Reread for an in-process handler: the
// records still to do read again (replay.ReadShard of their range), so
// that a handler that changed its event's Data in place cannot change
// what a retry, the halves or the destination get.
func (rp *replayer) rereader(shardID string) func(context.Context, []stream.Record) (int, error) {
	return func(ctx context.Context, recs []stream.Record) (int, error) {
		if len(recs) == 0 {
			return 0, nil
		}
		i, missing := 0, 0
		_, err := replay.ReadShard(ctx, rp.reads, replay.Config{
			StreamName: rp.s.StreamName, ShardID: shardID, ReadInterval: -1,
			From: replay.FromPosition(recs[0].Position()), Until: replay.ThroughSequence(recs[len(recs)-1].SequenceNumber),
		}, func(c replay.Chunk) error {
			for _, u := range c.Records {
				p := u.Position()
				for i < len(recs) && p.After(recs[i].Position()) {
					i++ // not in the stream any more
					missing++
				}
				if i < len(recs) && p == recs[i].Position() {
					recs[i].Data = bytes.Clone(u.Data)
					i++
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		return missing + len(recs) - i, nil // not found: past the stream's retention
	}
}

// Snapshot is the replay's counts in the worker's form, for -metrics-addr.
func (rp *replayer) Snapshot() coordinator.Snapshot {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	snap := coordinator.Snapshot{Time: time.Now(), WorkerID: "replay", StreamName: rp.s.StreamName, Level: metrics.Detailed, Ready: true}
	for _, sh := range rp.order {
		st := rp.stats[sh.ID]
		if st.started && !st.finished {
			snap.CurrentLeases++
		}
		snap.Shards = append(snap.Shards, coordinator.ShardStats{
			ShardID: st.id, Checkpoint: st.done, UserRecords: st.records, FilteredOut: st.filtered, DroppedOutOfRange: st.dropped,
			MillisBehindLatest: st.millisBehindLatest, Dispatch: st.dispatch, Held: st.started && !st.finished, Mode: "replay",
		})
	}
	return snap
}

// totals adds the shards up.
func (rp *replayer) totals() (t struct {
	shards, finished                           int
	records, bytes, handled, givenUp, filtered int64
	dropped                                    int64
}) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, st := range rp.stats {
		t.shards++
		if st.finished {
			t.finished++
		}
		t.records += st.records
		t.bytes += st.bytes
		t.handled += st.dispatch.Handled
		t.givenUp += st.dispatch.GivenUp
		t.filtered += st.filtered
		t.dropped += st.dropped
	}
	return t
}

// progress is the fraction of the range read, averaged over the shards
// (by approximate arrival time between the range's first record and its
// end), and the position in time of the shard furthest behind.
func (rp *replayer) progress() (frac float64, behind time.Time) {
	end := rp.began
	if u := rp.s.UntilBound; u.IsTime() {
		end = u.Time
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	sum := 0.0
	for _, st := range rp.stats {
		switch {
		case st.finished:
			sum++
		case !st.arrival.IsZero():
			start := st.firstArrival
			if f := rp.s.FromBound; f.IsTime() {
				start = f.Time
			}
			if span := end.Sub(start); span > 0 {
				sum += min(1, max(0, float64(st.arrival.Sub(start))/float64(span)))
			}
			if behind.IsZero() || st.arrival.Before(behind) {
				behind = st.arrival
			}
		}
	}
	return sum / float64(max(1, len(rp.stats))), behind
}

// startLive keeps the progress line on a terminal: shards done, records,
// bytes, where in time the slowest shard is, ETA.
func (rp *replayer) startLive(line *terminal.Live) (stop func()) {
	return redraw(line, func() string { return rp.liveText(time.Now()) })
}

func (rp *replayer) liveText(now time.Time) string {
	t := rp.totals()
	frac, behind := rp.progress()
	at, eta := "-", "-"
	if !behind.IsZero() {
		at = behind.UTC().Format("2006-01-02T15:04:05Z")
	}
	if frac > 0 && frac < 1 {
		eta = (time.Duration(float64(now.Sub(rp.began)) * (1 - frac) / frac)).Round(time.Second).String()
	}
	bar := progressBar(frac, 20)
	return fmt.Sprintf("replay %s %3.0f%% | %d/%d shards | %d records | %s | at %s | ETA %s | %d given up",
		bar, 100*frac, t.finished, t.shards, t.records, byteSize(float64(t.bytes)), at, eta, t.givenUp)
}

func progressBar(frac float64, width int) string {
	n := int(frac * float64(width))
	b := make([]byte, 0, width+2)
	b = append(b, '[')
	for i := range width {
		if i < n {
			b = append(b, '#')
		} else {
			b = append(b, '.')
		}
	}
	return string(append(b, ']'))
}

// summary logs what the replay did, and where each shard stopped when it
// did not finish.
func (rp *replayer) summary(err error) {
	t := rp.totals()
	took := time.Since(rp.began)
	attrs := []any{"shards", t.shards, "shardsFinished", t.finished, "records", t.records, "handled", t.handled, "givenUp", t.givenUp,
		"filteredOut", t.filtered, "droppedOutOfRange", t.dropped, "bytes", t.bytes, "duration", took.Round(time.Millisecond),
		"recordsPerSec", float64(int64(float64(t.records)/max(took.Seconds(), 1e-3)*10)) / 10}
	if err == nil {
		rp.log.Info("replay done", attrs...)
		return
	}
	rp.log.Warn("replay stopped before the end", attrs...)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for _, sh := range rp.order {
		if st := rp.stats[sh.ID]; st.started && !st.finished {
			resume, _ := st.resumeAt()
			rp.log.Info("shard stopped", "shard", st.id, "lastDone", st.done.String(), "lastRead", st.through.String(), "resumeFrom", positionArg(resume))
		}
	}
}
