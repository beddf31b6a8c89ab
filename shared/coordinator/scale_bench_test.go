package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/testwait"
)

// BenchmarkLeaseScale measures the lease table at scale (issue #19,
// point 5): S shards in kinesis-mock (SHARDLINE_SCALE_SHARDS, default
// 200) and W in-process workers (SHARDLINE_SCALE_WORKERS, default 10) at
// the default failover time (10s), idle. In order:
//
//   - start-up: W−1 workers until every shard is held, shared evenly;
//   - join: one more worker, until it holds its share and every worker
//     holds S/W (±1): the time to its first lease and to its share;
//   - steady: a window with no moves (SHARDLINE_SCALE_WINDOW, default
//     120s): lease-table calls per minute per worker by operation, read
//     and write units (as DynamoDB Local reports them), checked against
//     the read formula of BENCHMARKS.md ("Lease table at scale"), and the
//     process's CPU time (getrusage) over the window per worker;
//   - kill: every DynamoDB call of one worker that is not the leader fails
//     from one instant on (an atomic switch in its client's middleware; it
//     stops renewing): the time until the others hold its shards; then
//     until the leader has deleted its worker item;
//   - kill the leader the same way: the time until the others hold its
//     shards (a new leader first takes the lock);
//   - kill another worker at once (in the new leader's first minute): the
//     time until its shards are held, and how many shards of live
//     workers went unheld meanwhile (leases moved to a dead worker).
//
// The stream and its listing are kinesis-mock's; the idle reads
// (GetShardIterator, GetRecords: 5 a second per shard at the default
// idle interval, 1,000/s here, more than kinesis-mock answers on a small
// machine) are answered in process, empty, unless
// SHARDLINE_SCALE_READS=kinesis-mock. SHARDLINE_SCALE_LOG=info shows the
// workers' logs. Takes several minutes; skipped under -short.
//
//	go test -run '^$' -bench LeaseScale -benchtime 1x -timeout 30m -v ./shared/coordinator/
func BenchmarkLeaseScale(b *testing.B) {
	if testing.Short() {
		b.Skip("integration benchmark: needs the stand-ins (run without -short)")
	}
	shards := benchInt(b, "SHARDLINE_SCALE_SHARDS", 200)
	workers := benchInt(b, "SHARDLINE_SCALE_WORKERS", 10)
	window := benchWindow(b, "SHARDLINE_SCALE_WINDOW", 120*time.Second)
	reads := os.Getenv("SHARDLINE_SCALE_READS")
	if reads != "" && reads != "kinesis-mock" && reads != "fake" {
		b.Fatalf("SHARDLINE_SCALE_READS=%q: allowed fake (default), kinesis-mock", reads)
	}
	if workers < 2 || shards < workers {
		b.Fatalf("SHARDLINE_SCALE_WORKERS=%d, SHARDLINE_SCALE_SHARDS=%d: want at least 2 workers and a shard each", workers, shards)
	}
	for range b.N {
		runLeaseScale(b, shards, workers, window, reads == "kinesis-mock")
	}
}

// scaleWorker is one worker of the scale benchmark: its own meter and a
// switch that makes every DynamoDB call of its client fail.
type scaleWorker struct {
	w      *coordinator.Worker
	meter  *ddbMeter
	killed atomic.Bool
	cancel context.CancelFunc
	done   chan error
}

var errKilled = errors.New("benchmark: this worker's DynamoDB calls fail (killed)")

