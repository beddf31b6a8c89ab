package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin/standintest"
	"github.com/shardline/shardline/shared/testwait"
)

// BenchmarkDynamoDBCost measures what the lease table costs: every
// DynamoDB call the workers make, counted by operation in the SDK's
// middleware, with the capacity units DynamoDB Local reports for it
// (ReturnConsumedCapacity TOTAL is set on every input that has the field,
// here only). Each scenario runs real workers on a 4-shard stream for a
// fixed window after start-up (SHARDLINE_DDBCOST_WINDOW, default 60s; at
// least 3 checkpoint intervals) and reports the window's figures per
// shard-hour (per shard per second × 3600); the start-up calls (table,
// leases, takes, balancing) and the shutdown calls are logged apart.
//
//	go test -run '^$' -bench DynamoDBCost -benchtime 1x -v ./shared/coordinator/
func BenchmarkDynamoDBCost(b *testing.B) {
	if testing.Short() {
		b.Skip("integration benchmark: needs the stand-ins (run without -short)")
	}
	window := benchWindow(b, "SHARDLINE_DDBCOST_WINDOW", 60*time.Second)
	for _, sc := range []costScenario{
		{name: "idle-workers=1", workers: 1},
		{name: "idle-workers=2", workers: 2},
		{name: "busy-checkpoint=1s", workers: 1, rate: 250, checkpoint: time.Second},
		{name: "busy-checkpoint=10s", workers: 1, rate: 250, checkpoint: 10 * time.Second},
		{name: "busy-checkpoint=60s", workers: 1, rate: 250, checkpoint: time.Minute},
	} {
		b.Run(sc.name, func(b *testing.B) {
			for range b.N {
				runCostScenario(b, sc, window)
			}
		})
	}
}

type costScenario struct {
	name       string
	workers    int
	rate       int           // user records per second per shard; 0 = idle
	checkpoint time.Duration // 0 = the default
}

const costShards = 4

