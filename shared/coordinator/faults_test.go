package coordinator_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shardline/shardline/shared/awsconf"
	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/produce"
	"github.com/shardline/shardline/shared/standin"
	"github.com/shardline/shardline/shared/stream"
)

// Settings of the fault tests: a short failover time, so that an outage of
// 2 × faultFailover outlasts the leases (another worker could take them),
// and frequent checkpoints.
const (
	faultFailover   = 3 * time.Second
	faultCheckpoint = 200 * time.Millisecond
)

// faultProxy is a TCP proxy on 127.0.0.1 in front of one target address.
// Cut closes every proxied connection and refuses new ones (each is
// accepted and closed at once); Restore lets them through again.
type faultProxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}

	refused atomic.Int64 // connections closed at once while cut
	wg      sync.WaitGroup
}

// newFaultProxy starts a proxy to target (host:port), closed when the test
// ends.
func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's endpoint.
func (p *faultProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *faultProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *faultProxy) handle(c net.Conn) {
	if p.isCut() {
		p.refused.Add(1)
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.conns == nil { // cut (or closed) while dialling
		p.mu.Unlock()
		p.refused.Add(1)
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()

	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			c.Close()
			up.Close()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, up)
			p.mu.Unlock()
		})
	}
	var copies sync.WaitGroup
	copies.Go(func() {
		_, _ = io.Copy(up, c)
		closeBoth()
	})
	copies.Go(func() {
		_, _ = io.Copy(c, up)
		closeBoth()
	})
	copies.Wait()
}