// killOption fails every call of the client at once while killed is set
// (before the meter: a killed call is not counted).
func (s *scaleWorker) killOption(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("ShardlineScaleKill",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if s.killed.Load() {
					return middleware.InitializeOutput{}, middleware.Metadata{}, errKilled
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

// idleReads answers GetShardIterator and GetRecords in process for an
// idle stream (no records, caught up); the rest goes to kinesis-mock.
type idleReads struct {
	*kinesis.Client
	calls atomic.Int64
}

func (r *idleReads) GetShardIterator(_ context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	r.calls.Add(1)
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("idle:" + aws.ToString(in.ShardId))}, nil
}

func (r *idleReads) GetRecords(_ context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	r.calls.Add(1)
	return &kinesis.GetRecordsOutput{NextShardIterator: in.ShardIterator, MillisBehindLatest: aws.Int64(0)}, nil
}

func runLeaseScale(b *testing.B, shards, nWorkers int, window time.Duration, realReads bool) {
	k, d := standintest.Both(b)
	name := standintest.NewStream(b, k.Endpoint, shards)
	app := standintest.UniqueName(b)
	plain := standintest.DynamoDBClient(d.Endpoint)
	kmeter := newDDBMeter()
	kc := standintest.KinesisClient(k.Endpoint, kmeter.kinesisOption)
	var kin coordinator.KinesisAPI = kc
	fake := &idleReads{Client: kc}
	if !realReads {
		kin = fake
	}
	var handled atomic.Int64
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		handled.Add(int64(len(ev.Records)))
		return events.KinesisEventResponse{}, nil
	}
	var logger *slog.Logger
	if lv := os.Getenv("SHARDLINE_SCALE_LOG"); lv != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(lv)); err != nil {
			b.Fatalf("SHARDLINE_SCALE_LOG=%q: %v", lv, err)
		}
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	var all []*scaleWorker
	start := func(i int) *scaleWorker {
		s := &scaleWorker{meter: newDDBMeter(), done: make(chan error, 1)}
		ddb := standintest.DynamoDBClient(d.Endpoint, s.meter.option, s.killOption)
		w, err := coordinator.New(coordinator.Config{
			AppName: app, StreamName: name, WorkerID: fmt.Sprintf("worker-%02d", i), Handler: handler, MaxRetryAttempts: -1,
			Kinesis: kin, DynamoDB: ddb, SummaryInterval: -1, DrainTimeout: 2 * time.Second, Logger: logger,
		})
		if err != nil {
			b.Fatal(err)
		}
		s.w = w
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		go func() { s.done <- w.Run(ctx) }()
		all = append(all, s)
		return s
	}
	defer func() {
		for _, s := range all {
			s.cancel()
		}
		for _, s := range all {
			if err := <-s.done; err != nil && !s.killed.Load() {
				b.Error(err)
			}
		}
	}()
	// held is what the workers not killed hold: the count of each and the
	// shards held by two (a lease moving: the old owner not yet stopped).
	held := func() (counts []int, total, twice int) {
		seen := map[string]bool{}
		for _, s := range all {
			if s.killed.Load() {
				continue
			}
			h := s.w.Held()
			counts = append(counts, len(h))
			for _, k := range h {
				if seen[k] {
					twice++
				}
				seen[k] = true
			}
		}
		return counts, len(seen), twice
	}
	balanced := func() bool {
		counts, total, twice := held()
		return total == shards && twice == 0 && slices.Max(counts)-slices.Min(counts) <= 1
	}

	// Start-up: W−1 workers.
	began := time.Now()
	for i := range nWorkers - 1 {
		start(i)
	}
	testwait.Until(b, 5*time.Minute, fmt.Sprintf("%d shards held by %d workers, evenly", shards, nWorkers-1), balanced)
	startup := time.Since(began)
	counts, _, _ := held()
	b.Logf("start-up: %d workers hold %d shards (%v) after %s", nWorkers-1, shards, counts, startup.Round(time.Millisecond))

	// Join: one more worker.
	began = time.Now()
	joiner := start(nWorkers - 1)
	var firstLease time.Duration
	share := shards / nWorkers
	testwait.Until(b, 5*time.Minute, "the new worker holds its share, every worker S/W", func() bool {
		n := len(joiner.w.Held())
		if n > 0 && firstLease == 0 {
			firstLease = time.Since(began)
		}
		return n >= share && balanced()
	})
	join := time.Since(began)
	counts, _, _ = held()
	b.Logf("join: the new worker had its first lease after %s and its share (%d) after %s; the workers hold %v",
		firstLease.Round(time.Millisecond), share, join.Round(time.Millisecond), counts)

	// Steady: a window with no moves. The leader's round and the
	// workers' Queries run on their own tickers; the window starts once
	// the join's handoffs are over (balanced above) and one more round
	// has passed.
	time.Sleep(10 * time.Second) // let the last passes-on and takes of the join settle (a wait, not a synchronisation)
	before := heldSets(all)
	snaps := make([]meterSnapshot, len(all))
	for i, s := range all {
		snaps[i] = s.meter.snapshot()
	}
	kBefore := kmeter.snapshot()
	readsBefore := fake.calls.Load()
	ruBefore := rusage(b)
	winStart := time.Now()
	time.Sleep(window) // a fixed measuring window, not a synchronisation
	elapsed := time.Since(winStart)
	ruAfter := rusage(b)
	wins := make([]meterSnapshot, len(all))
	for i, s := range all {
		wins[i] = s.meter.snapshot().sub(snaps[i])
	}
	kWin := kmeter.snapshot().sub(kBefore)
	fakeReads := fake.calls.Load() - readsBefore
	if after := heldSets(all); !slices.Equal(before, after) {
		b.Errorf("leases moved in the steady window: the figures include moves")
	}
	leader := leaderOf(b, plain, app)
	scan := scanItems(b, plain, app)
	reportSteady(b, steadyFigures{
		shards: shards, workers: nWorkers, elapsed: elapsed, wins: wins, all: all, leader: leader, scan: scan,
		cpu: ruAfter - ruBefore, listShards: kWin.ops["kinesis.ListShards"].calls, fakeReads: fakeReads, realReads: realReads,
	})

	// Kill a worker that is not the leader and wait until the leader has
	// deleted its worker item; then kill the leader; then, at once,
	// another worker (within the new leader's first three heartbeat
	// windows, 3 × 3 × failover).
	heldBy := func() map[string]bool {
		m := map[string]bool{}
		for _, s := range all {
			if !s.killed.Load() {
				for _, k := range s.w.Held() {
					m[k] = true
				}
			}
		}
		return m
	}
	for i, which := range []string{"worker", "leader", "worker"} {
		var victim *scaleWorker
		for _, s := range all {
			if s.killed.Load() {
				continue
			}
			if (s.w.WorkerID() == leaderOf(b, plain, app)) == (which == "leader") {
				victim = s
				break
			}
		}
		if victim == nil {
			b.Fatalf("no %s to kill", which)
		}
		lost := victim.w.Held()
		isLost := map[string]bool{}
		for _, k := range lost {
			isLost[k] = true
		}
		began = time.Now()
		victim.killed.Store(true)
		var first, lostTaken, lockTaken time.Duration
		var lastLook time.Time
		// Shards of live workers that went unheld meanwhile: since when
		// (while unheld), the longest time one stayed unheld, and when
		// the last was held again (since the kill).
		dark := map[string]bool{}
		darkSince := map[string]time.Time{}
		var longestDark, lastDark time.Duration
		lookDark := func(h map[string]bool) {
			now := time.Now()
			for sh := range shards {
				k := fmt.Sprintf("shardId-%012d", sh)
				switch {
				case isLost[k]:
				case !h[k]:
					dark[k] = true
					if _, ok := darkSince[k]; !ok {
						darkSince[k] = now
					}
				case !darkSince[k].IsZero():
					longestDark = max(longestDark, now.Sub(darkSince[k]))
					lastDark = now.Sub(began)
					delete(darkSince, k)
				}
			}
		}
		testwait.Until(b, 3*time.Minute, "the killed "+which+"'s shards held by the others", func() bool {
			h := heldBy()
			taken := 0
			for _, k := range lost {
				if h[k] {
					taken++
				}
			}
			if taken > 0 && first == 0 {
				first = time.Since(began)
			}
			if taken == len(lost) && lostTaken == 0 {
				lostTaken = time.Since(began)
			}
			lookDark(h)
			// The leader lock, four times a second (not metered).
			if which == "leader" && lockTaken == 0 && time.Since(lastLook) >= 250*time.Millisecond {
				lastLook = time.Now()
				if l := leaderOf(b, plain, app); l != victim.w.WorkerID() {
					lockTaken = time.Since(began)
				}
			}
			_, total, twice := held()
			return lostTaken > 0 && total == shards && twice == 0
		})
		took := time.Since(began)
		// Then three failover times more, watched ten times a second (a
		// fixed window, not a synchronisation): a lease the leader moves
		// to a dead worker leaves a live worker's shard unheld.
		watch := time.NewTicker(100 * time.Millisecond)
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); <-watch.C {
			lookDark(heldBy())
		}
		watch.Stop()
		testwait.Until(b, 3*time.Minute, "every shard held again", func() bool {
			lookDark(heldBy())
			_, total, twice := held()
			return total == shards && twice == 0
		})
		counts, _, _ = held()
		newLeader := leaderOf(b, plain, app)
		lock := ""
		if which == "leader" {
			lock = fmt.Sprintf(" (the lock taken by %s after %s, seen within 250ms)", newLeader, lockTaken.Round(time.Millisecond))
			b.ReportMetric(lockTaken.Seconds(), "takeover-lock-s")
		}
		b.Logf("kill %d, %s %s (%d shards): the first taken after %s, all after %s (failover + %s); shards of live workers that went unheld then or in the next 30s: %d (the longest for %s, the last held again %s after the kill); every shard held after %s; the others hold %v; leader now %s%s",
			i+1, which, victim.w.WorkerID(), len(lost), first.Round(time.Millisecond), lostTaken.Round(time.Millisecond),
			(lostTaken - 10*time.Second).Round(time.Millisecond), len(dark), longestDark.Round(100*time.Millisecond), lastDark.Round(100*time.Millisecond),
			took.Round(time.Millisecond), counts, newLeader, lock)
		b.ReportMetric(lostTaken.Seconds(), fmt.Sprintf("takeover%d-%s-s", i+1, which))
		b.ReportMetric(float64(len(dark)), fmt.Sprintf("takeover%d-collateral-shards", i+1))
		b.ReportMetric(longestDark.Seconds(), fmt.Sprintf("takeover%d-collateral-longest-s", i+1))
		if i == 0 {
			// The leader deletes the item of a worker with no lease whose
			// item has not moved for three heartbeat windows.
			began = time.Now()
			key := map[string]dtypes.AttributeValue{"leaseKey": &dtypes.AttributeValueMemberS{Value: "shardline-worker:" + victim.w.WorkerID()}}
			var look time.Time
			testwait.Until(b, 3*time.Minute, "the killed worker's item deleted", func() bool {
				if time.Since(look) < 250*time.Millisecond { // four reads a second
					return false
				}
				look = time.Now()
				out, err := plain.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &app, Key: key, ConsistentRead: aws.Bool(true)})
				return err == nil && len(out.Item) == 0
			})
			b.Logf("the killed worker's item deleted by the leader %s later", time.Since(began).Round(time.Millisecond))
		}
	}
	if n := handled.Load(); n != 0 {
		b.Errorf("%d records handled on an idle stream", n)
	}
	b.ReportMetric(startup.Seconds(), "startup-s")
	b.ReportMetric(firstLease.Seconds(), "join-first-s")
	b.ReportMetric(join.Seconds(), "join-share-s")
	b.ReportMetric(0, "ns/op")
}