func runCostScenario(b *testing.B, sc costScenario, window time.Duration) {
	k, d := standintest.Both(b)
	if sc.checkpoint > 0 {
		window = max(window, 3*sc.checkpoint)
	}
	meter := newDDBMeter()
	kin := standintest.KinesisClient(k.Endpoint, meter.kinesisOption)
	name := standintest.NewStream(b, k.Endpoint, costShards)
	app := standintest.UniqueName(b)

	var handled atomic.Int64
	handler := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		handled.Add(int64(len(ev.Records)))
		return events.KinesisEventResponse{}, nil
	}
	var logger *slog.Logger
	if lv := os.Getenv("SHARDLINE_DDBCOST_LOG"); lv != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(lv)); err != nil {
			b.Fatalf("SHARDLINE_DDBCOST_LOG=%q: %v", lv, err)
		}
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var workers []*coordinator.Worker
	queries := make([]*atomic.Int64, sc.workers) // each worker's Queries of its own leases answered
	done := make(chan error, sc.workers)
	for i := range sc.workers {
		queries[i] = new(atomic.Int64)
		ddb := standintest.DynamoDBClient(d.Endpoint, meter.option, countQueries(queries[i]))
		// The poller's defaults: LATEST, failover 10s, checkpoint 1s,
		// shard sync 60s (on the leader), graceful handoff 30s.
		w, err := coordinator.New(coordinator.Config{
			AppName: app, StreamName: name, Handler: handler, MaxRetryAttempts: -1,
			CheckpointInterval: sc.checkpoint, Kinesis: kin, DynamoDB: ddb, SummaryInterval: -1, Logger: logger,
		})
		if err != nil {
			b.Fatal(err)
		}
		workers = append(workers, w)
		go func() { done <- w.Run(ctx) }()
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		for range workers {
			if err := <-done; err != nil {
				b.Error(err)
			}
		}
	}
	defer stop()

	// Start-up: every shard held, shared evenly among the workers.
	began := time.Now()
	testwait.Until(b, 2*time.Minute, "every shard held, balanced", func() bool {
		n := 0
		for _, w := range workers {
			h := len(w.Held())
			if h != costShards/len(workers) {
				return false
			}
			n += h
		}
		return n == costShards
	})
	// and the takes and handoffs under way then finished (only the
	// leader scans; every worker Queries the index for its own leases
	// every failover/2 and takes what it finds there): two more Queries
	// answered for each worker.
	var after []int64
	for _, n := range queries {
		after = append(after, n.Load()+2)
	}
	testwait.Until(b, time.Minute, "two more Queries of its own leases by each worker", func() bool {
		for i, n := range queries {
			if n.Load() < after[i] {
				return false
			}
		}
		return true
	})
	var prodStop func() (users int64)
	if sc.rate > 0 {
		prodStop = startProducer(b, k.Endpoint, name, sc.rate*costShards)
		// Records flow before the window opens (the first checkpoints
		// belong to start-up).
		testwait.Until(b, time.Minute, "records handled", func() bool { return handled.Load() > 0 })
	}
	startup := meter.snapshot()
	startupTook := time.Since(began)

	b.ResetTimer()
	winStart := time.Now()
	handledBefore := handled.Load()
	// A fixed measuring window, not a synchronisation.
	time.Sleep(window)
	inWindow := meter.snapshot()
	elapsed := time.Since(winStart)
	handledIn := handled.Load() - handledBefore
	b.StopTimer()

	scanCost(b, standintest.DynamoDBClient(d.Endpoint), app)
	var users int64
	if prodStop != nil {
		users = prodStop()
	}
	for _, w := range workers {
		if got := len(w.Held()); got != costShards/len(workers) {
			b.Errorf("worker %s holds %d shards at the end of the window, want %d: the figures include moves", w.WorkerID(), got, costShards/len(workers))
		}
	}
	stop()
	total := meter.snapshot()

	win := inWindow.sub(startup)
	perShardHour := 3600 / (elapsed.Seconds() * costShards)
	b.Logf("%s: %d worker(s), %d shards, window %s (start-up took %s), records handled in the window %d (%.0f/s per shard), produced %d",
		sc.name, sc.workers, costShards, elapsed.Round(time.Millisecond), startupTook.Round(time.Millisecond),
		handledIn, float64(handledIn)/elapsed.Seconds()/costShards, users)
	b.Logf("window, per shard-hour:\n%s", win.table(perShardHour))
	b.Logf("start-up (whole, not per hour):\n%s", startup.table(1))
	b.Logf("shutdown (whole, not per hour):\n%s", total.sub(inWindow).table(1))

	r := win.totals()
	b.ReportMetric(r.reads*perShardHour, "reads/shard-h")
	b.ReportMetric(r.rcu*perShardHour, "RCU/shard-h")
	b.ReportMetric(r.writes*perShardHour, "writes/shard-h")
	b.ReportMetric(r.wcu*perShardHour, "WCU/shard-h")
	for _, op := range win.names() {
		if c := win.ops[op]; c.calls > 0 && !strings.HasPrefix(op, "kinesis.") {
			b.ReportMetric(float64(c.calls)*perShardHour, strings.NewReplacer(" (", ".", ")", "").Replace(op)+"/shard-h")
		}
	}
	if c := win.ops["kinesis.ListShards"]; c.calls > 0 {
		b.ReportMetric(float64(c.calls)*perShardHour, "ListShards/shard-h")
	}
	b.ReportMetric(0, "ns/op") // the window is fixed: time per op says nothing
}