func (p *faultProxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// Cut closes every connection through the proxy and refuses new ones.
func (p *faultProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *faultProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// close stops the proxy and waits for its goroutines.
func (p *faultProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// faultProducer puts "key-k:n" records (per-key counters) to the stream
// every interval until finished.
type faultProducer struct {
	mu   sync.Mutex
	ids  []string
	stop chan struct{}
	once sync.Once
	done chan error
}

// startFaultProducer puts perTick plain records over keys partition keys
// every interval, with a Kinesis client of its own (never through a proxy).
func startFaultProducer(t *testing.T, f *fixture, keys, perTick int, interval time.Duration) *faultProducer {
	t.Helper()
	p := &faultProducer{stop: make(chan struct{}), done: make(chan error, 1)}
	prod, err := produce.New(context.Background(), f.kinesis, f.stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		counters := make([]int, keys)
		tick := time.NewTicker(interval) // pacing, not synchronisation
		defer tick.Stop()
		for i := 0; ; i++ {
			recs := make([]kpl.UserRecord, 0, perTick)
			ids := make([]string, 0, perTick)
			for j := range perTick {
				k := (i*perTick + j) % keys
				ids = append(ids, fmt.Sprintf("key-%d:%d", k, counters[k]))
				recs = append(recs, kpl.UserRecord{PartitionKey: fmt.Sprintf("key-%d", k), Data: []byte(ids[j])})
				counters[k]++
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := prod.Put(ctx, recs)
			cancel()
			if err != nil {
				p.done <- err
				return
			}
			p.mu.Lock()
			p.ids = append(p.ids, ids...)
			p.mu.Unlock()
			select {
			case <-p.stop:
				p.done <- nil
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { p.finish(t) })
	return p
}

func (p *faultProducer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ids)
}

// finish stops the producer and returns every id it put.
func (p *faultProducer) finish(t *testing.T) []string {
	t.Helper()
	p.once.Do(func() {
		close(p.stop)
		if err := <-p.done; err != nil {
			t.Errorf("producer: %v", err)
		}
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ids...)
}

// checkAtLeastOnce asserts at-least-once delivery in order: every id in
// want delivered at least once and nothing else; the first delivery of the
// records of each shard in strictly increasing positions and of each key in
// increasing counters (a record delivered again must have been delivered
// before: a redelivery rewinds to a checkpoint, it never fills a gap). It
// returns the number of redeliveries.
func checkAtLeastOnce(t *testing.T, recs []got, want []string) (redelivered int) {
	t.Helper()
	wanted := make(map[string]bool, len(want))
	for _, id := range want {
		wanted[id] = true
	}
	delivered := map[string]bool{}
	seenPos := map[string]bool{}
	maxPos := map[string]stream.Position{}
	lastN := map[string]int{}
	for i, r := range recs {
		if !wanted[r.id] {
			t.Fatalf("record %q delivered (at %d), want only the records put", r.id, i)
		}
		at := r.shard + "@" + r.pos.String()
		if seenPos[at] {
			redelivered++
			continue
		}
		seenPos[at] = true
		if delivered[r.id] {
			t.Fatalf("record %s delivered again at a new position %s of %s", r.id, r.pos, r.shard)
		}
		delivered[r.id] = true
		if p, ok := maxPos[r.shard]; ok && !r.pos.After(p) {
			t.Fatalf("shard %s: record %s at %s first delivered (at %d) after %s: out of order", r.shard, r.id, r.pos, i, p)
		}
		maxPos[r.shard] = r.pos
		key, n := splitID(t, r.id)
		if p, ok := lastN[key]; ok && n <= p {
			t.Fatalf("key %s: counter %d first delivered (at %d) after %d: out of order", key, n, i, p)
		}
		lastN[key] = n
	}
	missing := 0
	for _, id := range want {
		if !delivered[id] {
			if missing < 10 {
				t.Errorf("record %s never delivered", id)
			}
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d records never delivered", missing, len(want))
	}
	return redelivered
}

// faultRun is what the three fault tests share: a 2-shard stream, a
// producer, a worker with the given clients, and the checks after the
// fault.
type faultRun struct {
	t    *testing.T
	f    *fixture
	c    *collector
	r    *running
	prod *faultProducer

	mu    sync.Mutex
	calls []time.Time // when each handler call began
}

func startFaultRun(t *testing.T, f *fixture, mod func(*coordinator.Config)) *faultRun {
	t.Helper()
	fr := &faultRun{t: t, f: f, c: &collector{}}
	handle := func(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
		fr.mu.Lock()
		fr.calls = append(fr.calls, time.Now())
		fr.mu.Unlock()
		return fr.c.handle(ctx, ev)
	}
	fr.r = f.start(handle, func(cfg *coordinator.Config) {
		cfg.FailoverTime = faultFailover
		cfg.CheckpointInterval = faultCheckpoint
		cfg.ShardSyncInterval = time.Second
		if mod != nil {
			mod(cfg)
		}
	})
	fr.prod = startFaultProducer(t, f, 20, 10, 100*time.Millisecond)
	// Records flowing on both shards, checkpoints being written.
	testwait.Until(t, 90*time.Second, "records flowing on both shards", func() bool {
		if fr.c.count() < 100 {
			return false
		}
		n := 0
		for _, s := range fr.r.w.Stats() {
			if s.Checkpoint.Seq != "" && !s.Checkpoint.IsSentinel() {
				n++
			}
		}
		return n == 2
	})
	return fr
}

// finish lets the producer put more records after the fault, stops it,
// waits for every record, drains the worker and checks: all delivered at
// least once, in order, Run's nil, the leases free and checkpointed at the
// last record of each shard.
func (fr *faultRun) finish(since time.Time) {
	t := fr.t
	t.Helper()
	n := fr.prod.count()
	testwait.Until(t, time.Minute, "100 more records put after the fault", func() bool { return fr.prod.count() >= n+100 })
	want := fr.prod.finish(t)
	testwait.Until(t, 2*time.Minute, fmt.Sprintf("all %d records delivered", len(want)), func() bool {
		return len(distinctIDs(fr.c.snapshot())) >= len(want)
	})
	recovered := time.Since(since)
	if err := fr.r.stop(t); err != nil {
		t.Fatalf("Run after the drain: %v, want nil", err)
	}
	recs := fr.c.snapshot()
	again := checkAtLeastOnce(t, recs, want)
	t.Logf("%d records put, %d deliveries (%d again); all delivered %s after the fault ended",
		len(want), len(recs), again, recovered.Round(100*time.Millisecond))

	lastPos := map[string]stream.Position{}
	for _, g := range recs {
		if p, ok := lastPos[g.shard]; !ok || g.pos.After(p) {
			lastPos[g.shard] = g.pos
		}
	}
	ls := fr.f.leases()
	if len(ls) != 2 {
		t.Errorf("%d leases after the run, want 2", len(ls))
	}
	for shard, l := range ls {
		if l.Owner != "" {
			t.Errorf("lease %s still owned by %s after the drain", shard, l.Owner)
		}
		if l.Checkpoint != lastPos[shard] {
			t.Errorf("lease %s checkpoint %s, want the last record delivered %s", shard, l.Checkpoint, lastPos[shard])
		}
	}
}

// callsBetween lists the handler calls that began in [from, to).
func (fr *faultRun) callsBetween(from, to time.Time) []time.Time {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	var out []time.Time
	for _, c := range fr.calls {
		if !c.Before(from) && c.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

func distinctIDs(recs []got) map[string]bool {
	m := make(map[string]bool, len(recs))
	for _, r := range recs {
		m[r.id] = true
	}
	return m
}

// holdOutage keeps a fault for d, once the worker has been seen trying
// the cut service (the proxy refused a connection).
func holdOutage(t *testing.T, p *faultProxy, d time.Duration) {
	t.Helper()
	began := time.Now()
	refused := p.refused.Load()
	testwait.Until(t, d+time.Minute, fmt.Sprintf("an outage of %s with the worker trying the endpoint", d), func() bool {
		return time.Since(began) >= d && p.refused.Load() > refused
	})
}

// clientsVia returns Kinesis and DynamoDB clients built as the poller
// builds them (awsconf), for these endpoints.
func clientsVia(t *testing.T, kinesisEP, dynamoEP string) (*kinesis.Client, *dynamodb.Client) {
	t.Helper()
	cl, err := awsconf.Load(context.Background(), awsconf.Options{Region: "us-east-1", KinesisEndpoint: kinesisEP, DynamoDBEndpoint: dynamoEP})
	if err != nil {
		t.Fatal(err)
	}
	return cl.Kinesis, cl.DynamoDB
}

func hostPort(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		t.Fatalf("endpoint %q: %v", endpoint, err)
	}
	return u.Host
}

// TestDynamoDBOutage: DynamoDB unreachable for 2 × the failover time under
// a running worker (leases cannot be renewed or checkpointed; they expire),
// then back: every record is delivered at least once and in order, and Run
// returns nil after the drain with the leases released.
func TestDynamoDBOutage(t *testing.T) {
	kinesisEP, dynamoEP := needStandins(t)
	f := newFixture(t, 2)
	proxy := newFaultProxy(t, hostPort(t, dynamoEP))
	kc, dc := clientsVia(t, kinesisEP, proxy.URL())
	fr := startFaultRun(t, f, func(cfg *coordinator.Config) { cfg.Kinesis, cfg.DynamoDB = kc, dc })

	proxy.Cut()
	cut := time.Now()
	holdOutage(t, proxy, 2*faultFailover)
	proxy.Restore()
	restored := time.Now()
	// No lease could be renewed since the cut: from the failover time on,
	// another worker could have taken them, so no batch may start.
	if late := fr.callsBetween(cut.Add(faultFailover), restored); len(late) > 0 {
		t.Errorf("%d handler calls began while DynamoDB was cut and the leases could not be renewed for longer than the failover time %s (first %s after the cut)",
			len(late), faultFailover, late[0].Sub(cut).Round(time.Millisecond))
	}
	fr.finish(restored)
}

// TestKinesisOutage: Kinesis unreachable for 2 × the failover time under a
// running worker (the leases stay renewed), then back: nothing lost.
func TestKinesisOutage(t *testing.T) {
	kinesisEP, dynamoEP := needStandins(t)
	f := newFixture(t, 2)
	proxy := newFaultProxy(t, hostPort(t, kinesisEP))
	kc, dc := clientsVia(t, proxy.URL(), dynamoEP)
	fr := startFaultRun(t, f, func(cfg *coordinator.Config) { cfg.Kinesis, cfg.DynamoDB = kc, dc })

	proxy.Cut()
	before := f.leases()
	holdOutage(t, proxy, 2*faultFailover)
	// DynamoDB was there all along: the worker kept its leases renewed.
	for k, l := range f.leases() {
		if b := before[k]; l.Owner != fr.r.w.WorkerID() || l.Owner != b.Owner || l.Counter <= b.Counter {
			t.Errorf("lease %s after the Kinesis outage: owner %q counter %d, want still %q and renewed (counter > %d)",
				k, l.Owner, l.Counter, b.Owner, b.Counter)
		}
	}
	proxy.Restore()
	restored := time.Now()
	fr.finish(restored)
}

// TestDynamoDBRestart: the worker's DynamoDB Local (its own, persisted to
// disk, on a fixed port) is stopped mid-run and started again on the same
// port: the lease table is still there, the worker carries on, nothing is
// lost.
func TestDynamoDBRestart(t *testing.T) {
	kinesisEP, _ := needStandins(t)
	f := newFixture(t, 2)
	dir := t.TempDir() // removed after the servers are stopped (cleanups run last first)
	port := faultFreePort(t)
	opts := standin.DynamoDBOptions{Port: port, DBPath: dir}
	start := func() *standin.Server {
		t.Helper()
		srv, err := standin.StartDynamoDB(context.Background(), opts)
		if err != nil {
			t.Fatalf("start DynamoDB Local on port %d: %v", port, err)
		}
		t.Cleanup(func() {
			if err := srv.Stop(); err != nil {
				t.Errorf("stop DynamoDB Local (pid %d): %v", srv.PID, err)
			}
		})
		return srv
	}
	first := start()
	kc, dc := clientsVia(t, kinesisEP, first.Endpoint)
	f.dynamo = dc // the fixture's leases() reads this DynamoDB too
	fr := startFaultRun(t, f, func(cfg *coordinator.Config) { cfg.Kinesis, cfg.DynamoDB = kc, dc })
	before := f.leases()

	stopped := time.Now()
	if err := first.Stop(); err != nil {
		t.Fatalf("stop DynamoDB Local (pid %d): %v", first.PID, err)
	}
	if err := standin.CheckDynamoDB(context.Background(), first.Endpoint); err == nil {
		t.Fatalf("DynamoDB Local at %s still answers after Stop", first.Endpoint)
	}
	second := start()
	restarted := time.Now()
	t.Logf("DynamoDB Local down for %s (pid %d, then pid %d on port %d)", restarted.Sub(stopped).Round(100*time.Millisecond), first.PID, second.PID, port)
	if second.Endpoint != first.Endpoint {
		t.Fatalf("restarted at %s, want %s", second.Endpoint, first.Endpoint)
	}
	// The leases survived the restart, their checkpoints not moved back.
	after := f.leases()
	for k, l := range before {
		a, ok := after[k]
		if !ok {
			t.Fatalf("lease %s lost in the restart", k)
		}
		if !l.Checkpoint.IsSentinel() && l.Checkpoint.After(a.Checkpoint) {
			t.Fatalf("lease %s checkpoint %s after the restart, before it %s", k, a.Checkpoint, l.Checkpoint)
		}
	}
	fr.finish(restarted)
}

// faultFreePort returns a port that was free on 127.0.0.1 a moment ago.
func faultFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDrainDuringDynamoDBOutage: a worker told to stop while DynamoDB does
// not answer cannot write its last checkpoints or release its leases; it
// must give up within the drain timeout (15 s by default) rather than
// hang, and the next worker continues from the checkpoints once the
// leases expire: nothing lost. (It once took ~2 minutes: lease writes held
// the lease's lock through the SDK's whole retry sequence.)
func TestDrainDuringDynamoDBOutage(t *testing.T) {
	const drainLimit = 15*time.Second + faultFailover + 7*time.Second
	kinesisEP, dynamoEP := needStandins(t)
	f := newFixture(t, 2)
	proxy := newFaultProxy(t, hostPort(t, dynamoEP))
	kc, dc := clientsVia(t, kinesisEP, proxy.URL())
	fr := startFaultRun(t, f, func(cfg *coordinator.Config) { cfg.Kinesis, cfg.DynamoDB = kc, dc })

	proxy.Cut()
	holdOutage(t, proxy, time.Second)
	began := time.Now()
	fr.r.cancel()
	var runErr error
	select {
	case runErr = <-fr.r.done:
		close(fr.r.done)
	case <-time.After(5 * time.Minute):
		t.Fatal("Run did not return within 5 minutes of the drain")
	}
	took := time.Since(began)
	t.Logf("drain during the outage: Run returned %v after %s", runErr, took.Round(100*time.Millisecond))
	if took > drainLimit {
		t.Errorf("Run returned %s after the drain began with DynamoDB down, want within %s", took.Round(100*time.Millisecond), drainLimit)
	}
	proxy.Restore()

	// A second worker takes the leases over once they expire and carries
	// on from the checkpoints.
	want := fr.prod.finish(t)
	c2 := &collector{}
	r2 := f.start(c2.handle, func(cfg *coordinator.Config) {
		cfg.FailoverTime = faultFailover
		cfg.CheckpointInterval = faultCheckpoint
	})
	all := func() []got { return append(fr.c.snapshot(), c2.snapshot()...) }
	testwait.Until(t, 2*time.Minute, fmt.Sprintf("all %d records delivered", len(want)), func() bool {
		return len(distinctIDs(all())) >= len(want)
	})
	if err := r2.stop(t); err != nil {
		t.Fatalf("second worker's Run: %v", err)
	}
	checkAtLeastOnce(t, all(), want)
}