// heldSets lists "worker shard" for every shard held, sorted.
func heldSets(all []*scaleWorker) []string {
	var out []string
	for _, s := range all {
		for _, k := range s.w.Held() {
			out = append(out, s.w.WorkerID()+" "+k)
		}
	}
	slices.Sort(out)
	return out
}

// leaderOf is the leader lock's owner, as a consistent read finds it.
func leaderOf(b *testing.B, c *dynamodb.Client, table string) string {
	b.Helper()
	out, err := c.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: &table, ConsistentRead: aws.Bool(true),
		Key: map[string]dtypes.AttributeValue{"leaseKey": &dtypes.AttributeValueMemberS{Value: "Leader"}}})
	if err != nil {
		b.Fatal(err)
	}
	if o, ok := out.Item["ownerName"].(*dtypes.AttributeValueMemberS); ok {
		return o.Value
	}
	return ""
}

// scanned is the table as one Scan of each consistency reads it.
type scanned struct {
	items, leases          int
	bytes, leaseBytes      int     // by DynamoDB's item size rules (itemSize)
	consistent, eventually float64 // units DynamoDB Local reports
	indexEntry             int     // mean bytes of an index entry (leaseOwner + leaseKey)
}

func scanItems(b *testing.B, c *dynamodb.Client, table string) scanned {
	b.Helper()
	var s scanned
	for _, consistent := range []bool{true, false} {
		out, err := c.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table, ConsistentRead: &consistent,
			ReturnConsumedCapacity: dtypes.ReturnConsumedCapacityTotal})
		if err != nil {
			b.Fatal(err)
		}
		if len(out.LastEvaluatedKey) > 0 {
			b.Fatalf("the lease table's Scan took more than one page")
		}
		u := 0.0
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			u = *out.ConsumedCapacity.CapacityUnits
		}
		if consistent {
			s.consistent = u
			continue
		}
		s.eventually = u
		idx := 0
		for _, it := range out.Items {
			n := itemSize(it)
			s.items++
			s.bytes += n
			if _, ok := it["leaseCounter"]; ok {
				s.leases++
				s.leaseBytes += n
				if o, ok := it["leaseOwner"].(*dtypes.AttributeValueMemberS); ok {
					idx += len("leaseOwner") + len(o.Value) + len("leaseKey") + len(it["leaseKey"].(*dtypes.AttributeValueMemberS).Value)
				}
			}
		}
		if s.leases > 0 {
			s.indexEntry = idx / s.leases
		}
	}
	return s
}