// scanCost logs what one Scan of the lease table costs, consistent (the
// leader's shard sync) and eventually consistent (its assignment rounds,
// and the KCL's), and
// the size of its items by DynamoDB's rules (attribute names plus values).
func scanCost(b *testing.B, c *dynamodb.Client, table string) {
	b.Helper()
	units := map[bool]float64{}
	var items []map[string]dtypes.AttributeValue
	for _, consistent := range []bool{true, false} {
		out, err := c.Scan(context.Background(), &dynamodb.ScanInput{TableName: &table, ConsistentRead: &consistent,
			ReturnConsumedCapacity: dtypes.ReturnConsumedCapacityTotal})
		if err != nil {
			b.Fatal(err)
		}
		if out.ConsumedCapacity != nil && out.ConsumedCapacity.CapacityUnits != nil {
			units[consistent] = *out.ConsumedCapacity.CapacityUnits
		}
		items = out.Items
	}
	var sizes []int
	total := 0
	for _, it := range items {
		n := itemSize(it)
		sizes = append(sizes, n)
		total += n
	}
	slices.Sort(sizes)
	b.Logf("one Scan of the lease table (%d items, %d bytes, item sizes %v): consistent %.1f RCU, eventually consistent %.1f RCU",
		len(items), total, sizes, units[true], units[false])
}

// itemSize is an item's size as DynamoDB bills it: names plus values
// (numbers: about one byte per two significant digits, plus one).
func itemSize(item map[string]dtypes.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k)
		switch v := v.(type) {
		case *dtypes.AttributeValueMemberS:
			n += len(v.Value)
		case *dtypes.AttributeValueMemberN:
			n += (len(strings.TrimLeft(strings.TrimPrefix(v.Value, "-"), "0"))+1)/2 + 1
		case *dtypes.AttributeValueMemberSS:
			for _, e := range v.Value {
				n += len(e)
			}
		case *dtypes.AttributeValueMemberBOOL, *dtypes.AttributeValueMemberNULL:
			n++
		default:
			n += 8 // not in a lease item; a rough figure
		}
	}
	return n
}

// startProducer puts perSecond user records a second, spread over the
// stream's shards by random partition keys, as KPL aggregates of up to 50
// (kinesis-mock slows down as a stream grows in Kinesis records), until
// the returned function is called; it returns the user records put.
func startProducer(b *testing.B, endpoint, name string, perSecond int) func() int64 {
	b.Helper()
	p, err := produce.New(context.Background(), standintest.KinesisClient(endpoint), name, 50)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var put int64
	var perr error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		start := time.Now()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			due := int64(time.Since(start).Seconds()*float64(perSecond)) - put
			if due <= 0 {
				continue
			}
			recs := make([]kpl.UserRecord, due)
			for i := range recs {
				key := fmt.Sprintf("k%08x", rand.Uint32())
				recs[i] = kpl.UserRecord{PartitionKey: key, Data: []byte(key + " 1 2 3 4 5 6 7 8 9")}
			}
			if err := p.Put(ctx, recs); err != nil {
				if ctx.Err() == nil {
					perr = err
				}
				return
			}
			put += due
		}
	}()
	return func() int64 {
		cancel()
		<-finished
		if perr != nil {
			b.Errorf("producer: %v", perr)
		}
		return put
	}
}

// ddbMeter counts DynamoDB (and Kinesis) calls by operation in the SDK's
// middleware, with the capacity units each DynamoDB answer reports.
type ddbMeter struct {
	mu  sync.Mutex
	ops map[string]*opCount
}

type opCount struct {
	calls, errs int64
	codes       map[string]int64 // errors by API error code
	units       float64          // ConsumedCapacity.CapacityUnits, as reported
	reported    int64            // answers that carried ConsumedCapacity
}

func newDDBMeter() *ddbMeter { return &ddbMeter{ops: map[string]*opCount{}} }

// option adds the meter to a DynamoDB client's stack, after the step that
// names the operation; each call is counted once, its retries not.
func (m *ddbMeter) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("ShardlineDDBCostMeter", m.handleDynamoDB), middleware.After)
	})
}

// countQueries counts the Queries a client has had answered.
func countQueries(n *atomic.Int64) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("ShardlineDDBCostQueries",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleInitialize(ctx, in)
					if _, ok := in.Parameters.(*dynamodb.QueryInput); ok && err == nil {
						n.Add(1)
					}
					return out, md, err
				}), middleware.After)
		})
	}
}

func (m *ddbMeter) kinesisOption(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("ShardlineKinesisCostMeter", m.handleKinesis), middleware.After)
	})
}

