package coordinator_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/shardline/shared/coordinator"
	"github.com/shardline/shardline/shared/destination/filedest"
	"github.com/shardline/shardline/shared/invoke"
	"github.com/shardline/shardline/shared/kpl"
	"github.com/shardline/shardline/shared/lambdaemu"
	"github.com/shardline/shardline/shared/stream"
	"github.com/shardline/shardline/shared/testwait"
)

// policy is one combination of the Kinesis trigger's settings.
type policy struct {
	bisect  bool
	retries int
	factor  int
	report  bool
}

func (p policy) String() string {
	return fmt.Sprintf("bisect=%v,retries=%d,factor=%d,report=%v", p.bisect, p.retries, p.factor, p.report)
}

// faults are the records the audit handler fails, by data: once each
// (an error, a partial failure, a panic, a timeout), or always (poison).
type faults struct {
	mu       sync.Mutex
	once     map[string]string // id -> kind, until it has failed once
	poison   map[string]bool
	handled  map[string]int // id -> times in a successful part of a call
	order    []string       // ids as handled
	report   bool
	failures map[string]int
}

func newFaults(report bool, once map[string]string, poison ...string) *faults {
	f := &faults{once: once, poison: map[string]bool{}, handled: map[string]int{}, report: report, failures: map[string]int{}}
	for _, p := range poison {
		f.poison[p] = true
	}
	return f
}

// decide is what happens to a call with these records: "" (success), or
// the kind of failure and the index of the record it concerns. It records
// the records handled: all on success, those before the failed one on a
// partial failure (all when partial failures are ignored).
func (f *faults) decide(ids []string) (kind string, failAt int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	failAt = -1
	for i, id := range ids {
		if f.poison[id] {
			failAt, kind = i, "poison"
			break
		}
		if k, ok := f.once[id]; ok {
			failAt, kind = i, k
			delete(f.once, id)
			break
		}
	}
	f.failures[kind]++
	upTo := 0
	switch {
	case kind == "":
		upTo = len(ids)
	case kind == "partial" && f.report:
		upTo = failAt
	case kind == "partial":
		upTo = len(ids) // ignored: the whole batch succeeded
	}
	for _, id := range ids[:upTo] {
		f.handled[id]++
		f.order = append(f.order, id)
	}
	return kind, failAt
}

// handle is the audit handler in process.
func (f *faults) handle(ctx context.Context, ev events.KinesisEvent) (events.KinesisEventResponse, error) {
	ids := make([]string, len(ev.Records))
	for i, r := range ev.Records {
		ids[i] = string(r.Kinesis.Data)
	}
	kind, failAt := f.decide(ids)
	switch kind {
	case "":
		return events.KinesisEventResponse{}, nil
	case "partial":
		r := ev.Records[failAt]
		id := r.Kinesis.SequenceNumber
		if _, pos, agg, _ := stream.ParseEventID(r.EventID); agg {
			id = fmt.Sprintf("%s:%d", pos.Seq, pos.SubSeq)
		}
		return events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{{ItemIdentifier: id}}}, nil
	case "panic":
		panic("audit: " + ids[failAt])
	case "timeout":
		<-ctx.Done() // past -handler-timeout
		return events.KinesisEventResponse{}, ctx.Err()
	default: // error, poison
		return events.KinesisEventResponse{}, errors.New("audit: " + kind)
	}
}

// given reads the file destination: every record given up, by id.
func given(t *testing.T, path string) map[string]int {
	t.Helper()
	out := map[string]int{}
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var doc struct {
			RequestContext struct{ Condition string }
			Records        []struct {
				Data []byte `json:"data"`
			} `json:"records"`
		}
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("destination line %q: %v", sc.Text(), err)
		}
		for _, r := range doc.Records {
			out[string(r.Data)]++
		}
	}
	return out
}

// TestAuditFailurePolicies: under each combination of bisect, retries,
// parallelization and response types, a handler that fails chosen records
// (an error, a partial failure, a panic and a timeout once each, and two
// poison records always) ends with every user record handled or in the
// on-failure destination with its data, nothing else, the poison records
// only in the destination, each key's records handled in order, and the
// checkpoint at the shard's last record.
func TestAuditFailurePolicies(t *testing.T) {
	audit(t, func(t *testing.T, fa *faults) stream.Handler { return fa.handle })
}