type steadyFigures struct {
	shards, workers int
	elapsed         time.Duration
	wins            []meterSnapshot
	all             []*scaleWorker
	leader          string
	scan            scanned
	cpu             time.Duration
	listShards      int64
	fakeReads       int64
	realReads       bool
}

// readFormula is the read units an hour the protocol's cadences make
// (BENCHMARKS.md, "Lease table at scale"): the leader's eventually
// consistent Scan every failover time, of which one every sync interval
// is consistent; each other worker's eventually consistent GetItem of
// the leader lock every failover time; each worker's Query of the index
// every failover/2. A Scan is billed per 4 KB of the items it reads, a
// GetItem per 4 KB of its item, a Query per 4 KB of the index entries it
// returns (at least one unit each); eventually consistent: half.
func readFormula(S, W int, tableBytes, entry int, failover, sync time.Duration) (scans, leaderReads, queries float64) {
	perHour := func(d time.Duration) float64 { return float64(time.Hour) / float64(d) }
	units := func(bytes float64) float64 { return math.Max(1, math.Ceil(bytes/4096)) }
	scanUnits := units(float64(tableBytes))
	scans = (perHour(failover)-perHour(sync))*0.5*scanUnits + perHour(sync)*scanUnits
	leaderReads = float64(W-1) * perHour(failover) * 0.5
	queries = float64(W) * perHour(failover/2) * 0.5 * units(float64(S)/float64(W)*float64(entry))
	return scans, leaderReads, queries
}