func (m *ddbMeter) handleDynamoDB(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	askCapacity(in.Parameters)
	out, md, err := next.HandleInitialize(ctx, in)
	cc := consumed(out.Result)
	op := awsmiddleware.GetOperationName(ctx)
	if kind := callKind(in.Parameters); kind != "" {
		op += " (" + kind + ")"
	}
	m.add(op, err, cc)
	return out, md, err
}

// callKind tells a lease-table call by the item it names and what it
// writes: "" for a Scan or Query (one kind each).
func callKind(params any) string {
	switch in := params.(type) {
	case *dynamodb.UpdateItemInput:
		return updateKind(in)
	case *dynamodb.GetItemInput:
		return itemKind(in.Key)
	case *dynamodb.PutItemInput:
		return itemKind(in.Item)
	case *dynamodb.DeleteItemInput:
		return itemKind(in.Key)
	case *dynamodb.QueryInput:
		if in.IndexName != nil {
			return "index"
		}
	case *dynamodb.ScanInput:
		if in.ConsistentRead != nil && *in.ConsistentRead {
			return "consistent"
		}
		return "eventual"
	}
	return ""
}

// itemKind tells the lease table's items apart by key: the leader lock,
// a worker item, or a lease.
func itemKind(key map[string]dtypes.AttributeValue) string {
	k, _ := key["leaseKey"].(*dtypes.AttributeValueMemberS)
	switch {
	case k == nil:
		return "other"
	case k.Value == "Leader":
		return "leader"
	case strings.HasPrefix(k.Value, "shardline-worker:"):
		return "worker"
	}
	return "lease"
}

// updateKind tells a lease-table UpdateItem by what it writes (the
// attribute names of package lease's expressions: #aN set, #rN removed;
// the leader lock, worker item and handoff request have names of their
// own). The kinds have no spaces: they name benchmark metrics.
func updateKind(u *dynamodb.UpdateItemInput) string {
	set, removed, named := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for k, v := range u.ExpressionAttributeNames {
		named[v] = true
		switch {
		case strings.HasPrefix(k, "#a"):
			set[v] = true
		case strings.HasPrefix(k, "#r"):
			removed[v] = true
		}
	}
	expr := ""
	if u.UpdateExpression != nil {
		expr = *u.UpdateExpression
	}
	switch {
	case named["recordVersionNumber"]:
		return "leader-renew" // the leader lock's heartbeat
	case named["shardlineHeartbeat"] && named["shardlineWorkerId"]:
		return "worker-item"
	case named["checkpointOwner"] && strings.Contains(expr, "#co = :from"):
		return "handoff" // the leader asks the holder to pass the lease on
	case set["shardlineParked"]:
		return "park"
	case removed["leaseOwner"]:
		return "release"
	case set["leaseOwner"] && removed["shardlineNonce"]:
		return "assign" // the leader gives a lease to another worker
	case set["leaseOwner"]:
		return "take"
	case removed["checkpointOwner"]:
		return "pass-on" // the holder ends a handoff (with its checkpoint)
	case set["checkpoint"]: // a checkpoint carries the renewal's progress too
		return "checkpoint"
	case set["shardlineLastRenewal"]:
		return "renew"
	}
	return "other"
}

func (m *ddbMeter) handleKinesis(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleInitialize(ctx, in)
	m.add("kinesis."+awsmiddleware.GetOperationName(ctx), err, nil)
	return out, md, err
}

func (m *ddbMeter) add(op string, err error, cc *dtypes.ConsumedCapacity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.ops[op]
	if c == nil {
		c = &opCount{}
		m.ops[op] = c
	}
	c.calls++
	if err != nil {
		c.errs++
		code := "other"
		var ae smithy.APIError
		if errors.As(err, &ae) {
			code = ae.ErrorCode()
		}
		if c.codes == nil {
			c.codes = map[string]int64{}
		}
		c.codes[code]++
	}
	if cc != nil && cc.CapacityUnits != nil {
		c.units += *cc.CapacityUnits
		c.reported++
	}
}