// audit runs the policies with the handler handlerFor makes around fa.
func audit(t *testing.T, handlerFor func(*testing.T, *faults) stream.Handler) {
	policies := []policy{
		{bisect: false, retries: 2, factor: 1, report: true},
		{bisect: true, retries: 1, factor: 1, report: true},
		{bisect: false, retries: 0, factor: 3, report: true},
		{bisect: true, retries: 2, factor: 3, report: false},
	}
	for _, p := range policies {
		t.Run(p.String(), func(t *testing.T) {
			f := newFixture(t, 1)
			want := f.put(8, 120, 0, 10) // 12 aggregates of 10 user records, 8 keys
			fa := newFaults(p.report, map[string]string{
				want[11]: "error", want[23]: "partial", want[37]: "panic", want[58]: "timeout",
			}, want[70], want[99])
			dest := filepath.Join(t.TempDir(), "failed.jsonl")
			r := f.start(handlerFor(t, fa), func(cfg *coordinator.Config) {
				cfg.BatchSize = 8
				cfg.BisectOnError = p.bisect
				cfg.MaxRetryAttempts = p.retries
				cfg.ParallelizationFactor = p.factor
				cfg.IgnoreItemFailures = !p.report
				cfg.HandlerTimeout = 300 * time.Millisecond
				cfg.OnFailure = filedest.New(dest)
			})
			last := lastPosition(t, f)
			testwait.Until(t, 2*time.Minute, "every record handled or given up, and the checkpoint at the end", func() bool {
				fa.mu.Lock()
				n := len(fa.handled)
				fa.mu.Unlock()
				return n+len(given(t, dest)) >= len(want) && f.leases()["shardId-000000000000"].Checkpoint == last
			})
			r.stop(t)
			fa.mu.Lock()
			defer fa.mu.Unlock()
			out := given(t, dest)
			produced := map[string]bool{}
			for _, id := range want {
				produced[id] = true
				if fa.handled[id] == 0 && out[id] == 0 {
					t.Errorf("record %s neither handled nor in the destination", id)
				}
			}
			for id := range fa.handled {
				if !produced[id] {
					t.Errorf("handled %q, which was never produced", id)
				}
			}
			for id := range out {
				if !produced[id] {
					t.Errorf("the destination holds %q, which was never produced", id)
				}
			}
			for _, id := range []string{want[70], want[99]} {
				if fa.handled[id] != 0 || out[id] == 0 {
					t.Errorf("poison %s: handled %d times, in the destination %d times; want only in the destination", id, fa.handled[id], out[id])
				}
			}
			var order []got
			for _, id := range fa.order {
				order = append(order, got{id: id})
			}
			checkKeyOrder(t, firstDeliveries(order))
			if fa.failures["timeout"] == 0 || fa.failures["panic"] == 0 || fa.failures["error"] == 0 || fa.failures["partial"] == 0 {
				t.Errorf("failures seen %v: want each kind at least once", fa.failures)
			}
			t.Logf("%s: %d handled, %d in the destination, calls by outcome %v", p, len(fa.handled), len(out), fa.failures)
		})
	}
}

// lastPosition is the position of the shard's last user record, read
// straight from the stream.
func lastPosition(t *testing.T, f *fixture) stream.Position {
	t.Helper()
	ctx := context.Background()
	it, err := f.kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: &f.stream, ShardId: aws.String("shardId-000000000000"), ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	iter := it.ShardIterator
	var lastRec *ktypes.Record
	for iter != nil {
		out, err := f.kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(out.Records); n > 0 {
			lastRec = &out.Records[n-1]
		} else if aws.ToInt64(out.MillisBehindLatest) == 0 {
			break
		}
		iter = out.NextShardIterator
	}
	if lastRec == nil {
		t.Fatal("no records in the shard")
	}
	recs, _ := kpl.Deaggregate(nil, "shardId-000000000000", lastRec, kpl.HashRange{})
	return recs[len(recs)-1].Position()
}

// TestAuditFailurePoliciesInvoked: the same audit with the handler as a
// Lambda function behind the Invoke API (hosted by shared/lambdaemu): the
// function errors, panics, reports partial failures and outlives its
// timeout as the test tells it.
func TestAuditFailurePoliciesInvoked(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: needs the stand-ins (run without -short)")
	}
	bin, err := lambdaemu.Build(context.Background(), t.TempDir(), "./testdata/auditfn")
	if err != nil {
		t.Fatal(err)
	}
	audit(t, func(t *testing.T, fa *faults) stream.Handler {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var ids []string
			if err := json.NewDecoder(r.Body).Decode(&ids); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			kind, failAt := fa.decide(ids)
			_ = json.NewEncoder(w).Encode(map[string]any{"kind": kind, "failAt": failAt})
		}))
		t.Cleanup(srv.Close)
		emu, err := lambdaemu.Start(context.Background(), lambdaemu.Function{
			Name: "audit", Path: bin, Timeout: time.Second, Stdout: io.Discard, Stderr: io.Discard,
			Env: []string{"SHARDLINE_AUDIT_URL=" + srv.URL},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = emu.Close() })
		return invoke.Handler(lambdaemu.Client(emu.Endpoint), "audit")
	})
}