func reportSteady(b *testing.B, f steadyFigures) {
	b.Helper()
	perMin := 60 / f.elapsed.Seconds()
	perHour := 3600 / f.elapsed.Seconds()
	// Calls per minute by operation: the leader, and the mean of the others.
	ops := map[string]bool{}
	var total meterSnapshot
	total.ops = map[string]opCount{}
	leaderIdx := -1
	for i, w := range f.wins {
		if f.all[i].w.WorkerID() == f.leader {
			leaderIdx = i
		}
		for op, c := range w.ops {
			ops[op] = true
			t := total.ops[op]
			t.calls += c.calls
			t.errs += c.errs
			t.units += c.units
			t.reported += c.reported
			total.ops[op] = t
		}
	}
	if leaderIdx < 0 {
		b.Fatalf("leader %q is none of the workers", f.leader)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\t%-28s %12s %14s %12s %12s\n", "operation", "leader/min", "others/min(1)", "all/min", "units/h")
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for op := range ops {
			if !yield(op) {
				return
			}
		}
	}) {
		l := float64(f.wins[leaderIdx].ops[op].calls) * perMin
		o := float64(total.ops[op].calls-f.wins[leaderIdx].ops[op].calls) * perMin / float64(f.workers-1)
		fmt.Fprintf(&sb, "\t%-28s %12.1f %14.1f %12.1f %12.1f\n", op, l, o, float64(total.ops[op].calls)*perMin, total.ops[op].units*perHour)
		if total.ops[op].errs > 0 {
			b.Errorf("%s: %d errors in the steady window", op, total.ops[op].errs)
		}
	}
	t := total.totals()
	fmt.Fprintf(&sb, "\tall workers, per hour: reads %.0f (RU %.0f), writes %.0f (WU %.0f); ListShards %.0f", t.reads*perHour, t.rcu*perHour,
		t.writes*perHour, t.wcu*perHour, float64(f.listShards)*perHour)
	b.Logf("steady window %s, %d shards, %d workers, leader %s; lease-table calls per minute:\n%s",
		f.elapsed.Round(time.Millisecond), f.shards, f.workers, f.leader, sb.String())

	sc, lr, q := readFormula(f.shards, f.workers, f.scan.bytes, f.scan.indexEntry, 10*time.Second, time.Minute)
	predicted := sc + lr + q
	measured := t.rcu * perHour
	off := (measured - predicted) / predicted
	b.Logf("table: %d items, %d bytes (%d leases, %.0f bytes each); one Scan %.1f RU consistent, %.1f eventually (DynamoDB Local); index entry ~%d bytes",
		f.scan.items, f.scan.bytes, f.scan.leases, float64(f.scan.leaseBytes)/float64(max(1, f.scan.leases)), f.scan.consistent, f.scan.eventually, f.scan.indexEntry)
	b.Logf("read units per hour: measured %.0f; formula %.0f (leader Scans %.0f + leader-lock reads %.0f + Queries %.0f): %+.1f %%",
		measured, predicted, sc, lr, q, 100*off)
	if math.Abs(off) > 0.2 {
		b.Errorf("measured read units per hour %.0f are %+.1f %% off the formula's %.0f (more than 20 %%)", measured, 100*off, predicted)
	}
	writesPerShardHour := t.writes * perHour / float64(f.shards)
	cpuPerWorker := f.cpu.Seconds() / f.elapsed.Seconds() / float64(f.workers)
	reads := fmt.Sprintf("in process, %.0f/s", float64(f.fakeReads)/f.elapsed.Seconds())
	if f.realReads {
		reads = "kinesis-mock"
	}
	b.Logf("writes per idle shard-hour %.1f (KCL 2.x 1,088); CPU of the process over the window %s = %.2f %% of a core per worker (idle reads %s)",
		writesPerShardHour, f.cpu.Round(time.Millisecond), 100*cpuPerWorker, reads)
	b.ReportMetric(measured, "RU/h")
	b.ReportMetric(predicted, "RU/h-formula")
	b.ReportMetric(t.wcu*perHour, "WU/h")
	b.ReportMetric(writesPerShardHour, "writes/shard-h")
	b.ReportMetric(t.reads*perMin/float64(f.workers), "reads/min/worker")
	b.ReportMetric(t.writes*perMin/float64(f.workers), "writes/min/worker")
	b.ReportMetric(100*cpuPerWorker, "cpu-%/worker")
}

// rusage is the process's user plus system CPU time so far.
func rusage(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchInt is the positive integer in the variable name, or def.
func benchInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer (%d)", name, v, def)
	}
	return n
}