// askCapacity sets ReturnConsumedCapacity TOTAL on the inputs that have it.
func askCapacity(params any) {
	const total = dtypes.ReturnConsumedCapacityTotal
	switch in := params.(type) {
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.ScanInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchGetItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.BatchWriteItemInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.TransactWriteItemsInput:
		in.ReturnConsumedCapacity = total
	case *dynamodb.TransactGetItemsInput:
		in.ReturnConsumedCapacity = total
	}
}

// consumed is the capacity an answer reports (single-table operations).
func consumed(result any) *dtypes.ConsumedCapacity {
	switch out := result.(type) {
	case *dynamodb.GetItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.PutItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.UpdateItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.DeleteItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.ScanOutput:
		return out.ConsumedCapacity
	case *dynamodb.QueryOutput:
		return out.ConsumedCapacity
	}
	return nil
}

type meterSnapshot struct{ ops map[string]opCount }

func (m *ddbMeter) snapshot() meterSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := meterSnapshot{ops: make(map[string]opCount, len(m.ops))}
	for k, v := range m.ops {
		c := *v
		c.codes = maps.Clone(v.codes)
		s.ops[k] = c
	}
	return s
}

// sub is s less an earlier snapshot.
func (s meterSnapshot) sub(earlier meterSnapshot) meterSnapshot {
	d := meterSnapshot{ops: map[string]opCount{}}
	for k, v := range s.ops {
		e := earlier.ops[k]
		c := opCount{calls: v.calls - e.calls, errs: v.errs - e.errs, units: v.units - e.units, reported: v.reported - e.reported}
		for code, n := range v.codes {
			if n -= e.codes[code]; n > 0 {
				if c.codes == nil {
					c.codes = map[string]int64{}
				}
				c.codes[code] = n
			}
		}
		if c.calls > 0 {
			d.ops[k] = c
		}
	}
	return d
}

func (s meterSnapshot) names() []string {
	names := make([]string, 0, len(s.ops))
	for k := range s.ops {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

var readOps = map[string]bool{"GetItem": true, "Scan": true, "Query": true, "BatchGetItem": true, "TransactGetItems": true}
var writeOps = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true}

// opBase is an operation's name without its kind: "UpdateItem (renew)" -> "UpdateItem".
func opBase(op string) string {
	base, _, _ := strings.Cut(op, " (")
	return base
}

type costTotals struct{ reads, rcu, writes, wcu float64 }

func (s meterSnapshot) totals() costTotals {
	var t costTotals
	for op, c := range s.ops {
		switch {
		case readOps[opBase(op)]:
			t.reads += float64(c.calls)
			t.rcu += c.units
		case writeOps[opBase(op)]:
			t.writes += float64(c.calls)
			t.wcu += c.units
		}
	}
	return t
}

// table renders the counts times scale, one operation a line.
func (s meterSnapshot) table(scale float64) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\t%-30s %10s %8s %10s %-9s %s\n", "operation", "calls", "errors", "units", "w/ units", "errors by code (counted)")
	for _, op := range s.names() {
		c := s.ops[op]
		var codes []string
		for _, code := range slices.Sorted(maps.Keys(c.codes)) {
			codes = append(codes, fmt.Sprintf("%s %d", code, c.codes[code]))
		}
		fmt.Fprintf(&sb, "\t%-30s %10.1f %8.1f %10.1f %-9s %s\n", op, float64(c.calls)*scale, float64(c.errs)*scale, c.units*scale,
			fmt.Sprintf("%d/%d", c.reported, c.calls), strings.Join(codes, ", "))
	}
	t := s.totals()
	fmt.Fprintf(&sb, "\treads %.1f (RCU %.1f), writes %.1f (WCU %.1f)", t.reads*scale, t.rcu*scale, t.writes*scale, t.wcu*scale)
	return sb.String()
}

// benchWindow is the positive Go duration in the variable name, or def.
func benchWindow(b *testing.B, name string, def time.Duration) time.Duration {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive Go duration (%s)", name, v, def)
	}
	return d
}
